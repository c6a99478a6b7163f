"""What the layers above ``core`` lend the :class:`~torchdataguard.Guard`, registered by name on import.

``core`` imports nothing above it. The few things a Guard does with the upper layers go through this
registry, which those layers fill when they are imported (``import torchdataguard`` imports them all):

* ``"wrap"``: :func:`torchdataguard.data.dispatch.wrap`, the one dispatcher behind :meth:`Guard.wrap`;
* ``"collator"``: :class:`torchdataguard.data.collate.GuardCollator`, behind :meth:`Guard.collator`;
* ``"save_report"``: :func:`torchdataguard.report.save_report`, behind :meth:`Guard.save_report`.

Example:
    >>> import torchdataguard  # registers the hooks
    >>> sorted(HOOKS)
    ['collator', 'save_report', 'wrap']
"""
from __future__ import annotations

from typing import Any, Callable

from ..errors import ConfigError
from ..registry import Registry

__all__ = ["HOOKS", "hook"]

#: hooks by name (see the module docstring)
HOOKS: Registry[Callable[..., Any]] = Registry("guard hook")


def hook(name: str) -> Callable[..., Any]:
    """The hook registered under ``name``; a :class:`ConfigError` says which layer provides a missing one."""
    if name not in HOOKS:
        raise ConfigError(f"the guard's {name!r} hook is not registered: it is provided by torchdataguard's data "
                          f"and report layers, registered when the package is imported (import torchdataguard)")
    return HOOKS.get(name)
