"""What the layers above ``core`` lend the :class:`~torchdataguard.Guard`, registered by name on import.

``core`` imports nothing above it. The few things a Guard does with the upper layers go through this
registry, which those layers fill when they are imported:

* ``"wrap"``: :func:`torchdataguard.data.dispatch.wrap`, the one dispatcher behind :meth:`Guard.wrap`;
* ``"collator"``: :class:`torchdataguard.data.collate.GuardCollator`, behind :meth:`Guard.collator`;
* ``"save_report"``: :func:`torchdataguard.report.save_report`, behind :meth:`Guard.save_report`.

A hook not registered yet when a Guard first needs it (``import torchdataguard`` imports no layer until a
name is used, and a worker process may have unpickled only the Guard) is loaded from the package named for it
in :data:`PROVIDERS`, as a plugin is loaded from an entry point: by name, at run time, never by an import
statement of ``core``.

Example:
    >>> hook("wrap").__module__
    'torchdataguard.data.dispatch'
    >>> sorted(HOOKS)[:1]
    ['collator']
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict

from ..errors import ConfigError
from ..registry import Registry

__all__ = ["HOOKS", "PROVIDERS", "hook"]

#: hooks by name (see the module docstring)
HOOKS: Registry[Callable[..., Any]] = Registry("guard hook")

#: the package whose import registers each hook (imported by :func:`hook` when the hook is first needed)
PROVIDERS: Dict[str, str] = {"wrap": "torchdataguard.data", "collator": "torchdataguard.data",
                             "save_report": "torchdataguard.report"}


def hook(name: str) -> Callable[..., Any]:
    """The hook registered under ``name``, its provider imported first if needed (:data:`PROVIDERS`)."""
    if name not in HOOKS and name in PROVIDERS:
        importlib.import_module(PROVIDERS[name])
    if name not in HOOKS:
        raise ConfigError(f"the guard's {name!r} hook is not registered: expected one of {sorted(PROVIDERS)}, "
                          f"provided by {sorted(set(PROVIDERS.values()))}")
    return HOOKS.get(name)
