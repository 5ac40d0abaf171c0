"""The online predictor: the authors' vectors through the whole engine, work sharing (one backbone pass
per frame), multi-object batching == separate runs, objects appearing / removed mid-video,
streaming == propagate, merge policies, resizing, RTE interpolation, bounded state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.engine import H, W, box, make_predictor, squares_video

from tamvt.config import InferenceConfig, load_preset
from tamvt.errors import SessionError, TamvtError
from tamvt.inference.predictor import Predictor
from tamvt.inference.source import ArrayFrames
from tamvt.models.tamvt import build_tamvt

FIXTURES = Path(__file__).parent / "fixtures" / "official"


# ---- the authors' vectors through the predictor (raw uint8 frames, resize none) -----------------


@pytest.fixture(scope="module")
def official():
    from safetensors.torch import load_file

    from tamvt.official import convert_official

    main = load_file(FIXTURES / "tamvt_official_vectors.safetensors")
    extra = load_file(FIXTURES / "tamvt_official_vectors_extra.safetensors")
    weights = {k: v.float() for k, v in main.items() if not k.startswith(("A.", "B.", "C.", "D."))}
    torch.manual_seed(0)
    model, cfg = convert_official(weights)
    return Predictor(model, InferenceConfig(short_side=None), clip_length=cfg.model.clip_length), main, extra


def run_official(predictor, frames_uint8, mask0) -> torch.Tensor:
    session = predictor.start(frames_uint8.numpy())
    predictor.add_mask(session, 0, 1, mask0[0, 0].numpy())
    results = list(predictor.propagate(session))
    assert [i for i, _ in results] == list(range(frames_uint8.shape[0]))
    assert torch.equal(results[0][1].probs[0], mask0[0, 0])  # the given mask comes back in frame 0
    return torch.stack([r.probs[0] for _, r in results[1:]])


def test_vector_a_probabilities(official):
    predictor, main, extra = official
    probs = run_official(predictor, extra["A.frames_uint8"], main["A.mask0"])
    assert (probs - main["A.probs"]).abs().max().item() <= 1e-4


def test_vector_d_long_video_with_eviction(official):
    predictor, _, extra = official
    probs = run_official(predictor, extra["D.frames_uint8"], extra["D.mask0"])
    assert probs.shape == (22, 64, 96)
    assert (probs - extra["D.probs"]).abs().max().item() <= 1e-4


# ---- a tiny random model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video() -> np.ndarray:
    return squares_video(9, seed=0)


MASK1, MASK2, MASK3 = box(10, 30, 5, 25), box(35, 60, 60, 85), box(20, 50, 30, 60)


def run(predictor, frames, masks: dict[int, tuple[int, np.ndarray]]) -> dict[int, dict[int, torch.Tensor]]:
    """``{frame: {obj: probs (H, W)}}`` of a full propagate; masks = {obj: (frame, mask)}."""
    session = predictor.start(frames)
    for obj, (f, m) in masks.items():
        predictor.add_mask(session, f, obj, m)
    return {i: dict(zip(r.object_ids, r.probs, strict=True)) for i, r in predictor.propagate(session)}


def test_every_frame_encoded_once_and_each_memory_entry_once(small_model, video, monkeypatch):
    calls = {"frames": [], "memory": [], "backbone": 0}
    orig_frames, orig_memory = small_model.encode_frames, small_model.encode_memory

    def encode_frames(images):
        calls["frames"].append(tuple(images.shape))
        return orig_frames(images)

    def encode_memory(frame, masks):
        calls["memory"].append(masks.shape[0])
        return orig_memory(frame, masks)

    monkeypatch.setattr(small_model, "encode_frames", encode_frames)
    monkeypatch.setattr(small_model, "encode_memory", encode_memory)
    hook = small_model.backbone.register_forward_hook(lambda *a: calls.__setitem__("backbone", calls["backbone"] + 1))
    try:
        # objects 1, 2 given in frame 0 (one group, B=2); object 3 in frame 3 (its own group)
        run(make_predictor(small_model), video, {1: (0, MASK1), 2: (0, MASK2), 3: (3, MASK3)})
    finally:
        hook.remove()
    assert calls["frames"] == [(1, 3, H, W)] * 9  # frames 0..8, once each
    # group {1,2}: reference + after clips [1,2] [3,4] [5,6] (clip [7,8] ends the video: no entry) = 4
    # group {3}:   reference + after clips [4,5] [6,7] (clip [8] ends the video) = 3
    assert sorted(calls["memory"]) == [1, 1, 1, 2, 2, 2, 2]
    assert calls["backbone"] == 9 + 7  # one pass per frame + one mask pass per memory entry


def test_multi_object_equals_separate_runs(small_model, video):
    p = make_predictor(small_model)
    both = run(p, video, {1: (0, MASK1), 2: (0, MASK2)})
    one = run(p, video, {1: (0, MASK1)})
    two = run(p, video, {2: (0, MASK2)})
    for i in range(9):
        assert set(both[i]) == {1, 2}
        assert torch.allclose(both[i][1], one[i][1], atol=1e-5, rtol=0)
        assert torch.allclose(both[i][2], two[i][2], atol=1e-5, rtol=0)
    assert (both[5][1] - both[5][2]).abs().max() > 1e-3  # the two objects really differ


def test_object_added_mid_video(small_model, video):
    p = make_predictor(small_model)
    mixed = run(p, video, {1: (0, MASK1), 3: (3, MASK3)})
    alone = run(p, video[3:], {3: (0, MASK3)})  # the same object, its video starting at its reference
    first = run(p, video, {1: (0, MASK1)})
    for i in range(9):
        assert set(mixed[i]) == ({1, 3} if i >= 3 else {1})
        assert torch.allclose(mixed[i][1], first[i][1], atol=1e-5, rtol=0)
        if i >= 3:
            assert torch.allclose(mixed[i][3], alone[i - 3][3], atol=1e-5, rtol=0)
    assert torch.equal(mixed[3][3], torch.from_numpy(MASK3.astype(np.float32)))


def test_remove_object(small_model, video):
    p = make_predictor(small_model)
    one = run(p, video, {1: (0, MASK1)})
    session = p.start(video)
    p.add_mask(session, 0, 1, MASK1)
    p.add_mask(session, 0, 2, MASK2)
    p.add_mask(session, 2, 3, MASK3)
    seen = {}
    for i, r in p.propagate(session):
        seen[i] = dict(zip(r.object_ids, r.probs, strict=True))
        if i == 3:
            p.remove_object(session, 2)  # shares a memory with object 1: its slot is dropped
            p.remove_object(session, 3)  # alone in its group: the group goes
            with pytest.raises(SessionError, match="unknown object id 3"):
                p.remove_object(session, 3)
    assert [sorted(seen[i]) for i in range(9)] == [[1, 2]] * 2 + [[1, 2, 3]] * 2 + [[1]] * 5
    for i in range(9):
        assert torch.allclose(seen[i][1], one[i][1], atol=1e-5, rtol=0)
    assert len(session.groups) == 1 and session.groups[0].object_ids == [1]
    assert all(e.num_objects == 1 for e in session.groups[0].bank.entries)


def test_streaming_equals_propagate(small_model, video):
    p = make_predictor(small_model)
    expected = run(p, video, {1: (0, MASK1), 2: (0, MASK2), 3: (3, MASK3)})
    got, returned_after = {}, []
    stream = p.stream()
    for i, frame in enumerate(video):
        mask = None
        if i == 0:
            mask = MASK1 + 2 * MASK2
        elif i == 3:
            mask = 3 * MASK3
        out = stream.step(frame, mask=mask)
        returned_after.append([r.frame_idx for r in out])
        got.update({r.frame_idx: r for r in out})
    tail = stream.flush()
    got.update({r.frame_idx: r for r in tail})
    assert sorted(got) == list(range(9))
    # clips of 2 starting after frame 0 ({1,2}) and after frame 3 ({3}): output waits for both groups
    assert returned_after == [[0], [], [1, 2], [], [3], [4], [5], [6], [7]]
    assert [r.frame_idx for r in tail] == [8]
    for i in range(9):
        assert dict(zip(got[i].object_ids, got[i].probs, strict=True)).keys() == expected[i].keys()
        for obj, prob in zip(got[i].object_ids, got[i].probs, strict=True):
            assert torch.allclose(prob, expected[i][obj], atol=1e-5, rtol=0)
    assert stream.flush() == []


def rows(results) -> list[tuple]:
    return [(r.frame_idx, r.object_ids, r.probs, r.mask) for r in results]


def feed(stream, frames, masks: dict[int, np.ndarray]) -> list[list[tuple]]:
    """Per frame fed (then the flush), the ``(frame_idx, object_ids, probs, mask)`` of the results returned."""
    return [*(rows(stream.step(f, mask=masks.get(i))) for i, f in enumerate(frames)), rows(stream.flush())]


def test_one_predictor_serves_two_interleaved_streams(small_model, video):
    """Streams keep their own state: fed frame by frame in turn through one predictor, each returns
    exactly what it returns when it runs alone (two videos, other objects, other sizes)."""
    p = make_predictor(small_model)
    other = squares_video(7, seed=1)[:, :48, :80]  # another video, another frame size
    masks_a = {0: MASK1 + 2 * MASK2, 3: 3 * MASK3}
    masks_b = {0: box(10, 30, 8, 28)[:48, :80], 2: 2 * box(35, 48, 50, 75)[:48, :80]}
    alone_a, alone_b = feed(p.stream(), video, masks_a), feed(p.stream(), other, masks_b)
    a, b = p.stream(), p.stream()
    both_a, both_b = [], []
    for i in range(len(video)):
        both_a.append(rows(a.step(video[i], mask=masks_a.get(i))))
        if i < len(other):
            both_b.append(rows(b.step(other[i], mask=masks_b.get(i))))
    both_a.append(rows(a.flush()))
    both_b.append(rows(b.flush()))
    for alone, both in ((alone_a, both_a), (alone_b, both_b)):
        assert [[r[:2] for r in step] for step in both] == [[r[:2] for r in step] for step in alone]
        for step_alone, step_both in zip(alone, both, strict=True):
            for (_, _, probs, mask), (_, _, probs2, mask2) in zip(step_alone, step_both, strict=True):
                assert torch.equal(probs, probs2) and np.array_equal(mask, mask2)
    assert {ids for step in alone_b for _, ids, _, _ in step} == {(1,), (1, 2)}


def test_merge_policies(small_model):
    ids = [1, 2]
    # pixel (0,0): p1=0.6, p2=0.9; (0,1): 0.3, 0.45; (0,2): 0.7, 0.7; (0,3): 0.55, 0.2
    probs = torch.tensor([[[0.6, 0.3, 0.7, 0.55]], [[0.9, 0.45, 0.7, 0.2]]])
    argmax = make_predictor(small_model, merge="argmax")
    first = make_predictor(small_model, merge="first-wins")
    strict = make_predictor(small_model, merge="argmax", bg_threshold=0.65)
    assert argmax.merge(probs, ids).tolist() == [[2, 0, 1, 1]]
    assert first.merge(probs, ids).tolist() == [[1, 0, 1, 1]]
    assert strict.merge(probs, ids).tolist() == [[2, 0, 1, 0]]
    assert argmax.merge(torch.zeros((0, 1, 4)), []).tolist() == [[0, 0, 0, 0]]


def test_merged_mask_in_results(small_model, video):
    # overlapping given masks at frame 0: every policy gives the overlap to the lower id (a tie)
    p = make_predictor(small_model, merge="first-wins")
    session = p.start(video)
    other = box(20, 50, 15, 60)  # overlaps MASK1 in rows 20..29, columns 15..24
    p.add_mask(session, 0, 7, other)
    p.add_mask(session, 0, 4, MASK1)
    _, r = next(iter(p.propagate(session)))
    assert r.object_ids == (4, 7)
    expected = np.where(MASK1 > 0, 4, np.where(other > 0, 7, 0))
    assert np.array_equal(r.mask, expected)


def test_resize_and_output_size(small_model, video, monkeypatch):
    shapes = []
    orig = small_model.encode_frames
    monkeypatch.setattr(small_model, "encode_frames", lambda x: shapes.append(tuple(x.shape)) or orig(x))
    p = Predictor(small_model, InferenceConfig(short_side=32, max_long_side=1110), clip_length=2)
    results = run(p, video[:4], {1: (0, MASK1)})
    assert set(shapes) == {(1, 3, 32, 48)}
    assert all(r[1].shape == (H, W) for r in results.values())


def test_rte_interpolation_when_bank_is_larger():
    torch.manual_seed(0)
    model = build_tamvt(load_preset("tamvt-small").model)
    with pytest.raises(TamvtError, match="interpolate_rte"):
        Predictor(model, InferenceConfig(bank_size=12, interpolate_rte=False))
    p = Predictor(model, InferenceConfig(bank_size=12))
    assert p.capacity == 12 and model.bank_size == 12
    assert model.matching.rte.theta.numel() == 12 * 13 // 2


class CountingFrames(ArrayFrames):
    """Records how far the predictor has read when each result is yielded."""

    def __init__(self, frames):
        super().__init__(frames)
        self.read = -1

    def iter_frames(self, start=0):
        for i, f in super().iter_frames(start):
            self.read = i
            yield i, f


def test_lazy_and_bounded(small_model, video):
    frames = CountingFrames(np.concatenate([video, video[::-1], video]))  # 27 frames
    p = make_predictor(small_model, bank_size=3)
    session = p.start(frames)
    p.add_mask(session, 0, 1, MASK1)
    for i, _ in p.propagate(session):
        assert frames.read - i <= 1  # at most L-1 frames read ahead of the output
        g = session.groups[0]
        assert len(g.bank) <= 3 and len(g.pending) <= 1 and len(session.pending_frames) <= 2
    assert session.groups[0].bank.entry_ids == [0, 11, 12]  # FIFO kept the reference
    assert session.memory_frames() == {1: (0, 22, 24)}  # entry k: the last frame of clip k, [2k-1, 2k]


def test_memory_view_clip_records_and_reset(small_model, video):
    """The read-only seams for tools: what each object's memory holds, one record per clip, and
    Session.reset (results and memory go, annotations stay)."""
    p = make_predictor(small_model, bank_size=3)
    clips = []
    session = p.start(video, on_clip=clips.append)
    assert session.memory_frames() == {}
    p.add_mask(session, 0, 1, MASK1)
    p.add_mask(session, 0, 2, MASK2)
    p.add_mask(session, 3, 3, MASK3)
    first = {i: r.mask for i, r in p.propagate(session)}
    assert session.memory_frames() == {1: (0, 4, 6), 2: (0, 4, 6), 3: (3, 5, 7)}
    assert [(c.object_ids, c.frames, c.memory, c.written) for c in clips] == [
        ((1, 2), (1, 2), (0,), True),
        ((1, 2), (3, 4), (0, 2), True),
        ((3,), (4, 5), (3,), True),
        ((1, 2), (5, 6), (0, 2, 4), True),
        ((3,), (6, 7), (3, 5), True),
        ((1, 2), (7, 8), (0, 4, 6), False),
        ((3,), (8,), (3, 5, 7), False),
    ]  # the last clips: no entry
    session.reset()
    assert session.walk is None and session.memory_frames() == {} and len(session.results) == 0
    assert sorted(session.annotations) == [1, 2, 3]
    assert all(np.array_equal(r.mask, first[i]) for i, r in p.propagate(session))


def test_oracle_memory_writes_the_given_masks_into_memory(small_model, video, monkeypatch):
    """``oracle_memory``: the memory entries are encoded from the ground truth, not the prediction; the
    prediction is what comes out (and what the confidence gate judges)."""
    truth = (MASK1 + 2 * MASK2).astype(np.uint8)  # a fixed "ground truth" for every frame
    p = make_predictor(small_model)
    plain = run(p, video, {1: (0, MASK1), 2: (0, MASK2)})
    written = []
    orig = small_model.encode_memory
    monkeypatch.setattr(small_model, "encode_memory", lambda f, m: written.append(m.clone()) or orig(f, m))
    session = p.start(video, oracle_memory=lambda idx: truth)
    p.add_mask(session, 0, 1, MASK1)
    p.add_mask(session, 0, 2, MASK2)
    oracle = {i: dict(zip(r.object_ids, r.probs, strict=True)) for i, r in p.propagate(session)}
    given = torch.from_numpy(np.stack([MASK1, MASK2]).astype(np.float32))[:, None]  # (B, 1, H, W)
    assert len(written) == 4 and all(torch.equal(m, given) for m in written)  # reference + 3 entries
    for i in range(3):  # clip [1, 2] is matched against the reference only
        assert all(torch.equal(oracle[i][o], plain[i][o]) for o in (1, 2))
    assert not torch.allclose(oracle[3][1], plain[3][1], atol=1e-5)


def test_bad_input(small_model, video):
    p = make_predictor(small_model)
    session = p.start(video)
    with pytest.raises(SessionError, match="mask size 10x5 != frame size 96x64"):
        p.add_mask(session, 0, 1, np.ones((5, 10), np.uint8))
    with pytest.raises(SessionError, match="empty"):
        p.add_mask(session, 0, 1, np.zeros((H, W), np.uint8))
    with pytest.raises(SessionError, match="out of range"):
        p.add_mask(session, 9, 1, MASK1)
    with pytest.raises(SessionError, match="1..255"):
        p.add_mask(session, 0, 256, MASK1)
    with pytest.raises(SessionError, match="no objects"):
        next(iter(p.propagate(session)))
    p.add_mask(session, 0, 1, MASK1)
    with pytest.raises(SessionError, match="out of range"):
        next(iter(p.propagate(session, start=9)))
    stream = p.stream()
    stream.step(video[0], mask=MASK1)
    with pytest.raises(SessionError, match="corrections need a session over a whole video"):
        stream.step(video[1], mask=MASK1)  # object 1 again: a correction, not possible on a live stream
    stream.flush()
    with pytest.raises(SessionError, match="not in the mask"):
        p.add_index_mask(session, 5, MASK2 * 2, objects=[3])
