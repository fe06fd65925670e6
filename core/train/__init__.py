"""Training: the engine and its callbacks, model setup, schedule, augmentation, evaluation, checkpoints, the queue, the estimate and the one way in (service)."""
