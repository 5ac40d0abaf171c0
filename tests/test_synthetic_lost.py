"""Lost-and-found events of the generator (hide, exit, decoy), measured on the rendered masks and frames
in quiet scenes (no distractors, still camera, no other events) unless said otherwise; the train-lost
preset, its training windows and the loss on them, and how a run selects it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from tamvt.cli import main
from tamvt.data.synthetic import LOST_EVENTS, SynthConfig, SynthConfigError, iter_video, make_video, preset_suite
from tamvt.data.synthetic.events import apply
from tamvt.data.synthetic.lost import BOARD_DEPTH, COVER_DEPTH
from tamvt.data.synthetic.render import render_frame
from tamvt.data.training.synthetic import SyntheticWindows
from tamvt.data.training.transforms import WindowAugment
from tamvt.errors import TamvtError
from tamvt.losses import MaskCriterion

SIZE = (120, 160)


def _config(lost, seed, length=40, **kw) -> SynthConfig:
    kw = {"events": (), "num_distractors": 0, "camera_motion": 0.0, "num_objects": 1, **kw}
    return SynthConfig(size=SIZE, length=length, seed=seed, lost=lost, **kw)


def _event(video, name):
    (event,) = [e for e in video.attributes["events"] if e["type"] == name]
    return event["start"], event["end"]


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def test_hide_empties_the_mask_for_5_to_20_frames_and_the_target_comes_back():
    modes, moved = set(), 0
    for seed in range(6):
        video = make_video(_config(("hide",), seed))
        start, end = _event(video, "hide")
        area = (video.masks == 1).sum(axis=(1, 2))
        assert 5 <= end - start + 1 <= 20 and start >= 2 and end <= len(area) - 2
        assert (area[start : end + 1] == 0).all()  # fully hidden ...
        assert (np.delete(area, range(start, end + 1)) > 0).all()  # ... then, and only then
        assert "hide" in video.attributes["tags"]
        depths = {tr.depth for tr in iter_video(video.config).plan.tracks if tr.obj_id == 0}
        modes |= {"cover"} if COVER_DEPTH in depths else {"board"} if BOARD_DEPTH in depths else set()
        before, after = _centroid(video.masks[start - 1] == 1), _centroid(video.masks[end + 1] == 1)
        moved += np.linalg.norm(after - before) > np.sqrt(area[0])  # re-appears elsewhere
    assert modes == {"cover", "board"} and moved >= 2


def _vertices_in_frame(plan, t: int) -> int:
    """Vertices of target 1's outline inside the frame at ``t`` (image coordinates)."""
    (track,) = [tr for tr in plan.tracks if tr.obj_id == 1]
    kind, (h, w) = plan.kinds[track.kind], plan.config.size
    obj = plan.camera.matrix(t) @ track.pose(t)
    n = 0
    for poly, piece in track.pieces(t, kind.radii, kind.aspect):
        pts = apply(obj @ piece, poly)
        n += int(((pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)).sum())
    return n


def _side(mask: np.ndarray) -> str:
    x, y = _centroid(mask)
    h, w = mask.shape
    gaps = {"left": x, "right": w - x, "top": y, "bottom": h - y}
    return min(gaps, key=gaps.__getitem__)


@pytest.mark.parametrize("camera_motion", [0.0, 1.0])
def test_exit_leaves_the_frame_and_comes_back(camera_motion):
    sides = []
    for seed in range(5):
        video = make_video(_config(("exit",), seed, camera_motion=camera_motion))
        plan = iter_video(video.config).plan
        start, end = _event(video, "exit")
        area = (video.masks == 1).sum(axis=(1, 2))
        assert 2 <= end - start + 1 <= 20 and area[start - 1] > 0 and area[end + 1] > 0
        assert (area[start : end + 1] == 0).all() and (np.delete(area, range(start, end + 1)) > 0).all()
        assert all(_vertices_in_frame(plan, t) == 0 for t in range(start, end + 1))  # out, not hidden
        assert _vertices_in_frame(plan, 0) > 0
        sides.append((_side(video.masks[start - 1] == 1), _side(video.masks[end + 1] == 1)))
    assert any(a == b for a, b in sides) and any(a != b for a, b in sides)  # the same side and another


