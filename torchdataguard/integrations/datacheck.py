"""Does the Trainer train on what the guard returned? A check run by :class:`GuardCallback` at ``on_train_begin``.

The five-line change of the first hour is ``raw["train"] = guard.wrap(raw["train"])`` before the tokenising
``map``. Two slips gave training the unguarded data while the callback logged the guard's counters, and its
report said what had been dropped and scrubbed: the wrapped dataset not assigned back (``guard.wrap(train)``
on a line of its own, or ``train_dataset=tokenised_raw`` built from the old name), and the wrap left out. A
map-style training set (its length is known) is compared with the lengths the guard was given and returned
(:func:`torchdataguard.data.dispatch.wrapped_lengths`): a training set as long as data the guard was given and
shortened, and as long as nothing it returned, or one met by a guard that never wrapped anything and has
stages that judge or rewrite records, is refused with a :class:`ConfigError` before the first step. Packing,
``filter`` or ``select`` after the wrap change the length to one the guard never saw and are not refused by length.
Whatever the lengths, a training set known for sure to be made from data given to ``guard.wrap`` and not from what
it returned (:func:`torchdataguard.data.lineage.unwrapped`: a ``datasets`` lineage mark, or the very torch dataset)
is refused too: a guard that drops nothing but rewrites records returns as many rows as it was given.
"""
from __future__ import annotations

from typing import Any, Optional

from ..data.dispatch import map_style_length, wrapped_lengths
from ..data.lineage import unwrapped
from ..errors import ConfigError

__all__ = ["check_training_data"]


def check_training_data(guard: Any, holder: Any, train_dataloader: Any) -> None:
    """Raise :class:`ConfigError` when ``train_dataloader`` holds data that did not go through the guard."""
    if train_dataloader is None or not (guard.record_stages or guard.index_stages):
        return
    names = [st.name for st in guard.record_stages + guard.index_stages]
    fix = ("Pass what guard.wrap returns, and tokenise that: raw_datasets['train'] = guard.wrap(raw_datasets['train']), "
           "then raw_datasets['train'].map(tokenize, ...)")
    data = getattr(train_dataloader, "dataset", None)
    n: Optional[int] = map_style_length(data)
    lengths = wrapped_lengths(holder) + (wrapped_lengths(guard) if holder is not guard else [])
    returned = {out for _, out in lengths}
    shortened = {given: out for given, out in lengths if given != out}
    if n and n not in returned and n in shortened:
        raise ConfigError(
            f"GuardCallback: the Trainer's train_dataset holds {n:,} examples, as many as the data given to guard.wrap, "
            f"not the {shortened[n]:,} that guard.wrap returned: it would train on the unguarded data (the "
            f"{n - shortened[n]:,} examples the guard dropped, and text its stages {names} did not rewrite, personal "
            f"data included), while the logs and the report count what the guard did. {fix}")
    how = unwrapped(guard, data)  # known for sure, whatever the lengths (data/lineage.py): a stream too
    if how is not None:
        raise ConfigError(
            f"GuardCallback: the Trainer's train_dataset {how}: it would train on the unguarded data (text its stages "
            f"{names} did not rewrite, personal data included, and any examples they dropped), while the logs and the "
            f"report count what the guard did. {fix}")
    if n and not lengths and guard.ledger.seen == 0:
        raise ConfigError(
            f"GuardCallback: the guard (stages {names}) has not wrapped any data, and the Trainer's train_dataset "
            f"({n:,} examples) did not come from guard.wrap: none of it would be deduplicated, filtered or scrubbed. "
            f"{fix}")
