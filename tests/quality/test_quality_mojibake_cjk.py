"""Real Japanese and Chinese read back through GBK make a few valid UTF-8 bytes by chance, as rare or unassigned
characters; until 2026-12-07 those counted as mojibake, and short messages of Debian's catalogues (place names in
katakana, menu labels) were dropped as quality/text_encoding/mojibake_ratio. Mojibake is still found."""
import pytest

from torchdataguard.quality.rules.neutral import mojibake_ratio

# messages of Debian's iso-codes, gtk and glib catalogues (ja, zh_CN)
REAL = ["アンザン", "アンガス", "アンカラ", "ベンガジ", "ブンクル", "ベンゲラ", "后杭爱省", "白金汉郡", "边框浮雕", "图像部件",
        "类层级结构", "ドライバー %s をインストール中"]


@pytest.mark.parametrize("text", REAL)
def test_real_short_cjk_is_not_mojibake(text):
    assert mojibake_ratio(text) == 0.0


@pytest.mark.parametrize("text", ["这是一个关于数据清洗的简短段落。", "ドライバーをインストール中です", "边框浮雕和图像部件",
                                  "안녕하세요 오늘 날씨가 좋네요", "表情😀和文字都很好"])
def test_mojibake_of_the_same_scripts_is_still_found(text):
    assert mojibake_ratio(text.encode("utf-8").decode("gbk", "replace")) > 0.5
    assert mojibake_ratio(text.encode("utf-8").decode("latin-1")) == 1.0

