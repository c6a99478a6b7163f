"""Duplicate clusters of the HTML report: each cluster's kept and dropped members, reasons and scores, as the
member-by-member rule gives them."""
import random
from collections import Counter

from torchdataguard.report.html.numbers import as_number
from torchdataguard.report.html.sections.duplicates import clusters, id_key, largest_clusters


def _reference(matches):
    """The rule spelt out another way: connected components by a graph walk, then each field from its own pass
    over the members (first seen first: a pair's matched example before the dropped one)."""
    order, shown, dropped, near = {}, {}, {}, {}

    def add(k, v):
        if k not in order:
            order[k], shown[k] = len(order), v

    for m in matches:
        a, b = id_key(m.get("id")), id_key(m.get("matched"))
        add(b, m.get("matched"))
        add(a, m.get("id"))
        dropped[a] = m
        near.setdefault(a, set()).add(b)
        near.setdefault(b, set()).add(a)
    groups, seen = {}, set()
    for k in sorted(order, key=order.__getitem__):
        if k in seen:
            continue
        seen.add(k)
        todo, members = [k], []
        while todo:
            x = todo.pop()
            members.append(x)
            for y in near[x] - seen:
                seen.add(y)
                todo.append(y)
        groups[k] = members
    out = []
    for members in groups.values():
        members.sort(key=order.__getitem__)
        out.append({
            "size": len(members), "first": order[members[0]],
            "kept": [shown[k] for k in members if k not in dropped],
            "dropped": [(shown[k], str(dropped[k].get("reason", "")), as_number(dropped[k].get("score")))
                        for k in members if k in dropped],
            "reasons": Counter(str(dropped[k].get("reason", "")) for k in members if k in dropped),
            "scores": [s for s in (as_number(dropped[k].get("score")) for k in members if k in dropped)
                       if s is not None],
        })
    out.sort(key=lambda c: (-c["size"], c["first"]))
    return out


def _random_matches(rng):
    for _ in range(300):
        matches = []
        for _ in range(rng.randint(0, 60)):
            m = {"id": rng.choice([rng.randint(0, 40), str(rng.randint(0, 40)), [rng.randint(0, 3)]]),
                 "matched": rng.choice([rng.randint(0, 40), str(rng.randint(0, 5))])}
            if rng.random() < 0.9:
                m["reason"] = rng.choice(["duplicate/exact", "duplicate/near", 7])
            if rng.random() < 0.8:
                m["score"] = rng.choice([1.0, 0.8125, 0.9, None, "x", True, float("nan")])
            matches.append(m)
        yield matches


def test_clusters_match_the_member_by_member_rule():
    for matches in _random_matches(random.Random(5)):
        got = clusters(matches)
        assert got == _reference(matches)
        assert [list(c["reasons"].most_common()) for c in got] == [
            list(c["reasons"].most_common()) for c in _reference(matches)]


def test_largest_clusters_describe_the_top_ones_and_size_them_all():
    for matches in _random_matches(random.Random(6)):
        every = _reference(matches)
        for top in (1, 2, 5, 1000):
            described, sizes = largest_clusters(matches, top)
            assert described == every[:top]
            assert sizes == [c["size"] for c in every]


def test_ids_of_different_types_never_share_a_cluster_by_their_text():
    """1 and "1", [1] and the text "j[1]" (what the key of [1] reads), True and 1 are different ids."""
    matches = [{"id": 1, "matched": 10, "reason": "duplicate/exact", "score": 1.0},
               {"id": "1", "matched": "10", "reason": "duplicate/exact", "score": 1.0},
               {"id": [1], "matched": "j[1]", "reason": "duplicate/near", "score": 0.9},
               {"id": "k", "matched": "i10", "reason": "duplicate/near", "score": 0.85},
               {"id": True, "matched": 1.0, "reason": "duplicate/near", "score": 0.8},
               {"id": ("k", "i10"), "matched": 10, "reason": "duplicate/near", "score": 0.95}]
    got = clusters(matches)
    assert got == _reference(matches) and [c["size"] for c in got] == [3, 2, 2, 2, 2]
