import torchdataguard as tdg


def test_all_is_sorted_and_importable():
    assert tdg.__all__ == sorted(tdg.__all__)
    for name in tdg.__all__:
        assert getattr(tdg, name) is not None


def test_exact_and_near_on_list():
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(threshold=0.8)], device="cpu", progress=False)
    kept = g.wrap(["a cat sat on the mat", "A cat  sat on the mat", "dogs bark"])
    assert kept == ["a cat sat on the mat", "dogs bark"]
    rep = g.report()
    assert rep["dropped_by_reason"] == {"duplicate/exact": 1}
    assert rep["matches"][0]["matched"] == 0
