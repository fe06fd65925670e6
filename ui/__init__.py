"""Gradio front end: one module per tab; all training logic lives in core/."""
