"""Example identity: content fingerprints, id checks and id hashing.

An example's *id* names it (a dataset index, a stream position or the value of ``id_field``); its
*fingerprint* is a 63-bit XXH3 hash of the record as it was read, before any stage ran (:data:`FINGERPRINT`). The ledger keeps
one fingerprint per id and compares it when the id is met again, so a remembered decision is replayed only
for the same content: a record that reuses another record's id is decided as its own example.

Ids taken from ``id_field`` must be ``str`` or ``int`` (``bool`` is not an int id); with ``hash_ids`` they are
replaced by a hash before anything stores or prints them.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from collections.abc import Mapping
from functools import partial
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import xxhash

from ..errors import ConfigError, GuardInputError
from .arrays import is_tensor, loaded_torch

__all__ = ["FINGERPRINT", "FINGERPRINTS", "FINGERPRINT_TAGS", "ID_KEY_ENV", "LEGACY_FINGERPRINT", "blake2b_record_fingerprint", "IdHasher", "bad_id_reason", "plain_id", "check_positions", "check_split", "hash_id_field",
           "hashable_ids", "id_record_hook", "ids_state", "key_from_env", "qualify_id", "record_fingerprint"]

#: Environment variable ``torchdataguard scan --hash-ids-key-env`` reads by default.
ID_KEY_ENV = "TORCHDATAGUARD_ID_KEY"
_MIN_KEY_BYTES = 16
_MASK63 = (1 << 63) - 1


def _walk(o: Any, out: List[bytes]) -> None:
    """A type-tagged, length-prefixed encoding: two different records never encode alike."""
    if isinstance(o, str):
        b = o.encode("utf-8", "surrogatepass")
        out.append(b"s" + struct.pack("<Q", len(b)) + b)
    elif isinstance(o, bool) or o is None:
        out.append(b"n" if o is None else (b"T" if o else b"F"))
    elif isinstance(o, int):
        b = str(o).encode()
        out.append(b"i" + struct.pack("<Q", len(b)) + b)
    elif isinstance(o, float):
        out.append(b"f" + struct.pack("<d", o))
    elif isinstance(o, (bytes, bytearray, memoryview)):
        b = bytes(o)
        out.append(b"b" + struct.pack("<Q", len(b)) + b)
    elif is_tensor(o):
        t = o.detach().cpu().contiguous()
        head = f"{t.dtype}{tuple(t.shape)}".encode()
        data = t.reshape(-1).view(loaded_torch().uint8).numpy().tobytes() if t.numel() else b""
        out.append(b"t" + struct.pack("<QQ", len(head), len(data)) + head + data)
    elif isinstance(o, np.ndarray) or isinstance(o, np.generic):
        a = np.ascontiguousarray(o)
        head = f"{a.dtype}{a.shape}".encode()
        data = a.tobytes() if a.dtype != object else repr(a.tolist()).encode()
        out.append(b"a" + struct.pack("<QQ", len(head), len(data)) + head + data)
    elif isinstance(o, Mapping):
        items = sorted(o.items(), key=lambda kv: (type(kv[0]).__name__, str(kv[0])))
        out.append(b"{" + struct.pack("<Q", len(items)))
        for k, v in items:
            _walk(k, out)
            _walk(v, out)
    elif isinstance(o, (list, tuple)):
        out.append(b"[" + struct.pack("<Q", len(o)))
        for v in o:
            _walk(v, out)
    elif hasattr(o, "tobytes") and hasattr(o, "size") and hasattr(o, "mode"):  # PIL images
        data = o.tobytes()
        head = f"{o.mode}{o.size}".encode()
        out.append(b"p" + struct.pack("<QQ", len(head), len(data)) + head + data)
    else:  # other objects: their type and repr (a repr holding an address changes every run)
        b = f"{type(o).__module__}.{type(o).__qualname__}:{o!r}".encode("utf-8", "surrogatepass")
        out.append(b"r" + struct.pack("<Q", len(b)) + b)


#: The record fingerprint's hash, saved with a guard's state (``memo_fingerprint``). Until 2026-12 it was
#: ``"blake2b-63"``; a state saved with that hash is still resumed with it (:data:`FINGERPRINTS`). XXH3 hashes a
#: 3 KB record about 20x faster than BLAKE2b; the fingerprint tells replays from new content and was never a
#: defence against crafted collisions (at 63 bits, two colliding records can be searched for in about 2**32
#: tries whatever the hash).
FINGERPRINT = "xxh3-63"
#: the fingerprint of states that do not name theirs (saved before 2026-12)
LEGACY_FINGERPRINT = "blake2b-63"
#: one XXH3 seed (and one BLAKE2b prefix) per way of serialising a record, so that a str and a record
#: serialised otherwise never share their bytes' hash by construction
_SEEDS = (0x7364, 0x6A73, 0x776B, 0x666C)
_PREFIXES = (b"s", b"j", b"w")
#: what ``json.dumps(record, sort_keys=True)`` writes, without building an encoder per record (half its cost)
_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=True, allow_nan=True)


def _flat(record: Dict[Any, Any]) -> Optional[bytes]:
    """A flat dict of ``str`` keys and ``str`` / ``int`` values (``{"id": 7, "text": ...}``) as length-prefixed
    fields in key order (injective on such dicts, about half the cost of JSON); ``None`` for any other dict."""
    if len(record) == 2:  # {"id": ..., "text": ...} and the like: the same bytes without the loop
        a, b = record
        if type(a) is str and type(b) is str:
            if b < a:
                a, b = b, a
            va, vb = record[a], record[b]
            ta, tb = type(va), type(vb)
            if (ta is str or ta is int) and (tb is str or tb is int):
                fa = f"{len(a)}:{a}s{len(va)}:{va}" if ta is str else f"{len(a)}:{a}i{va};"
                fb = f"{len(b)}:{b}s{len(vb)}:{vb}" if tb is str else f"{len(b)}:{b}i{vb};"
                return (fa + fb).encode("utf-8", "surrogatepass")
    parts = []
    try:
        keys = sorted(record)
    except TypeError:  # keys of types that do not compare
        return None
    for k in keys:
        if type(k) is not str:
            return None
        v = record[k]
        if type(v) is str:
            parts.append(f"{len(k)}:{k}s{len(v)}:{v}")
        elif type(v) is int:
            parts.append(f"{len(k)}:{k}i{v};")
        else:
            return None
    return "".join(parts).encode("utf-8", "surrogatepass")


def _serialised(record: Any, *, flat: bool = True) -> Tuple[int, bytes]:
    """``(kind, bytes)``: a ``str`` as its UTF-8 (kind 0), a flat dict of ``str`` / ``int`` fields by
    :func:`_flat` (3; ``flat=False`` leaves them to JSON, as BLAKE2b fingerprints had them), another dict of
    JSON values as its canonical JSON with sorted keys (1; C speed, injective on such records), anything else
    as a typed, length-prefixed walk (2)."""
    if isinstance(record, str):
        return 0, record.encode("utf-8", "surrogatepass")
    if flat and type(record) is dict:
        data = _flat(record)
        if data is not None:
            return 3, data
    if isinstance(record, dict) and all(type(k) is str for k in record):
        try:
            return 1, _JSON.encode(record).encode("ascii")
        except (TypeError, ValueError):
            pass
    parts: List[bytes] = []
    _walk(record, parts)
    return 2, b"".join(parts)


def record_fingerprint(record: Any) -> int:
    """A non-zero 63-bit hash of a whole record (every field, not only the text); 0 is never returned.

    The record's serialisation (:func:`_serialised`) hashed with XXH3-64, one seed per kind of serialisation.
    Flat dicts (``str`` keys, ``str`` / ``int`` values) take a cheaper serialisation than JSON; the
    fingerprint depends on the record's content only, whatever its key order.

    Example:
        >>> record_fingerprint({"id": 1, "text": "a"}) == record_fingerprint({"text": "a", "id": 1})
        True
        >>> record_fingerprint({"id": 1, "text": "a"}) == record_fingerprint({"id": 1, "text": None})
        False
    """
    kind = type(record)
    if kind is str:  # the common records first, as _serialised would give them (kinds 0 and 3)
        return (xxhash.xxh3_64_intdigest(record.encode("utf-8", "surrogatepass"), _SEEDS[0]) & _MASK63) or 1
    if kind is dict:
        flat = _flat(record)
        if flat is not None:
            return (xxhash.xxh3_64_intdigest(flat, _SEEDS[3]) & _MASK63) or 1
    kind, data = _serialised(record)
    return (xxhash.xxh3_64_intdigest(data, _SEEDS[kind]) & _MASK63) or 1


def blake2b_record_fingerprint(record: Any) -> int:
    """The record fingerprint of states saved before 2026-12 (``"blake2b-63"``), kept to resume them.

    Example:
        >>> blake2b_record_fingerprint("a") != record_fingerprint("a")
        True
    """
    kind, data = _serialised(record, flat=False)
    h = hashlib.blake2b(_PREFIXES[kind], digest_size=8)
    h.update(data)
    return (int.from_bytes(h.digest(), "little") & _MASK63) or 1


#: every fingerprint a saved state may name, by its tag
FINGERPRINTS: Dict[str, Callable[[Any], int]] = {FINGERPRINT: record_fingerprint,
                                                 LEGACY_FINGERPRINT: blake2b_record_fingerprint}
#: the tag of each fingerprint function
FINGERPRINT_TAGS: Dict[Callable[[Any], int], str] = {f: tag for tag, f in FINGERPRINTS.items()}


def plain_id(value: Any) -> Any:
    """``value``, or the ``int`` a NumPy integer or 0-d integer tensor holds (``with_format("torch")`` streams)."""
    if isinstance(value, np.integer) or (is_tensor(value) and value.dim() == 0 and not value.dtype.is_floating_point
                                         and not value.dtype.is_complex and value.dtype != loaded_torch().bool):
        return int(value)
    return value


def bad_id_reason(value: Any) -> Optional[str]:
    """Why ``value`` cannot be an id from ``id_field`` (``None`` when it can: a ``str`` or a non-bool ``int``)."""
    if isinstance(value, bool):
        return "id_type (a bool is not an id; use a str or int)"
    if value is None:
        return "missing_id (the id field is None)"
    if isinstance(value, (str, int)):
        return None
    return f"id_type (got {type(value).__name__}; expected a str or int)"


class IdHasher:
    """Replaces ids from ``id_field`` by ``"h:" + 32 hex digits`` (BLAKE2b-128 of the typed id).

    ``key=None`` gives a plain hash: the same in every run and on every machine, but anyone who can guess an
    id (an e-mail address, a phone number) can confirm the guess by hashing it. With a secret ``key`` (at
    least 16 bytes) the hash is keyed and cannot be confirmed without the key. The key is never stored,
    printed or saved; ``key_id`` is a one-way fingerprint of it, saved with the guard's state so that a
    resumed run is refused when its key differs.

    Example:
        >>> h = IdHasher()
        >>> h("alice@example.org") == h("alice@example.org") != h(5)
        True
        >>> h("5") != h(5)
        True
    """

    __slots__ = ("_key",)

    def __init__(self, key: str | bytes | None = None) -> None:
        if key is None:
            self._key = b""
            return
        raw = key.encode("utf-8") if isinstance(key, str) else bytes(key) if isinstance(key, (bytes, bytearray)) else None
        if raw is None:
            raise ConfigError(f"hash_ids key must be str or bytes, got {type(key).__name__}")
        if len(raw) < _MIN_KEY_BYTES:
            raise ConfigError(f"hash_ids key is {len(raw)} bytes long; expected at least {_MIN_KEY_BYTES} bytes "
                              f"(e.g. the output of `python -c \"import secrets; print(secrets.token_hex(16))\"`)")
        # BLAKE2b takes keys of up to 64 bytes: a longer secret is first hashed down to 64 bytes
        self._key = raw if len(raw) <= 64 else hashlib.blake2b(raw, digest_size=64).digest()

    @classmethod
    def from_option(cls, hash_ids: Any, *, id_field: Optional[str] = None,
                    problems: Optional[List[str]] = None) -> Optional["IdHasher"]:
        """``False``/``None``: no hashing; ``True``: plain; a str/bytes key: keyed; an :class:`IdHasher`: itself.

        With ``problems``, a bad setting is appended to it (for ``ConfigError.collect``) instead of raised.
        """
        try:
            if hash_ids is None or hash_ids is False:
                return None
            if id_field is None:
                raise ConfigError("hash_ids needs id_field: only ids taken from the records are hashed (positions "
                                  "and indices are not personal data)")
            if hash_ids is True:
                return cls()
            if isinstance(hash_ids, IdHasher):
                return hash_ids
            if isinstance(hash_ids, (str, bytes, bytearray)):
                return cls(hash_ids)
            raise ConfigError(f"hash_ids={type(hash_ids).__name__}: expected False, True (a plain hash) or a secret "
                              f"key (str or bytes of at least {_MIN_KEY_BYTES} bytes, e.g. "
                              f"os.environ['{ID_KEY_ENV}'])")
        except ConfigError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
            return None

    @property
    def keyed(self) -> bool:
        return bool(self._key)

    @property
    def key_id(self) -> Optional[str]:
        """8 hex digits identifying the key (``None`` for the plain hash)."""
        if not self._key:
            return None
        return hmac.new(self._key, b"torchdataguard/ids/key-id", hashlib.sha256).hexdigest()[:8]

    def describe(self) -> dict:
        """What is saved with the state and shown in reports (never the key)."""
        return {"hash_ids": "keyed" if self.keyed else "plain", "key_id": self.key_id}

    def __call__(self, value: Any) -> str:
        typed = (b"s:" + value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else b"i:" + str(value).encode()
        return "h:" + hashlib.blake2b(typed, digest_size=16, key=self._key).hexdigest()

    def __repr__(self) -> str:
        return f"IdHasher({'keyed, key_id=' + str(self.key_id) if self.keyed else 'plain'})"

    def __getstate__(self):  # DataLoader workers need it (treat a pickled planner like the key)
        return {"_key": self._key}

    def __setstate__(self, state) -> None:
        self._key = state["_key"]


def hash_id_field(record: Any, *, id_field: str, hasher: IdHasher) -> Any:
    """A copy of ``record`` whose id field holds the hashed id (an invalid id becomes ``None``), for outputs."""
    if not isinstance(record, Mapping) or id_field not in record:
        return record
    rec = dict(record)
    v = plain_id(rec[id_field])
    rec[id_field] = hasher(v) if bad_id_reason(v) is None else None
    return rec


def id_record_hook(id_field: Optional[str], hasher: Optional[IdHasher]) -> Optional[Callable[[Any], Any]]:
    """The function that prepares a record for an output file: hashes its id field when ids are hashed."""
    if hasher is None or id_field is None:
        return None
    return partial(hash_id_field, id_field=id_field, hasher=hasher)


def hashable_ids(ids: Iterable[Any]) -> Iterator[Any]:
    """``ids`` one by one, refusing one that cannot be hashed (the ledger remembers decisions by id) with a
    :class:`~torchdataguard.errors.GuardInputError` that names its position and type, never its value.

    Example:
        >>> list(hashable_ids([3, "a", (1, 2)]))
        [3, 'a', (1, 2)]
    """
    for pos, id_ in enumerate(ids):
        try:
            hash(id_)
        except TypeError:
            raise GuardInputError(
                f"ids[{pos}] is a {type(id_).__name__}, which cannot be an id (it is not hashable): pass str or int "
                f"ids (for example the records' own keys, or leave ids out for stream positions)") from None
        yield id_


def qualify_id(id_: Any, source: str) -> Any:
    """The id of an example of wrapped data ``source`` in the ledger: ``"source:id"`` (plain ids for the first
    wrapped data, whose source is ``""``).

    Example:
        >>> qualify_id(12, "test"), qualify_id(12, "")
        ('test:12', 12)
    """
    return id_ if not source or id_ is None else f"{source}:{id_}"


def check_split(splits: Dict[str, int], source: str, split: int) -> None:
    """Refuse a stream read with another number of DataLoader workers than when its ids were first numbered.

    Positional stream ids number each worker's records in turn (``position * workers + worker``): they name
    the same examples in a later epoch only when the stream is split across as many workers.
    """
    first = splits.setdefault(source, int(split))
    if first != split:
        raise ConfigError(
            f"the stream {source or '(the first wrapped data)'!s} was read with {first} DataLoader worker(s) and now "
            f"with {split}: its ids are positions numbered across the workers, so they would name other examples. "
            f"Use num_workers={first} in every epoch and resumed run, or give the records an id and set it with "
            f"Guard(..., id_field=...) so that ids do not depend on how the stream is split")


def check_positions(ledger: Any, exs: Sequence[Any], replay: Sequence[int], source: str) -> None:
    """Refuse a positional stream whose records at known positions changed since an earlier pass.

    Without ``id_field`` a stream's ids are positions. A position met again with other content (``replay`` 0
    although the ledger holds a decision for the id) means the stream does not replay itself: it reshuffles
    (a shuffle buffer with ``set_epoch``) or changes records before the guard. Decided as new examples, a
    reshuffled epoch would be dropped, most of it, as duplicates of the previous epoch, so any such record is
    refused, before anything of its chunk is counted. Within one pass positions never repeat, so a first pass
    (and a stream with ``id_field``, whose reused ids are examples of their own) is never refused here.
    """
    changed = [e.id for e, r in zip(exs, replay) if r == 0 and ledger.replay(e.id)]
    if changed:
        raise ConfigError(
            f"the stream {source or '(the first wrapped data)'!s} has no id_field, so its ids are positions, and "
            f"{len(changed)} record(s) of this chunk (the first at position {changed[0]!s}) differ from the records "
            f"met at the same positions in an earlier pass (an earlier epoch or the run this one resumed): the stream "
            f"reshuffles (a shuffle buffer, set_epoch) or changes records before the guard. Taken as new examples, a "
            f"reshuffled epoch would be dropped, most of it, as duplicates of the previous one. Set "
            f"Guard(..., id_field=...) to a field that names each record stably (add one if the records have none), "
            f"or make the stream yield the same records in the same order in every pass")


def ids_state(splits: Dict[str, int], hasher: Optional[IdHasher]) -> Dict[str, Any]:
    """The id settings saved with a guard's state (never the key)."""
    out: Dict[str, Any] = {"splits": dict(splits)}
    out.update({"hash_ids": None, "key_id": None} if hasher is None else hasher.describe())
    return out


def key_from_env(var: str) -> bytes:
    """The id-hashing key held in environment variable ``var`` (never a command-line argument)."""
    v = os.environ.get(var)
    if not v:
        raise ConfigError(f"--hash-ids-key-env {var}: the environment variable {var} is not set; set it to a secret "
                          f"of at least {_MIN_KEY_BYTES} bytes, or use --hash-ids for a plain (unkeyed) hash")
    return v.encode("utf-8")
