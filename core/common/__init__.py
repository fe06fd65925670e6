"""Shared by every layer: typed errors, atomic file writes, devices and precision."""
