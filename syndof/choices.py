"""Closed sets of named options as ``str`` enums, and the one parser that turns a user's value into a member.

Configs, ``--set`` and method options carry these as plain strings (a ``str`` enum member also equals its string);
code parses them once with :func:`parse_choice` and branches on members with ``is``, never on strings.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

E = TypeVar("E", bound=Enum)


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
