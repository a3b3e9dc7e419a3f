"""A pydantic validation error as one line, for a message that says what to fix."""

from collections.abc import Callable

from pydantic import ValidationError

Location = tuple[str | int, ...]


def dotted(location: Location) -> str:
    return ".".join(map(str, location))


def first_error(error: ValidationError, where: Callable[[Location], str] = dotted) -> str:
    """'where: what' of the first error (just 'what' when it has no place), and how many more."""
    first = error.errors(include_url=False)[0]
    place = where(tuple(first["loc"])) if first["loc"] else ""
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{place}: {first['msg']}{more}" if place else f"{first['msg']}{more}"
