"""What the core refuses, by kind: each front end turns a kind into its own status (an HTTP status,
a gRPC code), and the message into its own error body."""


class Refused(Exception):
    """A request the core cannot serve; the message says what to fix."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class InvalidInput(Refused):
    """The input is well-formed but unusable: a picture with no ink, a vector of the wrong size."""


class UnsupportedImage(Refused):
    """The bytes are not an image in an accepted format."""


class UnknownModel(Refused, LookupError):
    """No model is served under that name; the message lists the names there are."""


class Unavailable(Refused):
    """The models are loading or the service is draining: retry shortly."""


class Conflict(Refused):
    """The request contradicts the repository's state, such as unloading the default model."""


class ModelError(Exception):
    """The model folder is missing, corrupt or inconsistent; the message says which file and why."""


def counted(count: int, noun: str) -> str:
    """'1 image', '2 images': a count in a message, with its noun's plural when it is not one."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
