"""Context validation: a dotted quad that reads as a version (``dpkg (1.2.3.4)``, ``version 1.2.3.4``) is not
an IPv4 address.

Example:
    >>> is_version_context("upgrade to version 1.2.3.4", 19, 26)
    True
"""
from __future__ import annotations

import re

__all__ = ["is_version_context"]

_VERSION_KEYWORD = re.compile(
    r"(?:(?:^|[^\w])(?:versions?|releases?|revision|build|policy|upstream|standards?|firmware)\b"
    r"(?:[\s:=()\-]*(?:to|is|was|of|from|now|update[ds]?|upgrade[ds]?|bump(?:ed|s)?|set|changed?|raised?|moved?|the)\b){0,3}"
    r"[\s:=()#\-]*"
    r"|(?:^|[^\w])(?:ver|rel|rev)\.?\s*[:=#]?\s*|(?:^|[^\w])v\.\s*)$", re.IGNORECASE)
_VERSION_ATTACHED = re.compile(r"(?:^|[^\w./:])[A-Za-z][A-Za-z0-9+.]*(?:[-_/]|[=~<>!]=)$")
_VERSION_RELATION = re.compile(r"\(\s*(?:<<|>>|<=|>=|=|<|>)\s*(?:\d+:)?$")
_VERSION_DEB_LEFT = re.compile(r"^\s*[a-z0-9][a-z0-9+.\-]*\s\((?:\d+:)?$")
_VERSION_DEB_RIGHT = re.compile(r"[\w.+~:\-]*\)\s+[A-Za-z][\w\-]*(?:\s+[A-Za-z][\w\-]*)*\s*;\s*urgency=")
_FILE_SUFFIX = re.compile(r"\.(?:tar|tgz|tbz2?|txz|zip|deb|udeb|dsc|rpm|orig|gz|bz2|xz|jar|whl|egg|exe|msi|dmg|apk)\b",
                          re.IGNORECASE)
_HOST_SUFFIX = re.compile(r"\.[A-Za-z]")
_VERSION_WORDS = ("version", "release", "revision", "build", "policy", "upstream", "standard", "firmware", "ver",
                  "rel", "rev", "v")
_VERSION_SUFFIX = re.compile(r"-(?!\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})\d|[~+][A-Za-z0-9]")
# Chinese (Simplified and Traditional): a version word just before (版本 1.2.3.4, 升级到版本1.2.3.4, 固件
# 2.0.1.3, 内核4.19.0.1), or 版 right after it (1.2.3.4版); Thai and Japanese "version" (เวอร์ชัน, バージョン: since
# 2026-12-07 a number glued to Thai is a candidate, and เวอร์ชัน1.2.3.4 was redacted as an address)
_VERSION_ZH_LEFT = re.compile(r"(?:版本号?|版本號|发行版|發行版|发布版?|發佈版?|修订版?|修訂版?|固件|韌體|内核|內核|核心"
                              r"|เวอร์ชั่?น|バージョン)"
                              r"\s*(?:[:：=]|为|為|是|升级到|升級到|更新到|到)?\s*[vV]?\s*$")
_VERSION_ZH_RIGHT = re.compile(r"版")


def is_version_context(text: str, start: int, end: int) -> bool:
    """True when the dotted quad ``text[start:end]`` reads as a version rather than an IPv4 address.

    A dotted quad is taken for a version when it follows the word version (or release, revision, build,
    policy, upstream, standards, firmware), possibly through up to three linking words ("updated to",
    "bumped to", "is now"), or
    directly follows ver, rev, rel or "v."; when it is attached to a package name (``foo-1.2.3.4``,
    ``foo/1.2.3.4``, ``foo==1.2.3.4``), sits in a version relation (``(>= 1.2.3.4)``), carries a package
    revision (``1.2.3.4-1``, ``1.2.3.4~rc1``, ``1.2.3.4+dfsg``), or is the version of a Debian changelog
    header (``pkg (1:1.2.3.4-2) unstable; urgency=low``); in Chinese, when it follows 版本, 版本号, 发行版,
    发布, 修订, 固件, 内核 (or their Traditional forms), or 版 follows it; in Thai and Japanese, when it follows
    เวอร์ชัน or バージョン. An address in a URL, a host name or
    a mail header stays an address.

    Example:
        >>> t = "dpkg (1.2.3.4) unstable; urgency=low"
        >>> is_version_context(t, 6, 13)
        True
        >>> t = "from localhost (127.0.0.1) by mail"
        >>> is_version_context(t, 16, 25)
        False
    """
    if _HOST_SUFFIX.match(text, end) and not _FILE_SUFFIX.match(text, end):
        return False  # an address inside a host name (dialup-10.1.2.3.example.net)
    if start > 0 and text[start - 1] == "[":
        return False  # [10.1.2.3]: how mail headers and URLs bracket addresses
    if _VERSION_SUFFIX.match(text, end) or _VERSION_ZH_RIGHT.match(text, end):
        return True
    lo = max(0, start - 80)
    nl = text.rfind("\n", lo, start)
    line_left = text[(nl + 1 if nl >= 0 else lo):start]
    tail = line_left.rstrip()
    last = tail[-1:]
    # cheap tests first: each regex runs only when its tell-tale character or word is there
    if last in ("-", "_", "/", "=") and (_VERSION_ATTACHED.search(line_left) or _VERSION_RELATION.search(line_left)):
        return True
    if last in ("(", "<", ">", ":") and _VERSION_RELATION.search(line_left):
        return True
    if not tail.isascii() and _VERSION_ZH_LEFT.search(line_left):
        return True
    low = line_left.lower()
    if (last.isalpha() or last in (".", ":", "=", "#", "(")) and any(k in low for k in _VERSION_WORDS):
        if _VERSION_KEYWORD.search(line_left):
            return True
    if last in ("(", ":") and (nl >= 0 or lo == 0) and _VERSION_DEB_LEFT.match(line_left):
        return bool(_VERSION_DEB_RIGHT.match(text, end, min(len(text), end + 120)))
    return False

