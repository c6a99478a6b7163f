"""South Korean phone numbers planted in real Korean text, found by the default ``PIIScrubber()``; other digit
strings left alone.

Carrier sentences: messages of the Korean GTK 3 translation (Debian 12, libgtk-3-common 3.24.38, LGPL-2.1+).
Numbers are random digits in the shapes Koreans write them: mobile ``010-NNNN-NNNN`` (hyphens, spaces, dots or
none), older mobiles ``011``/``016``-``019``, Seoul ``02`` and regional area codes, ``070``, and ``+82``.
"""
import random

import pytest

from torchdataguard.pii import PIIScrubber
from torchdataguard.pii.keys import canonical_value

SCRUB = PIIScrubber()
CARRIERS = [
    "점안기를 클릭하고, 화면의 어디든 선택하고 싶은 색을 골라서 클릭하십시오.",
    "외부 고리에서 원하는 색을 선택하십시오. 내부 삼각형에서 그 색의 어둡기나 밝기를 선택하십시오.",
    "폴더 이름으로 다른 이름을 사용하거나, 먼저 기존 파일의 이름을 바꾸십시오.",
    "선택한 색. 이 색을 색상표 항목으로 드래그해서 저장한 다음 나중에 사용할 수 있습니다.",
]
AREAS = ["02", "031", "032", "033", "041", "042", "043", "044", "051", "052", "053", "054", "055", "061", "062",
         "063", "064", "070"]


def _d(rng, n):
    return "".join(rng.choice("0123456789") for _ in range(n))


def korean_numbers(seed=7):
    rng = random.Random(seed)
    out = []
    for sep in ("-", " ", "."):
        out.append(sep.join(["010", rng.choice("23456789") + _d(rng, 3), _d(rng, 4)]))
        out.append(sep.join([rng.choice(["011", "016", "017", "018", "019"]), rng.choice("23456789") + _d(rng, 2),
                             _d(rng, 4)]))
        for area in rng.sample(AREAS, 4):
            out.append(sep.join([area, rng.choice("23456789") + _d(rng, rng.choice([2, 3])), _d(rng, 4)]))
    out += ["010" + rng.choice("23456789") + _d(rng, 7), "(02) " + "3" + _d(rng, 2) + "-" + _d(rng, 4),
            "+82 10-" + _d(rng, 4) + "-" + _d(rng, 4), "+82-2-" + "5" + _d(rng, 2) + "-" + _d(rng, 4)]
    return out + ["010-1234-5678", "02-123-4567", "+82 10-1234-5678"]


@pytest.mark.parametrize("number", korean_numbers())
@pytest.mark.parametrize("lead,tail", [("연락처: ", " 입니다."), ("전화 ", "로 연락 주세요."), ("", "")])
def test_korean_numbers_in_korean_text_are_scrubbed(number, lead, tail):
    text = CARRIERS[len(number) % len(CARRIERS)] + " " + lead + number + tail
    dets = [(d.entity, text[d.start:d.end]) for d in SCRUB.detect(text)]
    assert dets == [("phone", number)]
    assert number not in SCRUB.scrub(text)


def test_modern_mobile_numbers_are_found_without_korean_context():
    text = "Reach the office manager at 010-2345-6789 or by e-mail."
    assert [(d.entity, text[d.start:d.end]) for d in SCRUB.detect(text)] == [("phone", "010-2345-6789")]


@pytest.mark.parametrize("text", [
    "the code is 02-123-4567 and the batch 031-2345-6789",  # landline shapes without Korean context
    "출시일 2010-1234-5678 코드",  # four leading digits: not an area code
    "버전 010-1234-5678-9 입니다",  # a longer number
    "항목 010-0123-4567",  # a group starting with 0
    "제품 ISBN 010-123-4567 번",  # 010 with a 3-digit group is no mobile number
    "대표번호 1588-1234 입니다",  # service numbers are businesses, not people
    "상품 코드 03-1234-5678",  # 03 is no area code
    "계좌 0101234567890",  # 13 digits
    "x010-1234-5678 값",  # glued to a letter
    "2023-10-15 12:30:45 로그",
    "the hotel room 02-123-4567 and the recall batch 031-2345-6789",  # "tel", "call" inside other words
])
def test_other_digit_strings_are_left_alone(text):
    assert [d for d in SCRUB.detect(text) if d.entity == "phone"] == []


def test_spellings_of_one_mobile_number_share_a_pseudonym():
    # not the +82 spelling: "Tel: 010-..." was found before Korean numbers were, and its pseudonym must not change
    # between versions for the same key (010 + 8 digits is also an Egyptian mobile number)
    assert canonical_value("phone", "010.2345.6789") == canonical_value("phone", "01023456789")


def test_a_pseudonym_found_before_korean_numbers_were_is_unchanged():
    # "Tel: 010-1234-5678" was scrubbed as a phone before this finder existed; the same key must give it the same
    # pseudonym as then, so its canonical form stays the digits as written
    assert [d.entity for d in SCRUB.detect("Tel: 010-1234-5678")] == ["phone"]
    assert canonical_value("phone", "010-1234-5678") == "01012345678"


def test_anchored_search_finds_what_the_full_scan_finds():
    # find_korean_phone tries its grouped pattern only in the windows before an anchor ("000-0000" in the
    # shape): on digit strings shaped like phone numbers, glued and overlapping, it must find exactly the
    # matches (spans and groups) of a scan of every position
    from torchdataguard.pii.detectors import finders_ko as K

    rng = random.Random(13)

    def piece() -> str:
        def zeros(a: int, b: int) -> str:
            return "0" * rng.randint(a, b)

        def sep() -> str:
            return rng.choice(" .-")

        area = rng.choice([zeros(1, 4) + sep(), "(" + zeros(1, 4) + ")" + rng.choice(["", " ", "  "]), zeros(1, 4)])
        return area + zeros(2, 5) + rng.choice([sep(), sep(), ""]) + zeros(3, 5)

    found = several = 0
    for _ in range(4000):
        shape = "".join(piece() if rng.random() < 0.7 else rng.choice(["a", " ", "-", ".", "0", "(", ")", "00-"])
                        for _ in range(rng.randint(1, 6)))
        full = [(m.span(), m.groupdict()) for m in K._GROUPED.finditer(shape)]
        assert [(m.span(), m.groupdict()) for m in K._grouped(shape)] == full, shape
        found += bool(full)
        several += len(full) > 1
    assert found > 400 and several > 20  # the strings do hold matches, some of them several
