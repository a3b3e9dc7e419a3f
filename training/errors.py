"""What `vae-train` reports in one line and exits on: each message says what to fix."""


class TrainingError(Exception):
    pass


class DataError(TrainingError):
    """A data file is missing, corrupt or not what it claims to be; the message names the file."""


class ResumeError(TrainingError):
    """A checkpoint cannot be resumed under the configuration given."""


class ExportError(TrainingError):
    """The exported graphs do not reproduce the torch model."""


class RefusedError(TrainingError):
    """The command would destroy earlier work; the message says how to go on."""
