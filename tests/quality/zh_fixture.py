"""The real Chinese text of tests/fixtures/zh/ and junk planted from it (navigation chrome, keyword stuffing,
mojibake, digit tables), each kind built by a seeded generator."""
import json
import pathlib
import random

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "zh"


def load(name):
    """Rows of ``tests/fixtures/zh/<name>.jsonl``."""
    with open(FIXTURES / f"{name}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


PASSAGES = load("passages")
SHORT = load("short")
OTHER = load("other_languages")

NAV = {"Hans": ["首页", "新闻", "体育", "财经", "娱乐", "科技", "汽车", "房产", "教育", "旅游", "游戏", "视频", "图片", "论坛",
                "登录", "注册", "关于我们", "联系我们", "网站地图", "帮助中心", "隐私政策", "免责声明", "广告服务", "招聘信息",
                "下载APP", "返回顶部", "更多>>", "上一页", "下一页", "我的订单", "购物车", "收藏本站", "设为首页"],
       "Hant": ["首頁", "新聞", "體育", "財經", "娛樂", "科技", "汽車", "房產", "教育", "旅遊", "遊戲", "影片", "圖片", "論壇",
                "登入", "註冊", "關於我們", "聯絡我們", "網站地圖", "幫助中心", "隱私權政策", "免責聲明", "廣告服務", "徵才資訊",
                "下載APP", "回到頂端", "更多>>", "上一頁", "下一頁", "我的訂單", "購物車", "加入最愛", "設為首頁"]}
FOOTERS = ["版权所有 © 2024 示例网络科技有限公司", "Copyright © 2024 版權所有 範例網", "京ICP备12345678号"]
PRODUCTS = ["手机壳", "苹果手机", "华为手机", "充电器", "蓝牙耳机", "数据线", "平板电脑", "笔记本电脑", "智能手表"]
PHRASES = ["{}价格", "{}多少钱", "{}哪里买", "最新{}", "正品{}", "{}批发", "{}官网", "{}推荐", "{}图片大全"]


def nav_chrome(rng, script="Hans"):
    """A site's menus, one row of links per line, and a footer."""
    rows = [rng.choice([" | ", "  ", " · ", "\n"]).join(rng.sample(NAV[script], rng.randint(4, 9)))
            for _ in range(rng.randint(3, 6))]
    return "\n".join(rows + [rng.choice(FOOTERS)])


def keyword_stuffing(rng, words):
    """60 to 140 keywords picked from ``words``, in random order, joined by one separator."""
    kws = rng.sample(words, min(len(words), rng.randint(4, 8)))
    return rng.choice([" ", "，", "、", ",", " | "]).join(rng.choice(kws) for _ in range(rng.randint(60, 140)))


def phrase_stuffing(rng):
    """Search-engine phrases around a few product names, in sentences that end in a full stop."""
    kws = rng.sample(PRODUCTS, 3)
    sents = ["，".join(rng.choice(PHRASES).format(rng.choice(kws)) for _ in range(6)) + "。" for _ in range(8)]
    return "".join(sents)


def mojibake(text, codec, errors="replace"):
    """``text``'s UTF-8 bytes decoded with ``codec`` ("gbk", "latin-1" or "cp1252")."""
    return text.encode("utf-8").decode(codec, errors=errors)


def digit_table(rng):
    """A table of figures under a Chinese header row."""
    head = rng.choice([["年份", "销售额", "增长率", "利润"], ["日期", "开盘", "收盘", "成交量"], ["編號", "數量", "單價", "金額"]])
    rows = ["\t".join(head)] + ["\t".join([str(2000 + r)] + [f"{rng.uniform(0, 9999):.2f}" for _ in head[1:]])
                                for r in range(rng.randint(10, 30))]
    return "\n".join(rows)


def planted_junk(words, n=30, seed=14):
    """``{kind: [texts]}``: ``n`` texts of each junk kind; ``words`` are real words for the stuffing."""
    rng = random.Random(seed)
    texts = [p["text"] for p in PASSAGES]
    return {
        "nav_chrome": [nav_chrome(rng, "Hans" if i % 2 else "Hant") for i in range(n)],
        "keyword_stuffing": [keyword_stuffing(rng, words) for _ in range(n)],
        "phrase_stuffing": [phrase_stuffing(rng) for _ in range(n)],
        "mojibake_gbk": [mojibake(texts[i % len(texts)], "gbk", ("replace", "ignore")[i % 2]) for i in range(n)],
        "mojibake_latin1": [mojibake(texts[i % len(texts)], "latin-1") for i in range(n)],
        "mojibake_cp1252": [mojibake(texts[i % len(texts)], "cp1252") for i in range(n)],
        "digit_table": [digit_table(rng) for _ in range(n)],
    }
