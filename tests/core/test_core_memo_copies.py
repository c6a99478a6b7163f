"""DecisionMemo reads and writes its decision tensors through NumPy views: a copy or an unpickled memo must
write into its own tensors (what state_dict saves), never into the original's or into a detached array."""
import copy
import pickle

import pytest

from torchdataguard.core.memo import DROPPED, KEPT, DecisionMemo


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))], ids=["deepcopy", "pickle"])
def test_a_copied_memo_saves_what_it_decides_and_leaves_the_original_alone(clone):
    m = DecisionMemo()
    m.set(3, KEPT, 77)
    c = clone(m)
    c.set(5, DROPPED, 9)  # inside the dense range the first set allocated: written through the view
    c.set(3, DROPPED, 88)  # id 3 reused with other content
    saved = c.state_dict()["tensors"]
    assert int(saved["memo_dense"][5]) == DROPPED and int(saved["memo_dense_fp"][5]) == 9
    assert c.lookup(5, 9) == DROPPED and c.lookup(3, 77) == KEPT and c.lookup(3, 88) == DROPPED
    assert m.lookup(5, 9) == 0 and int(m.state_dict()["tensors"]["memo_dense"][5]) == 0


def test_a_loaded_memo_reads_and_writes_the_loaded_tensors():
    m = DecisionMemo()
    for i in range(2000):  # grows the tensors past their first allocation
        m.set(i, KEPT if i % 3 else DROPPED, i + 1)
    r = DecisionMemo()
    r.load_state_dict(m.state_dict())
    assert [r.lookup(i, i + 1) for i in (0, 1, 1999)] == [DROPPED, KEPT, KEPT]
    r.set(2001, DROPPED, 5)
    assert int(r.state_dict()["tensors"]["memo_dense"][2001]) == DROPPED
    assert len(r) == 2001
