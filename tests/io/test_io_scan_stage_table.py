"""The scan's lazy table of built-in stages: complete, refusing a clash at once, and the old import paths."""
import subprocess
import sys

import pytest

from torchdataguard.core.stage import STAGES
from torchdataguard.errors import ConfigError
from torchdataguard.scan.stages import BUILTIN, build_stages, load_builtin_stages


def test_the_table_names_every_built_in_stage():
    load_builtin_stages()
    builtin = {n for n in STAGES.names() if STAGES.get(n).__module__.startswith("torchdataguard.")}
    assert builtin == set(BUILTIN), "a built-in stage is missing from scan.stages.BUILTIN (scans cannot name it)"
    assert {n: STAGES.get(n).__module__ for n in BUILTIN} == BUILTIN


def test_a_user_stage_under_a_built_in_name_is_refused_when_the_scan_builds_it():
    # a fresh interpreter: the built-in quality module is not imported yet when the user registers the name
    code = """
import torchdataguard as tdg
from torchdataguard.core.stage import RecordStage
from torchdataguard.errors import ConfigError
from torchdataguard.scan.stages import build_stages

@tdg.register_stage("quality")
class Mine(RecordStage):
    name = "quality"
    def check(self, ex):
        return None

try:
    build_stages(["quality"])
except ConfigError as exc:
    print("refused:", exc)
else:
    print("built")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("refused:") and "already registered" in out.stdout, out.stdout


@pytest.mark.parametrize("cls", ["ExactDedup", "NearDedup", "Decontaminate", "PIIScrubber", "QualityFilter",
                                 "LanguageID", "Normalize", "TextAugment"])
def test_the_stage_classes_still_import_from_scan_stages(cls):
    import torchdataguard as tdg
    from torchdataguard.scan import stages

    assert getattr(stages, cls) is getattr(tdg, cls)


def test_the_ray_module_is_an_attribute_of_scan():
    import torchdataguard.scan as scan

    assert scan.ray.__name__ == "torchdataguard.scan.ray"
    with pytest.raises(AttributeError):
        scan.no_such_thing  # noqa: B018


def test_unknown_stage_names_every_stage():
    with pytest.raises(ConfigError, match="expected one of"):
        build_stages(["qualty"])
