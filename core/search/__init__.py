"""Hyperparameter search on Optuna: the searchable space and the study."""