def _decoys(plan) -> list:
    return [tr for tr in plan.tracks if tr.obj_id == 0 and tr.depth < BOARD_DEPTH]  # quiet: no distractors


def _alone(plan, tracks) -> np.ndarray:
    """``(T, H, W)`` bool: the pixels ``tracks`` cover when nothing else is painted."""
    only = dataclasses.replace(plan, tracks=tuple(dataclasses.replace(tr, obj_id=9) for tr in tracks))
    return np.stack([render_frame(only, t, with_frame=False)[1] == 9 for t in range(plan.config.length)])


@pytest.mark.parametrize("seed", range(3))
def test_decoy_shows_in_the_frame_and_never_in_the_mask(seed):
    plain, video = make_video(_config((), seed)), make_video(_config(("decoy",), seed))
    assert np.array_equal(video.masks, plain.masks)  # the target's mask does not change
    plan = iter_video(video.config).plan
    region = _alone(plan, _decoys(plan))
    seen = region & (video.masks == 0)  # decoy pixels not behind the target
    assert seen.sum() > 0.5 * region.sum() and seen.any(axis=(1, 2)).all()
    diff = np.abs(video.frames.astype(int) - plain.frames.astype(int)).sum(-1)
    assert (diff[seen] > 0).mean() > 0.9  # the decoy is painted there ...
    assert (diff[~region & (plain.masks == 0)] == 0).all()  # ... and nowhere else
    assert _event(video, "decoy") == (0, video.config.length - 1) and "decoy" in video.attributes["tags"]


def test_decoys_stay_where_the_target_went_away():
    late = 0
    for seed in range(8):
        video = make_video(_config(("hide", "decoy"), seed))
        plan = iter_video(video.config).plan
        start, _ = _event(video, "hide")
        (target,) = [tr for tr in plan.tracks if tr.obj_id == 1]
        path = np.array([target.motion.position(t) for t in range(start)])
        gaps = [float(np.linalg.norm(path - d.motion.position(0), axis=1).min()) for d in _decoys(plan)]
        assert min(gaps) < 0.5 * np.sqrt(target.area)  # one sits on the target's path before it went away
        for d in _decoys(plan):
            steps = np.diff([d.motion.position(t) for t in range(plan.config.length)], axis=0)
            assert np.linalg.norm(steps, axis=1).max() < 0.5  # still, within a pixel or two all video
            shown = _alone(plan, [d]).any(axis=(1, 2))
            assert not shown[: d.appears].any() and shown[d.appears :].all()
            late += d.appears > 0
    assert late >= 1  # some turn up only when the target goes away (under the cover)


def test_lost_events_leave_the_rest_of_the_video_alone():
    cfg = SynthConfig(size=SIZE, length=32, num_objects=2, seed=11, events="random")
    base, lost = iter_video(cfg).plan, iter_video(dataclasses.replace(cfg, lost=("exit", "decoy"))).plan
    assert np.array_equal(base.background, lost.background) and base.light == lost.light
    assert lost.events[: len(base.events)] == base.events
    assert [e.type for e in lost.events[len(base.events) :]] == ["exit", "decoy"]
    assert len(lost.tracks) > len(base.tracks)


def test_lost_configs_and_their_errors():
    assert LOST_EVENTS == ("hide", "exit", "decoy")
    assert SynthConfig(length=24, lost="hide, decoy").lost == ("hide", "decoy")
    assert SynthConfig(length=24, lost="random").lost == "random" and SynthConfig().lost == ()
    for kw, words in (
        ({"lost": ("hide", "exit")}, "exclude"),
        ({"lost": "vanish"}, "unknown lost event"),
        ({"lost": "hide", "length": 16}, "too short"),
        ({"events": ("exit",)}, "lost events"),
    ):
        with pytest.raises(SynthConfigError, match=words) as err:
            SynthConfig(**kw)
        assert "\n" not in str(err.value)


