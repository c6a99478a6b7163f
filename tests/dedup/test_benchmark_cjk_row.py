"""The CJK row of benchmarks/dedup_vs_datasketch.py and the datasketch peer's own script-aware shingles."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from torchdataguard.dedup.hashing import shingles

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BENCH = os.path.join(REPO, "benchmarks")
FIXTURES = os.path.join(REPO, "tests", "fixtures", "zh")

MIXED = [
    "我用Ｐｙｔｈｏｎ写代码。",
    "在 Debian 中，使用 apt 安装软件包：先运行 apt update 更新软件包列表，再运行 apt install 安装所需的软件包。",
    "今天天气很好", "今天", "。。！", "", "   ", "!!", "The quick brown fox jumps over the lazy dog.",
    "İstanbul 中文 naïve café — “quoted” text", "foo\u200bbar 数据去重测试\t和\n换行", "数据😀去重©测试 ok",
    "ｶﾀｶﾅ、ひらがな、ไทย ภาษา 한국어 텍스트 ㄅㄆㄇ", "表\xa011.16.\xa0有助于邮件数据转换的软件包列表 (IMAP4)",
    "ls [\\,选项\\/]... [\\,文件列表\\/]...", "Ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ１２３，数据。",
]


def load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(BENCH, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pipelines_script_shingles_equal_neardedups_shingles():
    ds = load("_datasketch_pipeline")
    texts = list(MIXED)
    for name in ("passages.jsonl", "short.jsonl", "other_languages.jsonl"):
        with open(os.path.join(FIXTURES, name), encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh if line.strip()]
    for t in texts:
        assert [s.decode("utf-8", "surrogatepass") for s in ds.script_shingles(t)] == shingles(t), t
    # and they are not the word shingles the English rows use: a run of Han characters is not one word
    assert ds.script_shingles("今天天气很好") != ds.shingles("今天天气很好")
    assert ds.script_shingles("数据去重测试") == ["数 据 去 重 测".encode(), "据 去 重 测 试".encode()]


def test_the_datasketch_pipeline_imports_neither_torch_nor_torchdataguard(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                           for i, t in enumerate(["数据去重测试一下", "数据去重测试一下。", "完全不同的文本内容"])),
                   encoding="utf-8")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import _datasketch_pipeline as DS; "
            "DS.main([sys.argv[2], sys.argv[3], '--shingles', 'script']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchdataguard'}))")
    out = subprocess.run([sys.executable, "-c", code, BENCH, str(inp), str(tmp_path / "out")], check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()
    assert out[-1] == "[]"
    assert json.loads(out[-2])["kept"] == 2  # the second text is the first after NFKC: an exact drop


def test_rows_cjk_without_its_sources_is_skipped_by_default_and_refused_by_name(tmp_path):
    bench = load("dedup_vs_datasketch")
    wanted, skipped = bench.choose_rows(None, str(tmp_path))
    assert "cjk" not in wanted and "5-30" in wanted
    assert skipped[0]["row"] == "cjk" and "apt-get download manpages-zh fortunes-zh" in skipped[0]["reason"]
    with pytest.raises(ValueError, match="manpages-zh and fortunes-zh not found"):
        bench.choose_rows("5-30,cjk", str(tmp_path))
    assert bench.choose_rows(None, FIXTURES) == ([b[0] for b in bench.C.BUCKETS] + ["cjk"], [])
    with pytest.raises(ValueError, match="unknown row"):
        bench.choose_rows("chinese", FIXTURES)


def test_cjk_row_smoke_on_the_fixture_texts(tmp_path):
    """The whole row (scan and datasketch subprocesses, wrap, signatures, index bytes, quality) on the small
    real Chinese fixture set; no timing is asserted."""
    bench = load("dedup_vs_datasketch")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    r = bench.run_row("cjk", 200, 1, str(tmp_path), env, FIXTURES)
    docs, pairs = bench.corpus("cjk", 200, cjk_root=FIXTURES)
    n, planted = len(docs), len(pairs)
    assert (r["documents"], r["planted"]) == (n, planted) and planted >= 30
    for key in ("scan_docs_per_s", "scan_inner_docs_per_s", "wrap_docs_per_s", "signatures_per_s"):
        assert set(r[key]) == {"torchdataguard", "datasketch", "ratio"} and min(r[key].values()) > 0, key
    assert r["index_bytes_per_kept_document"]["torchdataguard"] > 0
    assert r["index_bytes_per_kept_document"]["datasketch"] > 0
    assert r["commands"]["datasketch"].endswith("--shingles script")
    # kept counts: the scan and wrap agree; every exact copy is dropped, and at most a few base texts are
    exact_copies = sum(kind == "exact" for _, _, kind in pairs)
    assert exact_copies > 0
    assert r["kept"]["scan"] == r["kept"]["wrap"]
    assert r["kept"]["datasketch"] == r["kept"]["datasketch_wrap"]
    for side in ("scan", "datasketch"):
        assert 0.97 * (n - planted) <= r["kept"][side] <= n - exact_copies, side
    q = r["quality"]["torchdataguard"]
    assert set(q["recall"]) == {">=0.9", "0.8-0.9", "0.7-0.8", "<0.5"}
    assert q["recall"][">=0.9"][1] > 0 and q["recall"][">=0.9"][0] >= 0.9
    assert q["short_false_drops"] == 0 and q["false_drops"] == 0
    assert r["shingle_agreement"] == {"documents": n, "identical_sets": n, "identical_lists": n,
                                      "first_differing": []}
    assert r["lengths"]["median_chars"] == r["median_chars"] and r["source"].startswith("tests/fixtures/zh")
