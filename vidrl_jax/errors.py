"""User-facing errors: `experiments.run` prints them as one line, no traceback."""


class VidrlError(Exception):
    """An error whose message tells the user what is wrong and how to fix it."""


class ConfigError(VidrlError):
    """A config field has a bad value; the message names the field."""


class CheckpointError(VidrlError):
    """A checkpoint is missing, corrupt, or does not match the model."""


class StageMissingError(VidrlError):
    """A stage needs the output of an earlier stage that was not run."""


class NonFiniteError(VidrlError):
    """A loss or metric became NaN/inf; names the term and the step."""