def test_train_lost_is_train_with_half_the_videos_lost():
    train, lost = preset_suite("train"), preset_suite("train-lost")
    assert len(lost) == len(train) == 100 and all(c.lost == () for c in train)
    assert sum(c.lost == "random" for c in lost) == 50
    for a, b in zip(train, lost, strict=True):
        assert dataclasses.replace(b, lost=(), name=a.name) == a  # same specs, same seeds
    assert [c.lost for c in preset_suite("train-lost", seed=4)] == [c.lost for c in lost]  # the same videos
    assert sum(c.lost == "random" for c in preset_suite("train-lost", lost_share=0.2)) == 20
    assert sum(c.lost == "random" for c in preset_suite("train", lost_share=1.0)) == 100
    assert {c.lost for c in preset_suite("val", lost_share=1.0, lost="exit")} == {("exit",)}  # checked names
    with pytest.raises(SynthConfigError, match="share"):
        preset_suite("train-lost", lost_share=1.5)
    drawn = [iter_video(dataclasses.replace(c, size=(60, 80))).plan.events for c in lost[:40] if c.lost]
    kinds = {e.type for events in drawn for e in events}
    assert {"hide", "exit", "decoy"} <= kinds


def test_training_windows_start_where_the_object_is_and_the_loss_takes_empty_frames():
    aug = WindowAugment(out_size=(48, 64), scale_range=(1.0, 1.3))
    ds = SyntheticWindows(
        "train-lost", 10, 12, 2, aug, reverse_prob=0.5, seed=2, size=(60, 80), max_skip=3, lost_share=1.0
    )
    samples = [ds[i] for i in range(len(ds))]
    assert all(s.masks[0].any() for s in samples)  # the reference frame shows the object
    gone = [s for s in samples if not s.masks.flatten(1).any(1).all()]
    assert gone  # some windows hold frames without the object
    criterion = MaskCriterion()
    for s in gone:
        target = s.masks[s.num_memory :].float()  # (T, H, W): the query frames
        perfect = (target * 40 - 20)[:, None]  # (T, 1, H, W) logits: sure and right everywhere
        loss = criterion([perfect], target)
        assert torch.isfinite(loss["total"]) and loss["loss_dice"] < 1e-3
        assert criterion([torch.zeros_like(perfect)], target)["total"] > 10 * loss["total"]


def test_a_run_selects_the_lost_stream():
    from tamvt.train.config import load_train_config
    from tamvt.train.data import build_train_dataset

    cfg = load_train_config("synthetic-lost")
    long = load_train_config("synthetic-long")
    assert cfg.data.synthetic_preset == "train-lost"
    same = dataclasses.replace(cfg.data, synthetic_preset="train")
    assert same == long.data and cfg.optim == long.optim and cfg.init_from == long.init_from  # the same budget
    ds = build_train_dataset(cfg.data, seed=0)
    assert sum(s.lost == "random" for s in ds.specs) == 50
    quarter = load_train_config(
        "synthetic-long", ["data.synthetic_preset=train-lost", "data.synthetic_lost_share=0.25"]
    )
    assert sum(s.lost == "random" for s in build_train_dataset(quarter.data, seed=0).specs) == 25
    with pytest.raises(TamvtError, match="synthetic_lost_share"):
        load_train_config("synthetic-lost", ["data.synthetic_lost_share=2"])


def test_cli_writes_lost_events(tmp_path):
    out = tmp_path / "o"
    args = ["synth", str(out), "--preset", "tiny", "--num", "1", "--length", "24", "--lost", "exit", "--quiet"]
    assert main(args) == 0
    (entry,) = json.loads((out / "attributes.json").read_text())["videos"].values()
    assert "exit" in entry["tags"] and [e["type"] for e in entry["events"]][-1] == "exit"
