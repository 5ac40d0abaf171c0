"""The interactive engine: corrections at any frame, propagation in both directions, reset, stored
results (issue 12, item 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.engine import H, W, box, make_predictor, squares_video

from tamvt.inference.predictor import Predictor
from tamvt.memory import MemoryBank
from tamvt.models.tamvt import MemoryEntry


@pytest.fixture(scope="module")
def video() -> np.ndarray:
    return squares_video(11, seed=1)


def probs_of(results) -> dict[int, dict[int, torch.Tensor]]:
    return {i: dict(zip(r.object_ids, r.probs, strict=True)) for i, r in results}


# ---- the memory bank's references -----------------------------------------------------------------


def entry() -> MemoryEntry:
    return MemoryEntry(keys=(torch.zeros(1, 1),), values=(torch.zeros(1, 1, 1),))


def test_every_correction_is_a_permanent_entry():
    bank = MemoryBank(4)
    bank.add(entry())  # 0: the first reference
    bank.add(entry()), bank.add(entry())  # 1, 2
    bank.add(entry(), reference=True)  # 3: a correction, right after the reference
    assert bank.entry_ids == [0, 3, 1, 2] and bank.num_references == 2
    bank.add(entry())  # 4: full -> the oldest ordinary entry (1) goes
    assert bank.entry_ids == [0, 3, 2, 4]
    bank.add(entry(), reference=True)  # 5 joins the permanent ones (it replaced 3 before): 2 goes
    assert bank.entry_ids == [0, 3, 5, 4] and bank.num_references == 3
    bank.add(entry()), bank.add(entry())  # 6, 7: FIFO behind the three references
    assert bank.entry_ids == [0, 3, 5, 7]
    assert bank.add(entry(), reference=True).entry_id == 7 and bank.entry_ids == [0, 3, 5, 8]  # 4 permanent: full
    assert bank.add(entry()) is not None and bank.entry_ids == [0, 3, 5, 8]  # nothing ordinary fits any more
    two = MemoryBank(2)
    two.add(entry()), two.add(entry())  # [0, 1]
    two.add(entry(), reference=True)  # the correction takes the ordinary slot
    assert two.entry_ids == [0, 2]
    assert two.add(entry()) is not None and two.entry_ids == [0, 2]


# ---- directions ----------------------------------------------------------------------------------


def test_reverse_equals_forward_on_the_reversed_video_bit_for_bit(small_model, video):
    p = make_predictor(small_model)
    mask = box(10, 30, 35, 55)  # the red square in the last frame (x = 5 + 30)
    fwd = p.start(video[::-1].copy())
    p.add_mask(fwd, 0, 1, mask)
    forward = probs_of(p.propagate(fwd))
    rev = p.start(video)
    p.add_mask(rev, 10, 1, mask)
    order = []
    backward = {}
    for i, r in p.propagate(rev, reverse=True):  # default start: the last annotated frame
        order.append(i)
        backward[i] = dict(zip(r.object_ids, r.probs, strict=True))
    assert order == list(range(10, -1, -1))
    for i in range(11):
        assert torch.equal(backward[10 - i][1], forward[i][1])  # same clips, same arithmetic
    assert (backward[0][1] - backward[10][1]).abs().max() > 1e-3  # not trivially constant


def test_objects_added_at_different_frames_in_both_directions(small_model, video):
    p = make_predictor(small_model)
    m1, m3 = box(10, 30, 5, 25), box(35, 60, 50, 75)  # red square in frame 0, blue square in frame 5
    s = p.start(video)
    p.add_mask(s, 0, 1, m1)
    p.add_mask(s, 5, 3, m3)
    back = probs_of(p.propagate(s, start=10, reverse=True))
    # walking back from 10: object 3 starts at its frame 5, object 1 is only met at frame 0
    assert [sorted(back[i]) for i in range(10, -1, -1)] == [[]] * 5 + [[3]] * 5 + [[1, 3]]
    assert torch.equal(back[5][3], torch.from_numpy(m3.astype(np.float32)))
    # object 3 backwards from 5 == object 3 alone forwards on the reversed frames 5..0
    alone = p.start(video[5::-1].copy())
    p.add_mask(alone, 0, 3, m3)
    ref = probs_of(p.propagate(alone))
    for i in range(6):
        assert torch.equal(back[5 - i][3], ref[i][3])
    fwd = probs_of(p.propagate(s, start=0))
    assert [sorted(fwd[i]) for i in range(11)] == [[1]] * 5 + [[1, 3]] * 6
    # both directions from the middle: every frame has a stored result
    s2 = p.start(video)
    p.add_mask(s2, 5, 3, m3)
    list(p.propagate(s2, start=5)), list(p.propagate(s2, start=5, reverse=True))
    assert s2.results.frames() == list(range(11))
    assert np.array_equal(s2.result(5), np.where(m3 > 0, 3, 0).astype(np.uint8))


# ---- corrections, reset, results ------------------------------------------------------------------


def test_correction_recomputes_only_the_frames_after_it(small_model, video):
    p = make_predictor(small_model)
    s = p.start(video)
    p.add_mask(s, 0, 1, box(10, 30, 5, 25))
    p.add_mask(s, 0, 2, box(35, 60, 60, 85))
    first = {i: r.mask.copy() for i, r in p.propagate(s)}
    assert all(np.array_equal(s.result(i), first[i]) for i in range(11))
    fixed = box(10, 30, 17, 37)  # object 1 in frame 4, where the red square really is
    assert p.add_mask(s, 4, 1, fixed) is True  # a correction
    second = {i: r.mask.copy() for i, r in p.propagate(s, start=4)}
    assert sorted(second) == list(range(4, 11))
    for i in range(4):  # frames before the correction keep their results
        assert np.array_equal(s.result(i), first[i])
    assert np.array_equal(second[4] == 1, fixed > 0)  # the corrected object's given mask comes back
    assert any(not np.array_equal(second[i], first[i]) for i in range(5, 11))
    # object 1 is now in its own group (given in 0 and 4), with both frames as permanent references
    g1 = next(g for g in s.groups if g.object_ids == [1])
    assert g1.annotated == (0, 4) and g1.references == (0, 4) and g1.bank.num_references == 2
    # reset: no results, same annotations; the same walk again gives the same masks
    p.reset(s)
    assert s.result(5) is None and len(s.results) == 0 and sorted(s.annotations[1]) == [0, 4]
    again = {i: r.mask for i, r in p.propagate(s, start=4)}
    assert all(np.array_equal(again[i], second[i]) for i in range(4, 11))


def test_an_empty_correction_means_not_visible(small_model, video):
    p = make_predictor(small_model)
    s = p.start(video)
    p.add_mask(s, 0, 1, box(10, 30, 5, 25))
    list(p.propagate(s))
    p.add_mask(s, 6, 1, np.zeros((H, W), bool))
    out = {i: r for i, r in p.propagate(s, start=6)}
    assert not out[6].mask.any() and out[6].object_ids == (1,)


def test_stored_results_are_compressed_index_masks(small_model, video):
    p = make_predictor(small_model)
    s = p.start(video)
    p.add_mask(s, 0, 1, box(10, 30, 5, 25))
    yielded = {i: r.mask.copy() for i, r in p.propagate(s)}
    assert all(np.array_equal(s.result(i), yielded[i]) and s.result(i).dtype == np.uint8 for i in range(11))
    assert s.results.nbytes() < 11 * H * W / 4  # far less than the raw masks (and no probabilities kept)
    quiet = p.start(video, keep_results=False)
    p.add_mask(quiet, 0, 1, box(10, 30, 5, 25))
    list(p.propagate(quiet))
    assert len(quiet.results) == 0


def test_resume_and_restart(small_model, video):
    p = make_predictor(small_model)
    s = p.start(video)
    p.add_mask(s, 0, 1, box(10, 30, 5, 25))
    full = {i: r.mask.copy() for i, r in p.propagate(s)}
    s2 = p.start(video)
    p.add_mask(s2, 0, 1, box(10, 30, 5, 25))
    it = p.propagate(s2)
    head = [next(it)[0] for _ in range(4)]
    it.close()
    rest = {i: r.mask for i, r in p.propagate(s2)}  # same direction, nothing added: resumes
    assert head == [0, 1, 2, 3] and sorted(rest) == list(range(4, 11))
    assert all(np.array_equal(rest[i], full[i]) for i in rest)


# ---- a correction where tracking fails, with the shipped model -------------------------------------


def test_correction_after_a_shot_change_raises_j(tmp_path):
    """Frames 0..19 of one synthetic video, then frames of another (a shot change): the object the
    model follows is gone. A correction at frame 20 gives the new object; J over frames >= 20 rises and
    frames < 20 keep their results."""
    from tamvt.checkpoint import shipped_model_path
    from tamvt.data.synthetic import make_video, preset_suite
    from tamvt.evaluation.metrics import region_similarity

    a = make_video(preset_suite("demo", seed=0)[0])
    b = make_video(preset_suite("demo", seed=5)[0])
    frames = np.concatenate([a.frames[:20], b.frames[20:36]])
    truth = np.concatenate([a.masks[:20] == 1, b.masks[20:36] == 1])
    p = Predictor.from_checkpoint(shipped_model_path())
    s = p.start(frames)
    p.add_mask(s, 0, 1, truth[0])
    before = {i: r.mask == 1 for i, r in p.propagate(s)}
    p.add_mask(s, 20, 1, truth[20])
    after = {i: r.mask == 1 for i, r in p.propagate(s, start=20)}
    j_before = np.mean([region_similarity(truth[i], before[i]) for i in range(21, 36)])
    j_after = np.mean([region_similarity(truth[i], after[i]) for i in range(21, 36)])
    assert j_after > j_before + 0.3, (j_before, j_after)
    assert all(np.array_equal(s.result(i) == 1, before[i]) for i in range(20))
