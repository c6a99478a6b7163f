"""Where ``GuardCallback`` sits among the Trainer's callbacks: first, so the reporting integrations see its counters."""
from __future__ import annotations

import inspect
from typing import Any

__all__ = ["move_to_front"]


def move_to_front(callback: Any) -> None:
    """Put ``callback`` first in the callback handler that is calling it (``GuardCallback.first_in`` is the
    explicit way).

    ``transformers`` passes no handle on the Trainer to its callbacks, so the handler is found as the ``self``
    of the calling frame that holds a ``callbacks`` list (``CallbackHandler.call_event``); if that is ever not
    found, nothing changes.
    """
    frame = inspect.currentframe()
    try:
        f = frame.f_back if frame is not None else None
        while f is not None and not isinstance(getattr(f.f_locals.get("self"), "callbacks", None), list):
            f = f.f_back
        handler = f.f_locals.get("self") if f is not None else None
        cbs = getattr(handler, "callbacks", None)
        if isinstance(cbs, list) and callback in cbs and cbs[0] is not callback:
            handler.callbacks = [callback] + [c for c in cbs if c is not callback]  # a new list: safe during iteration
    finally:
        del frame
