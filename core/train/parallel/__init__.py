"""Data-parallel training: peers (one process or N started by accelerate), and the launcher of worker processes (core.train.worker)."""
