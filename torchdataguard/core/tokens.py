"""Records that already hold token ids meet a stage that rewrites their text: refuse, or re-tokenise.

A stage that rewrites text (``rewrites_text``: PII scrubbing, normalisation, text augmentation) changes the
text field of a record. When the record was tokenised before it reached the guard, its ``input_ids`` were
made from the *old* text: passing them on would train the model on exactly what the stage removed (the
e-mail addresses a scrubber replaced). So, for a mapping record that holds both the text field and
``input_ids``:

* without a tokenizer, the guard refuses with a :class:`~torchdataguard.errors.ConfigError` naming the field
  and the two fixes: wrap the data *before* tokenising it, or give ``Guard(..., tokenizer=...)``;
* with a tokenizer, :class:`TokenSync` re-tokenises each record whose text a stage changed, replacing the
  fields the tokenizer returns that the record holds (``input_ids``, ``attention_mask``,
  ``token_type_ids`` ...) and a ``labels`` field that was a copy of ``input_ids`` (causal language models).

The tokenizer must reproduce the record's tokens from its text: it is called as ``tokenizer(text)``, so pass
the settings you tokenised with (``functools.partial(tok, truncation=True, max_length=128)``). The first
record is checked: a tokenizer that does not give back that record's ``input_ids`` from its text is refused
(``ConfigError``) before anything is passed on. Afterwards, a changed record whose old tokens its old text does
not reproduce (tokens that were made from another text) is dropped as ``invalid/stale_tokens`` (with
``strict=True``, :class:`~torchdataguard.errors.GuardInputError`), never passed on with stale tokens.
Re-tokenised records are counted as ``tokens/retokenized``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import ConfigError, GuardInputError
from .stage import Drop, Example

__all__ = ["STALE_TOKENS", "TokenSync", "as_token_list", "sync_tokens", "text_rewriters"]

#: the drop reason of a changed record whose old tokens do not come from its old text
STALE_TOKENS = "invalid/stale_tokens"
_COUNT = "tokens/retokenized"
_LABELS = "labels"


def as_token_list(value: Any) -> Any:
    """``value`` (a list, tuple, tensor or array of token ids) as plain (nested) Python lists of ints.

    Example:
        >>> as_token_list((1, 2, 3))
        [1, 2, 3]
    """
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, (list, tuple)):
        return [as_token_list(v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else v for v in value]
    return value


def _like(new: Sequence[int], old: Any) -> Any:
    """``new`` in the container type of ``old`` (list, tuple, torch tensor or numpy array, same dtype)."""
    if isinstance(old, list):
        return list(new)
    if isinstance(old, tuple):
        return tuple(new)
    mod = type(old).__module__.split(".", 1)[0]
    if mod == "torch":
        import torch

        return torch.tensor(list(new), dtype=old.dtype)
    if mod == "numpy":
        import numpy as np

        return np.asarray(list(new), dtype=old.dtype)
    return list(new)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and getattr(value, "ndim", 0) >= 1)


class TokenSync:
    """Keeps ``input_ids`` in step with text that a rewriting stage changed (see the module docstring).

    Args:
        tokenizer: a callable ``text -> mapping of token fields`` (a Hugging Face tokenizer, or a
            ``functools.partial`` of one with your settings), or ``None`` to refuse tokenised records.
        text_field: the field holding the text.
        stages: names of the stages that rewrite text (for the messages).
        token_field: the field holding the token ids.
        strict: raise :class:`~torchdataguard.errors.GuardInputError` instead of dropping a record with
            stale tokens.

    Example:
        >>> sync = TokenSync(lambda t: {"input_ids": [len(w) for w in t.split()]}, text_field="text", stages=["pii"])
        >>> rec = {"text": "mail bob@example.com", "input_ids": [4, 15]}
        >>> ex = Example(0, rec, rec["text"], "text").with_text("mail <EMAIL>")
        >>> sync.sync(rec["text"], ex).record
        {'text': 'mail <EMAIL>', 'input_ids': [4, 7]}
    """

    def __init__(self, tokenizer: Optional[Callable[[str], Mapping]], *, text_field: Optional[str],
                 stages: Sequence[str], token_field: str = "input_ids", strict: bool = False) -> None:
        self.tokenizer = tokenizer
        self.text_field = text_field
        self.stages = list(stages)
        self.token_field = token_field
        self.strict = strict
        self.probed = False
        #: a chunk of this copy has been planned (and may have been handed on): a tokenised record met later
        #: without a tokenizer is dropped if a stage rewrites its text, instead of stopping the run halfway
        self.started = False

    def holds_tokens(self, ex: Example) -> bool:
        """Whether ``ex`` is a mapping record with both its text and token ids (a rewrite would make them stale)."""
        rec = ex.record
        return (ex.text is not None and ex.text_field is not None and isinstance(rec, Mapping)
                and rec.get(self.token_field) is not None)

    # -- before the stages ------------------------------------------------------------------------------------
    def check(self, ex: Example) -> bool:
        """Refuse a tokenised record without a tokenizer; with one, check it on the first tokenised record.

        Once a chunk has been planned (:attr:`started`), a tokenised record without a tokenizer is not refused
        (the run would stop halfway, after examples were handed on): ``True`` is returned, and
        :func:`sync_tokens` drops it as ``invalid/stale_tokens`` if a stage rewrites its text."""
        if not self.holds_tokens(ex):
            return False
        if self.tokenizer is None:
            if self.started:
                return True
            raise ConfigError(self._refusal())
        if not self.probed:
            self.probed = True
            self._probe(ex)
        return False

    def _refusal(self) -> str:
        tf, tok = self.text_field, self.token_field
        return (f"the records hold {tok!r} as well as the text field {tf!r}, and the stage(s) {self.stages} rewrite "
                f"that text: the tokens would still hold what the stages remove (e.g. the e-mail addresses a "
                f"scrubber replaced), so the model would train on it. Either wrap the data before tokenising it "
                f"(train = guard.wrap(raw_train), then train.map(tokenize)), or pass the tokenizer, with the "
                f"settings you tokenised with, so that the guard re-tokenises rewritten text: "
                f"tdg.Guard(..., text_field={tf!r}, tokenizer=functools.partial(tokenizer, truncation=True, "
                f"max_length=128))")

    def _probe(self, ex: Example) -> None:
        rec = ex.record
        out = self._tokenize(ex.text)
        old = as_token_list(rec[self.token_field])
        if as_token_list(out[self.token_field]) != old:
            raise ConfigError(
                f"tokenizer= does not reproduce the records' {self.token_field!r} from their {self.text_field!r} "
                f"text (checked on the first record that holds both): call it with the settings you tokenised "
                f"with, e.g. tokenizer=functools.partial(tokenizer, truncation=True, max_length=128, "
                f"padding='max_length'), or wrap the data before tokenising it")
        for name, value in rec.items():
            if name in out or name == self.token_field or not _is_sequence(value):
                continue
            aligned = len(as_token_list(value)) == len(old)
            if aligned and not (name == _LABELS and as_token_list(value) == old):
                raise ConfigError(
                    f"field {name!r} has one entry per token of {self.token_field!r} and the tokenizer does not "
                    f"produce it, so it cannot follow rewritten text: wrap the data before tokenising it")

    # -- after the stages -------------------------------------------------------------------------------------
    def sync(self, old_text: Optional[str], ex: Example) -> Example | Drop:
        """``ex`` with its token fields made from its (rewritten) text when the text changed; else ``ex``.

        A :class:`~torchdataguard.core.stage.Drop` (``invalid/stale_tokens``) when the record's old tokens do
        not come from ``old_text`` (they were made from another text, or another field).
        """
        if old_text is None or ex.text == old_text or not self.holds_tokens(ex) or self.tokenizer is None:
            return ex
        rec = ex.record
        old = as_token_list(rec[self.token_field])
        if as_token_list(self._tokenize(old_text)[self.token_field]) != old:
            return self._stale(ex.id, "its tokens do not come from its text")
        out = self._tokenize(ex.text)
        new = dict(rec)
        for name, value in out.items():
            if name in rec and rec[name] is not None:
                new[name] = _like(as_token_list(value), rec[name])
        labels = rec.get(_LABELS)
        if labels is not None and _is_sequence(labels) and _LABELS not in out:
            if as_token_list(labels) == old:
                new[_LABELS] = _like(as_token_list(out[self.token_field]), labels)
            elif len(as_token_list(labels)) == len(old):
                return self._stale(ex.id, f"its {_LABELS!r} follow the old tokens")
        res = ex.with_record(new)
        res.count(_COUNT)
        return res

    def _stale(self, id_: Any, why: str) -> Drop:
        if self.strict:
            raise GuardInputError(
                f"record {id_!r}: a stage rewrote its {self.text_field!r} text but {why}, so its "
                f"{self.token_field!r} cannot be re-made. Fix the record, or pass strict=False to drop such records "
                f"with reason {STALE_TOKENS!r} and a count in the report.")
        return Drop(STALE_TOKENS)

    def _tokenize(self, text: str) -> Dict[str, Any]:
        out = self.tokenizer(text)
        if not isinstance(out, Mapping) or self.token_field not in out:
            raise ConfigError(f"tokenizer(text) returned {type(out).__name__} without {self.token_field!r}: pass a "
                              f"callable that returns a mapping with {self.token_field!r}, such as a Hugging Face "
                              f"tokenizer")
        return dict(out)


def text_rewriters(stages: Sequence[Any]) -> List[str]:
    """Names of the record stages that rewrite text (``rewrites_text``), in order."""
    return [st.name for st in stages if getattr(st, "kind", None) == "record" and getattr(st, "rewrites_text", False)]


def sync_tokens(sync: Optional[TokenSync], old_texts: Sequence[Optional[str]], exs: List[Example],
                pre: List[Optional[Tuple[int, Drop]]], late: Sequence[int] = ()) -> None:
    """Re-tokenise, in place, every example of a chunk whose text changed; a stale one is dropped (step -1:
    withheld from the quarantine file, as its tokens may hold what a scrubber removed). Without a tokenizer,
    the rows ``late`` (tokenised records met after the first chunk, see :meth:`TokenSync.check`) whose text a
    stage changed are dropped that way."""
    if sync is None:
        return
    if sync.tokenizer is None:
        for i in late:
            if pre[i] is None and exs[i].text != old_texts[i]:
                pre[i] = (-1, sync._stale(exs[i].id, "no tokenizer was given to re-make its tokens"))
        return
    for i, ex in enumerate(exs):
        r = sync.sync(old_texts[i], ex)
        if isinstance(r, Drop):
            prior = pre[i]
            pre[i] = (-1, prior[1] if prior is not None else r)
        else:
            exs[i] = r
