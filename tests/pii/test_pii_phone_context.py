"""Phone numbers with a country code but no "+" after a phone word, Russian numbers with the trunk 8 and longer area
codes, and the "call" of disassembly, which is an instruction and not a phone word (fourteenth session)."""
import shutil
import subprocess

import pytest

import torchdataguard as tdg
from torchdataguard.assets import load_spamassassin
from torchdataguard.pii import find_pii


def found(text):
    return [(d.entity, text[d.start:d.end]) for d in find_pii(text)]


@pytest.mark.parametrize("text, number", [
    ("Tel: 852-23456789\nFax", "852-23456789"),  # Hong Kong letterheads in SpamAssassin are written so
    ("Fax: 852 2345 6789", "852 2345 6789"),
    ("Tel: (852) 2345 6789", "(852) 2345 6789"),
    ("TEL: 31 201234567", "31 201234567"),
    ("Tel/Fax: 44-870-123-4567", "44-870-123-4567"),
    ("Tel : 82-2-123-4567<br>", "82-2-123-4567"),
    ("Phone: 49 30 1234567", "49 30 1234567"),
    ("Tel: 44 (0)20 7946 0958", "44 (0)20 7946 0958"),
    ("Tel: 39 06 1234 5678", "39 06 1234 5678"),  # Italian numbers keep their 0
    ("Mobile: 65 6123 4567.", "65 6123 4567"),
    ("тел. 7 (495) 123-45-67", "7 (495) 123-45-67"),
    ("Tel: 852 2345 6789 2345 6790", "852 2345 6789"),  # a Hong Kong number has 8 digits: not the next one's group
    # the Russian trunk 8 with area codes of 4 and 5 digits, and other groupings
    ("Tel: 8 (3452) 12-34-56", "8 (3452) 12-34-56"),
    ("тел. 8 (34535) 5-12-34", "8 (34535) 5-12-34"),
    ("тел. 8 800 2000 600", "8 800 2000 600"),
    ("Tel: 8495 123 45 67", "8495 123 45 67"),
])
def test_numbers_missed_before(text, number):
    assert found(text) == [("phone", number)]


@pytest.mark.parametrize("text, number", [
    ("Tel: 84951234567", "84951234567"), ("тел. 89161234567", "89161234567"), ("тел. 8 (495) 123-45-67", "8 (495) 123-45-67"),
    ("Tel. 8-495-1234567", "8-495-1234567"), ("Tel: 8(495)1234567", "8(495)1234567"),
])
def test_trunk_8_forms_found_before_still_found(text, number):
    assert found(text) == [("phone", number)]


@pytest.mark.parametrize("text", [
    "Order 852-23456789",  # no phone word
    "Tel: 10 2345 6789",  # 10 is no country code
    "Tel: 1 2345 6789",  # 1 is North America: ten digits after it
    "Tel: 49 030 1234567",  # a trunk 0 after the country code
    "Tel: 852 2345",  # too few digits
    "Tel: 852 2345678",  # a Hong Kong number has 8 digits
    "Tel: 8 (495) 123-45-6",  # 9 digits after the 8
    "Tel: 8 123 45 67",
])
def test_lookalikes_left_alone(text):
    assert found(text) == []


OBJDUMP_LINE = "  4011a6:\te8 f5 fe ff ff       \tcall   {} <puts@plt>"


@pytest.mark.parametrize("text", [
    OBJDUMP_LINE.format("40052300"),
    "  4011a6:\tcall   40052300 <puts@plt>",  # objdump --no-show-raw-insn
    "\tcall\t40052300\n\tret",  # assembler source
    "call   40052300 <main+0x12>",  # the mnemonic's padding and a symbol
    OBJDUMP_LINE.format("0401234567"),  # a trunk 0 after the word
])
def test_call_in_disassembly_is_not_a_phone_word(text):
    assert found(text) == []


@pytest.mark.parametrize("text, number", [
    ("please call 2345 6789 today", "2345 6789"),
    ("please call  2345 6789", "2345 6789"),  # two spaces, no symbol after
    ("Call   2345 6789 <john>", "2345 6789"),  # upper case: prose
    ("1: call 2345 6789", "2345 6789"),
    ("To order,\tcall 020 7946 0958", "020 7946 0958"),
    ("call 852-23456789", "852-23456789"),
])
def test_call_in_prose_is_still_a_phone_word(text, number):
    assert found(text) == [("phone", number)]


@pytest.mark.skipif(shutil.which("objdump") is None or shutil.which("ls") is None, reason="no objdump here")
def test_real_disassembly_has_no_phone_numbers():
    # relocated so that call targets are 8 digits, as in 32-bit and large binaries: before, about one call in
    # three was taken for a Hong Kong or Singapore number (2,522 in /bin/ls, objdump, bash and gzip)
    out = subprocess.run(["objdump", "-d", "--adjust-vma=0x40000000", shutil.which("ls")], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    chunks = ["\n".join(out[i:i + 40]) for i in range(0, min(len(out), 8000), 40)]
    calls = sum(c.count("\tcall   4") for c in chunks)
    assert calls > 100
    assert [d for c in chunks for d in find_pii(c, entities=["phone"])] == []


def test_letterhead_numbers_in_spamassassin_are_scrubbed():
    # lines such as "Tel: 852-2xxxxxxx" / "Fax: 852-2xxxxxxx" of Hong Kong letterheads: before, both passed
    scrub = tdg.PIIScrubber(entities=["phone"])
    lines = [line for r in load_spamassassin() for line in r["text"].splitlines()
             if line.startswith(("Tel:", "Fax:")) and "852" in line and "+" not in line]
    assert len(lines) >= 4
    for line in lines:
        assert not any(ch.isdigit() for ch in scrub.scrub(line)), "a letterhead number survived"


@pytest.mark.parametrize("bare, plus", [("Mobile: 65 6123 4567", "Mobile: +65 6123 4567"),
                                        ("Tel: 852-23456789", "Tel: +852 2345 6789"),
                                        ("Tel: 44 (0)20 7946 0958", "Tel: +44 (0)20 7946 0958")])
def test_a_country_code_without_plus_gets_the_pseudonym_of_the_plus_spelling(bare, plus):
    pseudo = tdg.PIIScrubber(actions="pseudonymize", key=b"k" * 32)
    assert pseudo.scrub(bare).split()[-1] == pseudo.scrub(plus).split()[-1]
    # North American numbers keep theirs: (212) 555-0123 is +1 212 555 0123
    assert pseudo.scrub("call (212) 555-0123").split()[-1] == pseudo.scrub("call +1 212 555 0123").split()[-1]
