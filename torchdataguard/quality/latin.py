"""Is a Latin-script text English? A cheap guess from function words, for the quality rules' routing.

Without language identification, :class:`~torchdataguard.QualityFilter` judges Latin-script text by the
English rules (Gopher, C4, FineWeb). Those rules drop German, French or Spanish prose as junk: it has too
few of Gopher's English stop words (``the``, ``be``, ``to``, ``of``, ``and``, ``that``, ``have``, ``with``).
:func:`latin_language` names the language of such a text when its own function words show plainly
(``der``, ``und``, ``nicht`` ...), so that the stage judges it as it would after ``langid`` said so.

The guess is made only for text that fails Gopher's English stop-word rule (fewer than 2 of them), and it
needs at least 2 distinct function words of one language, more than the English ones (Gopher's and 46 other
English function words that are no other language's), that make up at least a tenth of the words (whitespace tokens of letters only: URLs and ids do not count). On English text it
does not fire: on the 6,046 SpamAssassin e-mail bodies it names 15, each a German, French or Turkish
message. On man-page
paragraphs it names 93% of the German ones, 81% of the French, 82% of the Spanish, 64% of the Turkish
(Debian's translated manuals; ``benchmarks/latin_routing.py``). Vietnamese writes one syllable per token, so its
function words are a smaller share of the tokens: with 14 of them the guess named 70% of the paragraphs of the
Vietnamese installation guide and GNOME help (the rest were judged as English and 33% of all dropped), with the 39
since 2026-12-07 94% (13% dropped).

Example:
    >>> latin_language("Die Datei wird nicht gelesen, wenn sie mit einem Punkt beginnt und leer ist.")
    'de'
    >>> latin_language("The file is not read when it starts with a dot.") is None
    True
"""
from __future__ import annotations

from typing import Dict, FrozenSet, Optional

from .rules import GOPHER_STOP_WORDS

__all__ = ["EN_FUNCTION_WORDS", "EN_STOP_WORDS", "FUNCTION_WORDS", "latin_language"]

#: Gopher's English stop words (the ``gopher_quality/stop_words`` rule counts them)
EN_STOP_WORDS: FrozenSet[str] = GOPHER_STOP_WORDS

#: Frequent function words of Latin-script languages, without English homographs that are common in English
#: text (``do``, ``no``, ``to``, ``at``, ``for``, ``on``, ``is``, ``by``, ``per``, ``come``, ``plus``, ``van``,
#: ``met``, ``till``, ``care``, ``mint``, ``her``, ``ale`` are left out, and ``com``, frequent in URLs)
FUNCTION_WORDS: Dict[str, FrozenSet[str]] = {lang: frozenset(words.split()) for lang, words in {
    "de": "der die und das ist nicht mit ein eine dem zu von auf für sich auch wird werden oder wenn bei nach sind kann",
    "fr": "le la les des et est une du que pour dans pas sur avec qui ce sont au aux par ne vous nous",
    "es": "el los las que por para con una del se es al como más pero sus lo está su este",
    "it": "il di che non una della sono con gli nel alla anche questo delle dei si è",
    "pt": "os que da em um uma para não dos das se por como mais ao na é",
    "nl": "het een en dat niet op te voor zijn die wordt worden ook naar kan aan bij deze",
    "pl": "nie na się że jest jak od przez dla lub oraz jeśli może są być tak tylko który która które po",
    "tr": "ve bir bu için ile da de olarak olan değil çok daha veya gibi ise kadar sonra",
    "sv": "och att det är som på för med av inte den har om kan ett eller vid",
    "da": "og er det på til med som ikke af den har en et kan eller skal vil",
    "cs": "je se na že jako pro není jsou nebo také který které jsem byl už",
    "ro": "și în este cu pe pentru nu sau din mai un sunt fi la",
    "hu": "és az egy hogy nem meg csak vagy ez volt már kell",
    "fi": "ja ei se että kun tai ovat oli myös mutta kuin jos niin",
    "id": "dan yang di dengan untuk ini dari tidak akan pada itu adalah dalam atau juga",
    "vi": "và của là có không được cho các một những trong này người đã để với khi thì sẽ từ đến nếu hoặc cũng về "
          "bạn mà nhưng vào còn rằng tại theo như nên phải vì đó bị",
    "sh": "je na se da za od ne su kao što ili koji ali biti",
}.items()}

#: Gopher's words and other English function words that are not frequent words of the languages above (``in``,
#: ``an``, ``was``, ``die``, ``a``, ``so``, ``is``, ``on``, ``for``, ``at``, ``he``, ``we``, ``my``, ``me``, ``are``,
#: ``or``, ``do``, ``by`` are left out): a text must show more of the guessed language's function words than of
#: these ("Visits always give pleasure: if not on arrival, then on the departure. -- Edouard Le Berquier, Pensees
#: des Autres" has ``le`` and ``des``, but ``if``, ``not``, ``then`` and ``the``: English)
EN_FUNCTION_WORDS: FrozenSet[str] = EN_STOP_WORDS | frozenset(
    "were been being has had not but if then than this these those it its they them their him his she our you your "
    "from into about which who what when where there here would will can could should shall might must does did "
    "very only".split()) - frozenset().union(*FUNCTION_WORDS.values())

#: punctuation stripped from both ends of a whitespace token; tokens with anything but letters left (URLs, ids,
#: ``os2002``, ``d'un``) are not words here
_PUNCT = "\"'()[]{}<>.,;:!?¡¿«»„“”‘’-–—…*/"
#: distinct function words of the language needed, and their share of all words
MIN_DISTINCT = 2
MIN_SHARE = 0.1
#: only the start of a long text is read
_SAMPLE = 20_000


def latin_language(text: str) -> Optional[str]:
    """The language (ISO 639-1; ``sh`` for Serbo-Croatian) whose function words ``text`` plainly shows, when
    it has fewer than 2 of Gopher's English stop words; else ``None`` (English, or no language shows).

    Example:
        >>> latin_language("Le fichier n'est pas lu s'il commence par un point et il est vide pour nous.")
        'fr'
        >>> latin_language("buy cheap pills now best price") is None
        True
    """
    words = [w for w in (t.strip(_PUNCT) for t in text[:_SAMPLE].lower().split()) if w.isalpha()]
    distinct = set(words)
    if len(distinct & EN_STOP_WORDS) >= 2:
        return None
    english = len(distinct & EN_FUNCTION_WORDS)
    best, n = None, 0
    for lang, fw in FUNCTION_WORDS.items():
        k = len(distinct & fw)
        if k > n:
            best, n = lang, k
    if best is None or n < MIN_DISTINCT or n <= english:
        return None
    fw = FUNCTION_WORDS[best]
    if sum(w in fw for w in words) < MIN_SHARE * len(words):
        return None
    return best
