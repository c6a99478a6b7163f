"""TextAugment on text written without spaces between words (Chinese, Japanese, Thai, Khmer, Myanmar): a
whitespace "word" there is a phrase or a sentence. Before, "insert" copied a whole sentence into the text
("这是…句子。 这是…句子。"), "delete" dropped whole Thai phrases and "swap" reordered them; now such text passes
unchanged, counted as augment/text/unsegmented. Text segmented with spaces (jieba's output) is augmented."""
import pytest

import torchdataguard as tdg

UNSPACED = ["这是一个关于数据清洗的简短段落，我们需要仔细检查每一个句子。",
            "ドライバーをインストール中です。しばらくお待ちください。",
            "กรุณารอสักครู่ ระบบกำลังติดตั้งไดรเวอร์ของคุณ",
            "ការកំណត់​ម៉ាស៊ីន​បោះពុម្ព ត្រូវ​បាន​បញ្ចប់",
            "ပရင်တာ ပြင်ဆင်မှု ပြီးဆုံးပါပြီ"]


@pytest.mark.parametrize("op", ["insert", "swap", "delete"])
@pytest.mark.parametrize("text", UNSPACED)
def test_text_without_spaces_between_words_passes_unchanged_and_counted(op, text):
    g = tdg.Guard([tdg.TextAugment(rate=0.5, ops=[op], seed=0)], progress=False)
    assert g.wrap([text] * 4) == [text] * 4
    assert g.report()["counts"] == {"augment/text/unsegmented": 4}


def test_segmented_chinese_korean_and_english_are_augmented():
    texts = ["今天 的 天气 很 好 我们 去 公园 散步 吧", "안녕하세요 오늘 날씨가 정말 좋네요 산책하러 갈까요",
             "the quick brown fox jumps over the lazy dog again and again"]
    g = tdg.Guard([tdg.TextAugment(rate=0.3, ops=["swap"], seed=0)], progress=False)
    out = g.wrap(texts)
    assert all(sorted(a.split()) == sorted(b.split()) and a != b for a, b in zip(texts, out))
    assert g.report()["counts"]["augment/text/augmented"] == 3
    assert "augment/text/unsegmented" not in g.report()["counts"]
