"""Lost and found, ``inference.presence_likeness``: an object is also absent where its mask does not look
like it in its latest given mask (a mask on an occluder or on the background, where memory saw it).

:func:`tamvt.memory.likeness` and the rule's bound are checked by hand on small feature maps; the clip
step with a stand-in network; the engine with the shipped model (where the look comes from, and that a
dimmed object is still itself)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tamvt.config import TamvtConfig, apply_overrides
from tamvt.errors import TamvtError
from tamvt.memory import (
    LOOK_LEVEL,
    OUTSIDE_LOGIT,
    MemoryBank,
    PresenceRule,
    likeness,
    object_look,
    presence,
    step_clip,
    unlike_masks,
    unlike_runs,
)

sys.path.insert(0, str(Path(__file__).parent))
from test_presence import SIDE, _render, _run  # noqa: E402  (the hand-made videos of the presence tests)


def _features() -> SimpleNamespace:
    """One frame's 4x4 feature map with 3 channels: the object's cells (rows 0-1, columns 0-1) are
    ``[4, 0, 0]``, another thing's (rows 2-3, columns 2-3) ``[0, 4, 0]``, the background ``[1, 1, 1]``;
    the map's mean is ``[1.5, 1.5, 0.5]``."""
    level = torch.ones(1, 3, 4, 4)
    level[0, :, :2, :2] = torch.tensor([4.0, 0, 0])[:, None, None]
    level[0, :, 2:, 2:] = torch.tensor([0.0, 4, 0])[:, None, None]
    return SimpleNamespace(levels={LOOK_LEVEL: level}, image_size=(16, 16))


def _logits(*cells: tuple[slice, slice]) -> torch.Tensor:
    """``(1, len(cells), 4, 4)``: frame t's mask on ``cells[t]`` (on the 4x4 map)."""
    out = torch.full((1, len(cells), 4, 4), -5.0)
    for t, (rows, cols) in enumerate(cells):
        out[0, t, rows, cols] = 5.0
    return out


OBJECT, OTHER, NOTHING = (slice(0, 2), slice(0, 2)), (slice(2, 4), slice(2, 4)), (slice(0, 0), slice(0, 0))


def test_object_look_and_likeness_by_hand():
    frame = _features()
    mask = torch.zeros(1, 1, 16, 16)
    mask[0, 0, :8, :8] = 1.0  # the object's cells, at the input size (stride 4)
    look, centre = object_look(frame, mask)
    assert torch.allclose(look, torch.tensor([[4.0, 0, 0]])) and torch.allclose(centre, torch.tensor([[1.5, 1.5, 0.5]]))
    half = (slice(0, 2), slice(0, 4))  # the object and as much background
    like = likeness(frame, _logits(OBJECT, OTHER, half, NOTHING), look, centre)
    # from the centre: the look is [2.5, -1.5, -0.5]; the other thing [-1.5, 2.5, -0.5]; half and half [1, -1, 0]
    expected = [1.0, -7.25 / 8.75, 4.0 / math.sqrt(8.75 * 2.0), 0.0]  # an empty mask: 0
    assert torch.allclose(like, torch.tensor([expected]), atol=1e-5), like


def test_likeness_takes_the_closest_of_several_looks():
    frame = _features()
    centre = torch.tensor([1.5, 1.5, 0.5])
    looks = torch.stack([torch.tensor([4.0, 0, 0]), torch.tensor([0.0, 4, 0])])[None]  # (1, 2, 3)
    like = likeness(frame, _logits(OBJECT, OTHER), looks, centre.expand(1, 2, 3))
    assert torch.allclose(like, torch.ones(1, 2), atol=1e-5), like  # each mask is one of the two looks
    alone = likeness(frame, _logits(OBJECT, OTHER), looks[:, 0], centre[None])
    assert torch.allclose(alone, torch.tensor([[1.0, -7.25 / 8.75]]), atol=1e-5), alone


