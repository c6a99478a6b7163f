"""Personal data in the other fields of the records a scan writes.

``--stages pii`` scrubs the text field (and the fields named by ``--set 'pii.fields=[...]'``); every other field is
written to ``kept.jsonl`` as it came, and to ``dropped.jsonl`` for records dropped after the ``pii`` stage. A CSV with ``name``, ``email`` and ``text`` columns kept every address of its
``email`` column while the report counted the addresses scrubbed from ``text``, and nothing said so. The scan now
runs the stage's detectors over the other string fields of the first :data:`PROBE` records decided and names the
fields where they found something (the report's ``pii_other_fields``, and a warning on stderr with the fix): field
names and counts only, never a value, and data-like names are withheld as elsewhere.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ..core.textcheck import looks_like_data

__all__ = ["OtherFieldsProbe", "PROBE"]

#: records (kept or dropped) whose other fields are looked at
PROBE = 200


class OtherFieldsProbe:
    """Counts, per field other than those the ``pii`` stage scrubs, the probed records it finds personal data in."""

    def __init__(self, guard: Any, *, limit: int = PROBE) -> None:
        self.stage: Optional[Any] = next((s for s in guard.record_stages if getattr(s, "name", "") == "pii"), None)
        scrubbed = tuple(getattr(getattr(self.stage, "settings", None), "fields", ()) or ())
        self.skip = {guard.text_field, guard.id_field, *scrubbed}
        self.left = limit if self.stage is not None else 0
        self.checked = 0
        self.found: Dict[str, int] = {}

    def see(self, record: Any) -> None:
        """Look at one record as the stages left it (a no-op once :data:`PROBE` records were seen, or without a ``pii`` stage)."""
        if self.left <= 0 or not isinstance(record, Mapping):
            return
        self.left -= 1
        self.checked += 1
        for name, value in record.items():
            if name in self.skip or not isinstance(value, str) or not value:
                continue
            if self.stage.detect(value):
                self.found[name] = self.found.get(name, 0) + 1

    def report(self) -> Optional[Dict[str, Any]]:
        """``{"checked_records": n, "fields": {name: records}, "withheld_names": k}``, or ``None`` when nothing was found."""
        if not self.found:
            return None
        shown = {k: v for k, v in sorted(self.found.items()) if not looks_like_data(str(k))}
        return {"checked_records": self.checked, "fields": shown, "withheld_names": len(self.found) - len(shown)}
