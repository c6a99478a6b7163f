"""The built-in stage table: every stage the command line and the scans can name, built by name.

The built-in stages (``exact``, ``near``, ``normalize``, ``quality``, ``langid``, ``pii``, ``text_augment``,
``decontaminate``) are named in :data:`BUILTIN` with the module that registers each one in
:data:`~torchdataguard.core.stage.STAGES`; a module is imported when its stage is first built, so a scan with
``--stages exact,near`` never imports the PII, quality, augmentation or decontamination code.
:func:`load_builtin_stages` registers them all.
"""
from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any, Dict, List, Optional, Sequence

from ..core.stage import STAGES, Stage
from ..errors import ConfigError

__all__ = ["BUILTIN", "build_stages", "load_builtin_stages", "order_warnings", "stage_class", "stage_names",
           "stage_options"]

#: built-in stage name -> the module that registers it
BUILTIN: Dict[str, str] = {
    "decontaminate": "torchdataguard.decontam.stage",
    "exact": "torchdataguard.dedup.exact",
    "langid": "torchdataguard.quality.langid",
    "near": "torchdataguard.dedup.near",
    "normalize": "torchdataguard.quality.normalize",
    "pii": "torchdataguard.pii.scrubber",
    "quality": "torchdataguard.quality.filter",
    "text_augment": "torchdataguard.augment.text",
}


#: the built-in stage classes importable from this module (as before the table was lazy): class -> stage name
_CLASSES: Dict[str, str] = {"Decontaminate": "decontaminate", "ExactDedup": "exact", "LanguageID": "langid",
                            "NearDedup": "near", "Normalize": "normalize", "PIIScrubber": "pii",
                            "QualityFilter": "quality", "TextAugment": "text_augment"}


def __getattr__(name: str) -> Any:
    """The built-in stage classes by class name (``from torchdataguard.scan.stages import NearDedup``), imported
    on first use."""
    if name in _CLASSES:
        return stage_class(_CLASSES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def stage_names() -> List[str]:
    """Every stage name a scan accepts: the built-in ones and any registered with ``register_stage``.

    Example:
        >>> {"exact", "near", "pii"} <= set(stage_names())
        True
    """
    return sorted(set(BUILTIN) | set(STAGES.names()))


def stage_class(name: str) -> type:
    """The stage class registered as ``name``, importing its built-in module on first use.

    Raises:
        ConfigError: no stage has that name (the message lists every name).

    Example:
        >>> stage_class("exact").__name__
        'ExactDedup'
    """
    if name in BUILTIN:  # always: a name registered elsewhere first then clashes here, at once, not later
        importlib.import_module(BUILTIN[name])
    if name not in STAGES:
        raise ConfigError(f"unknown stage {name!r}: expected one of {stage_names()}.")
    return STAGES.get(name)


def load_builtin_stages() -> List[str]:
    """Import every built-in stage (registering it) and return every registered stage name."""
    for name in BUILTIN:
        stage_class(name)
    return STAGES.names()


def build_stages(names: Sequence[str], *, threshold: Optional[float] = None,
                 options: Optional[Dict[str, Dict[str, Any]]] = None) -> List[Stage]:
    """Build stages by registry name with their defaults, ``threshold`` for ``near``, and per-stage options.

    Example:
        >>> [type(s).__name__ for s in build_stages(["exact", "near"], threshold=0.9)]
        ['ExactDedup', 'NearDedup']
    """
    options = options or {}
    stages = []
    unknown = [n for n in options if n not in names]
    if unknown:
        raise ConfigError(f"--set names stages {unknown} that are not in --stages {list(names)}")
    for name in names:
        cls = stage_class(name)
        kw = dict(options.get(name, {}))
        _check_options(name, cls, kw)
        if name == "near" and threshold is not None:
            kw.setdefault("threshold", threshold)
        try:
            stages.append(cls(**kw))
        except TypeError as exc:  # name the options, never their values (a key may be among them)
            raise ConfigError(f"stage {name!r} does not take the options {sorted(kw)}: {exc}") from None
    return stages


#: stages that rewrite each text at random, and the stages whose matches such a rewrite hides
_RANDOM_REWRITERS = ("text_augment",)
_MATCHERS = ("exact", "near", "decontaminate")


def order_warnings(names: Sequence[str]) -> List[str]:
    """Warnings about a stage order that defeats a stage: a random rewrite before a dedup or decontamination
    stage gives each copy of a text its own changes, so the copies no longer match.

    Example:
        >>> order_warnings(["exact", "text_augment"]), len(order_warnings(["text_augment", "exact", "near"]))
        ([], 1)
    """
    out = []
    for r in _RANDOM_REWRITERS:
        if r in names:
            late = [m for m in _MATCHERS if m in names and names.index(m) > names.index(r)]
            if late:
                out.append(f"--stages puts {r!r} before {late}: each copy of a text is changed at random first, so "
                           f"copies stop matching and are kept; put {r!r} last, e.g. --stages "
                           f"{','.join([n for n in names if n != r] + [r])}")
    return out


def stage_options(cls: type) -> Optional[List[str]]:
    """The keyword options a stage class takes (``None`` when it takes any: ``**kwargs``).

    Example:
        >>> "ngram" in stage_options(stage_class("near"))
        True
    """
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return sorted(p.name for p in params if p.name != "self" and p.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                                           inspect.Parameter.POSITIONAL_OR_KEYWORD))


def _check_options(name: str, cls: type, kw: Dict[str, Any]) -> None:
    """Refuse options the stage does not take, listing the ones it does (never the values: a key may be one)."""
    valid = stage_options(cls)
    if valid is None:
        return
    problems = []
    for opt in sorted(set(kw) - set(valid)):
        close = difflib.get_close_matches(opt, valid, n=1)
        hint = f" (did you mean {name}.{close[0]}?)" if close else ""
        problems.append(f"--set {name}.{opt}: stage {name!r} ({cls.__name__}) has no option {opt!r}{hint}; its "
                        f"options are {', '.join(valid)}")
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError.collect(problems, "--set options")
