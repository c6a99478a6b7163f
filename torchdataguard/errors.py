"""Typed errors raised by torchdataguard.

Every error says which value was wrong, what was allowed, and what to do instead.
"""
from __future__ import annotations

from typing import Any, Iterable

__all__ = ["ConfigError", "GuardError", "GuardInputError", "StateError"]


class GuardError(Exception):
    """Base class of all torchdataguard errors.

    When one is raised in a DataLoader worker, PyTorch re-raises it in the main process as
    ``type(exc)("Caught X in DataLoader worker process N. Original Traceback ...")``: the error then keeps only
    its own message (and says which worker raised it), so the reason and the fix stay readable.
    """

    def __init__(self, *args: Any) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (_from_worker(type(self), args[0]),)
        super().__init__(*args)


def _from_worker(cls: type, msg: str) -> str:
    """The original message of an error re-raised from a DataLoader worker; other messages pass unchanged."""
    head, sep, rest = msg.partition(".\nOriginal Traceback")
    if not sep or not head.startswith(f"Caught {cls.__name__} ") or "DataLoader worker" not in head:
        return msg
    marker = f"\n{cls.__module__}.{cls.__qualname__}: "
    at = rest.rfind(marker)
    if at < 0:
        return msg
    where = head[len(f"Caught {cls.__name__} "):]
    return f"{rest[at + len(marker):].rstrip()} (raised {where})"


class ConfigError(GuardError, ValueError):
    """A setting is outside its allowed range.

    Example:
        >>> raise ConfigError.bad("threshold", 1.5, "a float in (0, 1]")
        Traceback (most recent call last):
        ...
        torchdataguard.errors.ConfigError: threshold=1.5 is invalid: expected a float in (0, 1].
    """

    @classmethod
    def bad(cls, name: str, value: Any, allowed: str, fix: str | None = None) -> "ConfigError":
        msg = f"{name}={value!r} is invalid: expected {allowed}."
        if fix:
            msg += f" {fix}"
        return cls(msg)

    @classmethod
    def collect(cls, problems: Iterable[str], what: str = "settings") -> "ConfigError":
        problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in problems)
        return cls(f"{len(problems)} problem(s) with the {what}:\n{lines}")


class GuardInputError(GuardError, ValueError):
    """A record could not be processed and ``strict=True`` was set.

    The message names the record id and the field, never the field's content (it may be personal data).
    """


class StateError(GuardError, RuntimeError):
    """A saved state does not match the object it is loaded into."""
