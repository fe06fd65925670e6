"""What a run's data and outputs tell: the data-quality report, validation outputs (ROC/PR, label issues), comparisons, the verdict."""
