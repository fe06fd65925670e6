"""The headless command line (python -m core): the same engine, config and run store as the browser app."""