def test_presence_bound():
    area, conf = torch.full((1, 3), 0.25), torch.full((1, 3), 0.9)
    like = torch.tensor([[0.9, 0.5, 0.2]])
    rule = PresenceRule(0.5, 0.2, min_likeness=0.5)
    assert presence(area, conf, torch.tensor([0.25]), rule, like=like).tolist() == [[True, True, False]]
    assert presence(area, conf, torch.tensor([0.25]), PresenceRule(0.5, 0.2), like=like).all()  # no bound
    with pytest.raises(ValueError, match="likeness"):
        presence(area, conf, torch.tensor([0.25]), rule)


def test_presence_bound_only_below_the_peak():
    # four frames: unlike and shrunk / unlike but whole / like and shrunk / shrunk, unlike, at the edge
    area = torch.tensor([[0.05, 0.25, 0.05, 0.0749]])
    conf = torch.full((1, 4), 0.9)
    like = torch.tensor([[0.2, 0.2, 0.9, 0.6]])
    rule = PresenceRule(0.5, 0.1, min_likeness=0.7, likeness_peak=0.3)  # shrunk: below 0.3 * 0.25 = 0.075
    got = presence(area, conf, torch.tensor([0.25]), rule, peak=torch.tensor([0.25]), like=like)
    assert got.tolist() == [[False, True, True, False]]
    with pytest.raises(ValueError, match="peak"):
        presence(area, conf, torch.tensor([0.25]), rule, like=like)


def test_presence_bound_counts_frames_in_a_row_across_clips():
    # unlike and shrunk in frames 1, 2 (clip 1) and 3 (clip 2), like again in frame 4
    unlike = torch.tensor([[False, True], [True, True]])  # two clips of one object, stacked by hand
    assert unlike_runs(unlike[:1]).tolist() == [[0, 1]]
    assert unlike_runs(unlike[1:], torch.tensor([1])).tolist() == [[2, 3]]
    assert unlike_runs(torch.tensor([[True, False, True]]), torch.tensor([5])).tolist() == [[6, 0, 1]]
    area, conf, peak = torch.full((1, 2), 0.05), torch.full((1, 2), 0.9), torch.tensor([0.25])
    rule = PresenceRule(0.5, 0.1, min_likeness=0.7, likeness_peak=0.3, likeness_frames=3)
    like = torch.tensor([[0.2, 0.2]])
    counts = unlike_runs(unlike_masks(area, like, rule, peak), torch.tensor([1]))
    kept = presence(area, conf, torch.tensor([0.25]), rule, peak=peak, like=like, counts=counts)
    assert kept.tolist() == [[True, False]]  # the 2nd and 3rd unlike frames in a row: out at the 3rd
    assert presence(area, conf, torch.tensor([0.25]), rule, peak=peak, like=like).all()  # no count before
    once = PresenceRule(0.5, 0.1, min_likeness=0.7, likeness_peak=0.3)  # the default: the first frame
    assert not presence(area, conf, torch.tensor([0.25]), once, peak=peak, like=like).any()


def test_config():
    assert TamvtConfig().inference.presence_likeness is None
    assert TamvtConfig().inference.presence_likeness_recent is False
    assert apply_overrides(TamvtConfig(), ["inference.presence_likeness=0.5"]).inference.presence_likeness == 0.5
    with pytest.raises(TamvtError, match="presence_likeness must be in"):
        apply_overrides(TamvtConfig(), ["inference.presence_likeness=1.5"])
    assert TamvtConfig().inference.presence_likeness_peak is None
    assert TamvtConfig().inference.presence_likeness_frames == 1
    with pytest.raises(TamvtError, match="presence_likeness_frames must be >= 1"):
        apply_overrides(TamvtConfig(), ["inference.presence_likeness_frames=0"])
    with pytest.raises(TamvtError, match="presence_likeness_peak must be in"):
        apply_overrides(TamvtConfig(), ["inference.presence_likeness_peak=-0.1"])


