"""Word-level text augmentation in the spirit of EDA (Wei and Zou 2019), as a record stage.

For users without a tokenizer in the loop (or who want word-level changes before tokenising). One
operation is picked per augmented record, as EDA does per augmented sentence:

* ``synonym``: replace up to ``rate`` of the words that have a synonym with one of their synonyms;
* ``insert``: insert ``rate`` of the word count new words, each a synonym of a random word of the text
  (or, without a synonym source, a copy of a random word of the text);
* ``swap``: swap two random words, ``rate`` of the word count times;
* ``delete``: delete each word with probability ``rate`` (one word always survives).

Synonyms come from a mapping or a function you pass, or from WordNet through NLTK when NLTK and its
``wordnet`` data are installed locally (``synonyms="wordnet"``); nothing is downloaded at run time.
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..core.stage import Drop, Example, Rewriter, register_stage
from ..errors import ConfigError
from ..registry import Registry

__all__ = ["TEXT_OPS", "TextAugment", "TextAugmentConfig", "wordnet_synonyms"]

_OPS = ("synonym", "insert", "swap", "delete")  # the built-in operations, in the order of the default ``ops``
_WORD = re.compile(r"\S+")
#: five letters in a row of a script written without spaces between words (Han, kana, Thai, Lao, Khmer, Myanmar,
#: Tibetan): a "word" holding them is a phrase or a whole sentence, not a word. Such text is left as it is
#: (``augment/text/unsegmented``): until 2026-12-07 "insert" copied a whole Chinese or Japanese sentence into it,
#: "delete" dropped whole Thai phrases, and "swap" reordered them.
_UNSPACED_RUN = re.compile("[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u31f0-\u31ff"
                           "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]{5}")
_PUNCT = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)

#: Word-level operations by name: ``(stage, words, n, rng) -> (new words, how many words changed)``, where
#: ``n`` is the number of words to change (``rate`` of the word count, at least 1).
TEXT_OPS: Registry[Callable[["TextAugment", List[str], int, random.Random], Tuple[List[str], int]]] = Registry(
    "TextAugment op")

SynonymSource = Union[Mapping[str, Sequence[str]], Callable[[str], Sequence[str]]]


def wordnet_synonyms() -> Callable[[str], List[str]]:
    """A synonym function backed by NLTK's WordNet, if NLTK and its ``wordnet`` corpus are installed.

    Raises :class:`~torchdataguard.errors.ConfigError` with the install hint otherwise (no download is tried).
    """
    try:
        from nltk.corpus import wordnet  # type: ignore[import-not-found]
        import nltk  # type: ignore[import-not-found]

        nltk.data.find("corpora/wordnet")
    except (ImportError, LookupError):
        raise ConfigError("synonyms='wordnet' needs NLTK and its 'wordnet' corpus installed locally (nothing is "
                          "downloaded at run time): pip install nltk and install the corpus data (for instance with "
                          "python -m nltk.downloader wordnet on a machine with network), or pass synonyms= as a "
                          "dict {word: [synonyms]} or a function word -> list of synonyms") from None

    def lookup(word: str) -> List[str]:
        out: List[str] = []
        for syn in wordnet.synsets(word):
            for lemma in syn.lemmas():
                name = lemma.name().replace("_", " ")
                if name.lower() != word.lower() and name not in out:
                    out.append(name)
        return out

    return lookup


@dataclass
class TextAugmentConfig:
    """Settings of :class:`TextAugment`.

    Attributes:
        rate: share of the words an operation changes (EDA's alpha), in (0, 1].
        p: probability that a record is augmented at all.
        ops: the operations to pick from (uniformly, one per augmented record). ``"synonym"`` needs a
            synonym source; by default it is used only when one is given.
        synonyms: ``None``, a dict ``{word: [synonyms]}``, a function ``word -> [synonyms]`` or ``"wordnet"``.
        seed: seeds the choices; each record's choices depend on (seed, epoch, record id) only.
    """

    rate: float = 0.1
    p: float = 1.0
    ops: Optional[Tuple[str, ...]] = None
    synonyms: Any = None
    seed: int = 0

    def __post_init__(self) -> None:
        problems: List[str] = []
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) or not 0.0 < self.rate <= 1.0:
            problems.append(f"rate={self.rate!r}: expected a float in (0, 1] (share of words changed)")
        if isinstance(self.p, bool) or not isinstance(self.p, (int, float)) or not 0.0 <= self.p <= 1.0:
            problems.append(f"p={self.p!r}: expected a probability in [0, 1]")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed={self.seed!r}: expected a non-negative integer")
        syn = self.synonyms
        if not (syn is None or syn == "wordnet" or isinstance(syn, Mapping) or callable(syn)):
            problems.append(f"synonyms={syn!r}: expected None, 'wordnet', a dict word -> synonyms or a function")
        if self.ops is None:
            self.ops = _OPS if syn is not None else tuple(o for o in _OPS if o != "synonym")
        else:
            ops = (self.ops,) if isinstance(self.ops, str) else tuple(self.ops)
            bad = [o for o in ops if o not in TEXT_OPS]
            if bad or not ops:
                known = [*_OPS, *(o for o in TEXT_OPS if o not in _OPS)]
                problems.append(f"ops={self.ops!r}: expected a non-empty subset of {known}")
            elif "synonym" in ops and syn is None:
                problems.append("ops includes 'synonym' but no synonym source is set: pass synonyms= (a dict, a "
                                "function or 'wordnet'), or leave 'synonym' out")
            self.ops = tuple(dict.fromkeys(ops))
        if problems:
            raise ConfigError.collect(problems, "TextAugment settings")
        self.rate, self.p = float(self.rate), float(self.p)


@register_stage("text_augment")
class TextAugment(Rewriter):
    """EDA-style word-level augmentation of each record's text (a :class:`~torchdataguard.Rewriter`).

    One operation (``synonym``, ``insert``, ``swap``, ``delete``, see the module docstring) is picked per
    augmented record; ``rate`` sets how many words it changes. Whitespace between the words that remain
    is kept; punctuation stays attached to its word. Choices are a pure function of ``(seed, epoch,
    record id)``, so DataLoader workers agree with the main process and a run is reproducible; call
    :meth:`set_epoch` at each epoch (before the workers start) to get new augmentations per epoch.
    Records without text pass unchanged, and so does text in a script written without spaces between words
    (five Han, kana, Thai, Lao, Khmer, Myanmar or Tibetan letters in a row: segment it into words separated by
    spaces first, e.g. with jieba, or augment tokens with :class:`~torchdataguard.TokenAugment`), counted as
    ``augment/text/unsegmented``. Per-record counts go to the report: ``augment/text/augmented`` and
    ``augment/text/<op>`` (words changed).

    Put it after the filters and dedup stages of a guard: it changes the text they would judge.

    Example:
        >>> aug = TextAugment(rate=0.3, ops=["swap"], seed=1)
        >>> out = aug.process(Example(0, "the quick brown fox jumps", "the quick brown fox jumps"))
        >>> sorted(out.text.split()) == sorted("the quick brown fox jumps".split()), out.counts
        (True, {'augment/text/augmented': 1, 'augment/text/swap': 2})
    """

    needs_text: ClassVar[bool] = True

    def __init__(self, *, rate: float = 0.1, p: float = 1.0, ops: Optional[Sequence[str]] = None,
                 synonyms: Any = None, seed: int = 0) -> None:
        self.settings = TextAugmentConfig(rate=rate, p=p, ops=tuple(ops) if ops is not None and not isinstance(ops, str)
                                            else ops, synonyms=synonyms, seed=seed)
        self.epoch = 0
        self._lookup: Optional[Callable[[str], Sequence[str]]] = None
        if synonyms == "wordnet":
            self._lookup = wordnet_synonyms()

    def config(self) -> Dict[str, Any]:
        s = self.settings
        syn = s.synonyms
        kind = None if syn is None else ("wordnet" if syn == "wordnet" else
                                         f"dict({len(syn)} words)" if isinstance(syn, Mapping) else "function")
        return {"rate": s.rate, "p": s.p, "ops": list(s.ops or ()), "synonyms": kind, "seed": s.seed}

    def set_epoch(self, epoch: int) -> None:
        """Key the choices by ``epoch`` as well, so that each epoch sees new augmentations."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ConfigError.bad("epoch", epoch, "a non-negative integer")
        self.epoch = epoch

    def state_dict(self) -> Dict[str, Any]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.set_epoch(int(state.get("epoch", 0)))

    def __getstate__(self) -> Dict[str, Any]:
        d = dict(self.__dict__)
        if self.settings.synonyms == "wordnet":
            d["_lookup"] = None  # rebuilt in the worker
        return d

    def __setstate__(self, d: Dict[str, Any]) -> None:
        self.__dict__.update(d)
        if self.settings.synonyms == "wordnet" and self._lookup is None:
            self._lookup = wordnet_synonyms()

    # -- helpers -----------------------------------------------------------------------------------------
    def _rng(self, id_: Any) -> random.Random:
        h = hashlib.blake2b(f"{self.settings.seed}\x1f{self.epoch}\x1f{id_!r}".encode("utf-8", "surrogatepass"),
                            digest_size=8).digest()
        return random.Random(int.from_bytes(h, "little"))

    def synonyms_of(self, word: str) -> List[str]:
        """Synonyms of ``word`` from the synonym source, with its punctuation kept and its capital restored
        (empty without a source).

        Example:
            >>> TextAugment(synonyms={"quick": ["fast"]}).synonyms_of("Quick,")
            ['Fast,']
        """
        syn = self.settings.synonyms
        m = _PUNCT.match(word)
        pre, core, post = (m.group(1), m.group(2), m.group(3)) if m else ("", word, "")
        if not core:
            return []
        if isinstance(syn, Mapping):
            cands = syn.get(core) or syn.get(core.lower()) or ()
        elif self._lookup is not None:
            cands = self._lookup(core)
        elif callable(syn):
            cands = syn(core)
        else:
            return []
        out = []
        for c in cands:
            if not isinstance(c, str) or not c or c == core:
                continue
            if core[:1].isupper() and c[:1].islower():
                c = c[:1].upper() + c[1:]
            out.append(pre + c + post)
        return out

    # -- the work ----------------------------------------------------------------------------------------
    def rewrite(self, ex: Example) -> Example | Drop:
        text = ex.text
        if not isinstance(text, str):
            return ex
        s = self.settings
        rng = self._rng(ex.id)
        if rng.random() >= s.p:
            return ex
        spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        if not spans:
            return ex
        if _UNSPACED_RUN.search(text) is not None:  # not split into words: nothing word-level to do
            out = ex.with_record(ex.record)
            out.count("augment/text/unsegmented")
            return out
        words = [text[a:b] for a, b in spans]
        seps = [text[spans[i][1]:spans[i + 1][0]] for i in range(len(spans) - 1)]
        op = rng.choice(list(s.ops or ()))
        n = max(1, int(round(s.rate * len(words))))
        new, changed = TEXT_OPS.get(op)(self, words, n, rng)
        if not changed:
            return ex
        body = new[0] + "".join((seps[i] if i < len(seps) else " ") + w for i, w in enumerate(new[1:]))
        out = ex.with_text(text[:spans[0][0]] + body + text[spans[-1][1]:])
        out.count("augment/text/augmented")
        out.count(f"augment/text/{op}", changed)
        return out


# -- the operations ------------------------------------------------------------------------------------


@TEXT_OPS.register("synonym")
def _synonym(aug: TextAugment, words: List[str], n: int, rng: random.Random) -> Tuple[List[str], int]:
    order = list(range(len(words)))
    rng.shuffle(order)
    out, done = list(words), 0
    for i in order:
        if done >= n:
            break
        cands = aug.synonyms_of(words[i])
        if cands:
            out[i] = rng.choice(cands)
            done += 1
    return out, done


@TEXT_OPS.register("insert")
def _insert(aug: TextAugment, words: List[str], n: int, rng: random.Random) -> Tuple[List[str], int]:
    out = list(words)
    use_syn = aug.settings.synonyms is not None
    for _ in range(n):
        src = words[rng.randrange(len(words))]
        cands = aug.synonyms_of(src) if use_syn else []
        new = rng.choice(cands) if cands else src
        out.insert(rng.randrange(len(out) + 1), new)
    return out, n


@TEXT_OPS.register("swap")
def _swap(aug: TextAugment, words: List[str], n: int, rng: random.Random) -> Tuple[List[str], int]:
    if len(words) < 2:
        return words, 0
    out = list(words)
    for _ in range(n):
        i, j = rng.sample(range(len(out)), 2)
        out[i], out[j] = out[j], out[i]
    return out, n


@TEXT_OPS.register("delete")
def _delete(aug: TextAugment, words: List[str], n: int, rng: random.Random) -> Tuple[List[str], int]:
    if len(words) < 2:
        return words, 0
    rate = aug.settings.rate
    keep = [w for w in words if rng.random() >= rate]
    if not keep:
        keep = [words[rng.randrange(len(words))]]
    return keep, len(words) - len(keep)
