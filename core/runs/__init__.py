"""A run's records: its settings (TrainConfig), typed events, its folder on disk, the run store, loading its weights, experiment logs."""
