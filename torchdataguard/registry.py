"""Small registries that refuse duplicates (pick implementations by name, not by if/elif ladders)."""
from __future__ import annotations

from typing import Callable, Dict, Generic, Iterator, TypeVar

from .errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping that refuses to register a name twice.

    Example:
        >>> r = Registry("demo")
        >>> @r.register("a")
        ... class A: ...
        >>> r.get("a") is A
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: Dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ConfigError(f"{self.kind} {name!r} is already registered (by {self._items[name]!r}); pick another name.")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}: expected one of {sorted(self._items)}."
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))
