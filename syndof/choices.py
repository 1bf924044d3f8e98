"""Closed sets of named options as ``str`` enums (:class:`Choice`), and the one parser that turns a user's value into
a member.

Configs, ``--set`` and method options carry these as plain strings (a member also equals its string and JSON writes
it as one); code parses them once with :func:`parse_choice` and branches on members with ``is``, never on strings.
YAML's safe dumper does not take members: write ``member.value`` there.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

E = TypeVar("E", bound=Enum)


class Choice(str, Enum):
    """Base of the project's option sets: a ``str`` enum whose ``str()`` and ``format()`` give the value, as
    Python 3.11's ``StrEnum`` (which 3.10 lacks), so messages, f-strings and path joins show what the user typed
    (``gaussian``, not ``Kernel.GAUSSIAN``)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


def parse_choice(cls: type[E], value: object, what: str) -> E:
    """The member of ``cls`` named by ``value`` (a member or its string value). ValueError naming ``what`` and the
    allowed values otherwise."""
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        raise ValueError(f"{what} must be one of {choices(cls)}, got {value!r}") from None


def choices(cls: type[Enum]) -> tuple[str, ...]:
    """The string values of ``cls``, in definition order (for ``argparse`` choices and messages)."""
    return tuple(str(m.value) for m in cls)
