"""The one error type a user sees for bad input.

Every check in neuralab raises ConfigError with the setting, the value and what
is allowed; the entry points turn it into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar


class ConfigError(ValueError):
    """A setting has a value neuralab cannot run with."""

    def __init__(self, setting: str, value: object, allowed: str | Iterable[str]):
        if not isinstance(allowed, str):
            allowed = "one of: " + ", ".join(str(a) for a in allowed)
        self.setting, self.value, self.allowed = setting, value, allowed
        super().__init__(f"{setting}={value!r} is not allowed; expected {allowed}")


T = TypeVar("T")


def lookup(table: Mapping[str, T], setting: str, name: str) -> T:
    """`table[name]`, or a ConfigError that lists the names there are."""
    try:
        return table[name]
    except (KeyError, TypeError):
        raise ConfigError(setting, name, sorted(table)) from None