def test_engine_hands_the_peak_fraction_to_the_rule():
    from tamvt.checkpoint import shipped_model_path
    from tamvt.inference import Predictor

    predictor = Predictor.from_checkpoint(shipped_model_path(), presence_likeness=0.7, presence_likeness_peak=0.3)
    assert predictor.presence_rule is not None
    assert (predictor.presence_rule.min_likeness, predictor.presence_rule.likeness_peak) == (0.7, 0.3)


class _FixedModel:
    """The clip step's network, stood in: its decoder returns given logits."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits

    def match(self, frames, entries, top_k):
        return None

    def decode(self, frames, z):
        return [self.logits]

    def encode_memory(self, frame, mask):
        from tamvt.models.tamvt import MemoryEntry

        return MemoryEntry(keys=(torch.zeros(4, 8),), values=(torch.zeros(mask.shape[0], 4, 8),))


class _Clip(SimpleNamespace):
    def select(self, t):
        return self


def test_step_clip_empties_a_mask_that_does_not_look_like_the_object():
    from tamvt.models.tamvt import MemoryEntry

    frame = _features()
    clip = _Clip(levels={LOOK_LEVEL: frame.levels[LOOK_LEVEL].expand(2, -1, -1, -1)}, image_size=(16, 16))
    logits = _logits(OBJECT, OTHER)  # the mask moves to the other thing in the clip's second frame
    look = (torch.tensor([[4.0, 0, 0]]), torch.tensor([[1.5, 1.5, 0.5]]))
    bank = MemoryBank(4)
    bank.add(MemoryEntry(keys=(torch.zeros(4, 8),), values=(torch.zeros(1, 4, 8),)), frame=0)
    expected = torch.tensor([0.25])
    rule = PresenceRule(0.5, 0.2, min_likeness=0.5)
    out = step_clip(_FixedModel(logits), bank, clip, frame=2, presence_rule=rule, expected_area=expected, look=look)
    assert out.present is not None and out.present.tolist() == [[True, False]]
    assert torch.equal(out.pred_logits[0, 1], torch.full((4, 4), OUTSIDE_LOGIT))
    assert not out.written  # nobody is there in the last frame: no entry
    plain = step_clip(
        _FixedModel(logits), bank, clip, frame=2, presence_rule=PresenceRule(0.5, 0.2), expected_area=expected
    )
    assert plain.present is not None and plain.present.all()  # the same masks pass the rule without the bound
    with pytest.raises(ValueError, match="looks"):
        step_clip(_FixedModel(logits), bank, clip, frame=2, presence_rule=rule, expected_area=expected)
    # with likeness_frames=2 the mask on the other thing is kept the first time, emptied the second,
    # the count carried from one clip to the next
    slow = PresenceRule(0.5, 0.2, min_likeness=0.5, likeness_frames=2)
    first = step_clip(_FixedModel(logits), bank, clip, frame=2, presence_rule=slow, expected_area=expected, look=look)
    assert first.present is not None and first.present.all() and first.unlike_run is not None
    assert first.unlike_run.tolist() == [1]
    back = _logits(OTHER, OBJECT)  # the next clip: still on the other thing, then back on the object
    again = step_clip(
        _FixedModel(back),
        bank,
        clip,
        frame=4,
        presence_rule=slow,
        expected_area=expected,
        look=look,
        unlike_run=first.unlike_run,
    )
    assert again.present is not None and again.present.tolist() == [[False, True]]  # the 2nd in a row
    assert again.unlike_run is not None and again.unlike_run.tolist() == [0]  # back on it: the count is 0
    assert out.unlike_run is None  # not counted with likeness_frames=1


# ---- the engine, with the shipped model ------------------------------------------------------------------


# the shipped model runs with the look bound (0.8, where the mask shrank, 2 frames in a row) and the search by
# look: the engine tests below set what they test on its own
LOOK_OFF = {"presence_likeness": None, "presence_find": None}
BOUND_ALONE = {**LOOK_OFF, "presence_likeness": 0.5, "presence_likeness_peak": None, "presence_likeness_frames": 1}


@pytest.mark.slow
def test_engine_reads_the_look_in_the_given_masks_and_keeps_a_dimmed_object():
    """The look handed to the clip step is the given mask's, on the given frame (an empty correction
    keeps it); and a square whose colours are halved for 12 frames is still found at every frame with
    the bound at 0.5 (measured 2026-12-05: the same masks as without the bound)."""
    import tamvt.inference.predictor as predictor_module
    from tamvt.checkpoint import shipped_model_path
    from tamvt.inference import Predictor

    frames, truth = _render([20 + 3 * t for t in range(36)], 80, None, seed=4)
    for t in range(12, 24):
        x = 20 + 3 * t
        frames[t, 80 : 80 + SIDE, x : x + SIDE] //= 2
    seen: list = []
    original = predictor_module.step_clip

    def recording(*args, look=None, **kwargs):
        seen.append(look)
        return original(*args, look=look, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(predictor_module, "step_clip", recording)
        j, area, _, _ = _run(True, frames, truth, **BOUND_ALONE)
        predictor = Predictor.from_checkpoint(shipped_model_path(), presence=True, **BOUND_ALONE)
        session = predictor.start(frames)
        predictor.add_mask(session, 0, 1, truth[0])
        predictor.add_mask(session, 20, 1, np.zeros_like(truth[0]))  # "not visible here"
        list(predictor.propagate(session))
    assert (area[1:] > 0).all() and j[1:].min() >= 0.8, (area, np.round(j, 2))
    with torch.inference_mode(), predictor._autocast():  # as the engine encodes (bf16 where native)
        feats = predictor._encode(frames[0])
    look, centre = object_look(feats, predictor.transforms.mask(truth[0])[None])
    assert seen and all(s is not None for s in seen)
    for held, held_centre in seen:
        assert torch.allclose(held, look, atol=1e-4) and torch.allclose(held_centre, centre, atol=1e-4)
    # off (the recent look alone does nothing): no look is kept or handed over
    seen.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(predictor_module, "step_clip", recording)
        _run(True, frames[:12], truth[:12], presence_likeness_recent=True, **LOOK_OFF)
    assert seen and all(s is None for s in seen)


# ---- benchmarks/look_separation.py -----------------------------------------------------------------------


def _look_separation():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "look_separation.py"
    spec = importlib.util.spec_from_file_location("look_separation_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_look_separation_by_hand(tmp_path, capsys):
    script = _look_separation()
    good, bad = np.array([0.9, 0.8, 0.7, 0.6]), np.array([0.1, 0.75])
    auc, rows = script.separation(good, bad)
    assert auc == pytest.approx(6 / 8)  # pairs with good > bad: 0.9, 0.8 over both; 0.7, 0.6 over 0.1
    q, threshold, share = rows[-1]  # the 5 % quantile of the good ones: 0.6 + 0.15 * 0.1
    assert q == 5.0 and threshold == pytest.approx(0.615) and share == 0.5
    with pytest.raises(ValueError, match="good and bad"):
        script.separation(good, np.array([]))
    # --rule: (likeness, area / peak, _) rows; the peak fraction narrows the bound to shrunk masks
    rows = [(0.2, 0.1, False), (0.2, 0.9, False), (0.9, 0.1, True), (0.6, 0.29, True)]
    assert script.emptied(rows, 0.7, None) == 0.75
    assert script.emptied(rows, 0.7, 0.3) == 0.5  # the first and the last
    assert script.parse_rule("0.8:0.3") == (0.8, 0.3) and script.parse_rule("0.5") == (0.5, None)
    with pytest.raises(argparse.ArgumentTypeError, match="S or S:F"):
        script.parse_rule("a:b")
    assert script.main(["--work", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("look_separation: ") and "missing" in err[0], err


@pytest.mark.slow
@pytest.mark.parametrize("reader", [{"presence_likeness": 0.5}, {"presence_find": 0.8}], ids=["bound", "find"])
def test_recent_look_is_the_newest_frame_written_while_present(reader):
    """With ``presence_likeness_recent`` the clip step also gets each object's look in the newest frame
    written to memory while it was there (the given look first): the output mask of that frame, read
    on that frame; for the look bound and for the search by look alike."""
    import tamvt.inference.predictor as predictor_module
    from tamvt.checkpoint import shipped_model_path
    from tamvt.inference import Predictor

    frames, truth = _render([20 + 3 * t for t in range(24)], 80, None, seed=4)
    seen: list = []
    original = predictor_module.step_clip

    def recording(*args, look=None, **kwargs):
        seen.append(look)
        return original(*args, look=look, **kwargs)

    predictor = Predictor.from_checkpoint(shipped_model_path(), presence=True, presence_likeness_recent=True, **reader)
    records: list = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(predictor_module, "step_clip", recording)
        session = predictor.start(frames, on_clip=records.append)
        predictor.add_mask(session, 0, 1, truth[0])
        probs = {i: r.probs[0].clone() for i, r in predictor.propagate(session)}
    written = [r.frames[-1] for r in records if r.written]
    assert len(seen) == len(records) >= 3 and written == [r.frames[-1] for r in records[:-1]], written
    first_look, first_centre = seen[0]
    assert first_look.shape == first_centre.shape and first_look.ndim == 2  # nothing written yet: the given look
    with torch.inference_mode(), predictor._autocast():
        for look, record in zip(seen[1:], records[:-1], strict=True):
            held, held_centre = look
            assert held.ndim == 3 and held.shape[1] == 2
            assert torch.allclose(held[:, 0], first_look) and torch.allclose(held_centre[:, 0], first_centre)
            f = record.frames[-1]  # the frame this clip wrote
            mask = (probs[f] > 0.5).float()[None, None].to(held)
            look_f, centre_f = object_look(predictor._encode(frames[f]), mask)
            assert torch.allclose(held[:, 1], look_f, atol=1e-3) and torch.allclose(held_centre[:, 1], centre_f)


@pytest.mark.slow
def carried(name: str, frames, truth, **settings) -> list:
    """``(what the clip step got, what it returned)`` for its keyword ``name`` (a state the engine carries
    from clip to clip, returned as the :class:`ClipOutput` attribute of the same name), per clip of one
    run of ``_run`` with ``settings``."""
    import tamvt.inference.predictor as predictor_module

    calls: list = []
    original = predictor_module.step_clip

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append((kwargs.get(name), getattr(out, name)))
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(predictor_module, "step_clip", recording)
        _run(True, frames, truth, **settings)
    return calls


def test_engine_carries_the_unlike_count_from_clip_to_clip():
    """``presence_likeness_frames``: the count the clip step returns is the one the next clip gets (a
    strict bound, so that it counts), and none is kept with one frame (the engine default)."""
    frames, truth = _render([20 + 3 * t for t in range(12)], 80, None, seed=4)
    calls = carried(
        "unlike_run", frames, truth, **{**BOUND_ALONE, "presence_likeness": 0.9999, "presence_likeness_frames": 100}
    )
    assert len(calls) >= 3 and calls[0][0] is None
    for (_, given_out), (taken_in, _) in zip(calls[:-1], calls[1:], strict=True):
        assert taken_in is not None and torch.equal(taken_in, given_out)
    assert int(calls[-1][1].max()) > 0  # counting (no mask is as alike as 0.9999)
    calls = carried("unlike_run", frames[:6], truth[:6], **BOUND_ALONE)
    assert calls and all(before is None and after is None for before, after in calls)
