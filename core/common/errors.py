"""Typed errors whose message is a sentence a non-programmer understands."""


class StudioError(Exception):
    """Base class for every error shown to the user as a plain message."""

    code = "error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class DataError(StudioError):
    """The uploaded table cannot be used for training or prediction."""

    code = "bad_data"


class ModelError(StudioError):
    """A base model or a saved run cannot be found or loaded."""

    code = "bad_model"


class ConfigError(StudioError):
    """A training setting is out of range."""

    code = "bad_config"
