"""Synthetic transformation videos: determinism, what each event does to the masks (measured on the
masks themselves with cv2 / numpy), attributes vs masks, presets, and the `tamvt synth` CLI."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from tamvt.cli import main
from tamvt.data.synthetic import (
    EVENT_TYPES,
    EVENTS,
    SynthConfig,
    SynthConfigError,
    iter_video,
    make_video,
    preset_suite,
    stream,
)

SIZE = (120, 160)


def _video(events, seed, k=1, **kw):
    """A quiet scene (no distractors, still camera) unless kw says otherwise, so the target's mask
    only changes because of its own event."""
    kw = {"num_distractors": 0, "camera_motion": 0.0, **kw}
    return make_video(SynthConfig(size=SIZE, length=16, num_objects=k, events=events, seed=seed, **kw))


def _components(mask: np.ndarray) -> int:
    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1


def _areas(masks: np.ndarray, k: int) -> np.ndarray:
    """(T, k) pixel count of ids 1..k."""
    return np.stack([(masks == i).sum(axis=(1, 2)) for i in range(1, k + 1)], axis=1)


def _aligned_iou(a: np.ndarray, b: np.ndarray, size: int = 96) -> float:
    """Best IoU of two binary masks after moving both centroids to the centre and rotating b (3 deg steps):
    1 for the same shape moved and turned, lower when the outline itself changed."""

    def centred(m):
        ys, xs = np.nonzero(m)
        shift = np.float32([[1, 0, size / 2 - xs.mean()], [0, 1, size / 2 - ys.mean()]])
        return cv2.warpAffine(m.astype(np.uint8), shift, (size, size), flags=cv2.INTER_NEAREST) > 0

    a, b = centred(a), centred(b).astype(np.uint8)
    best = 0.0
    for angle in range(0, 360, 3):
        rot = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0)
        br = cv2.warpAffine(b, rot, (size, size), flags=cv2.INTER_NEAREST) > 0
        best = max(best, (a & br).sum() / (a | br).sum())
    return best


def test_same_seed_same_bytes_different_seed_differs():
    cfg = SynthConfig(size=(64, 96), length=12, num_objects=2, seed=5)
    a, b = make_video(cfg), make_video(cfg)
    assert a.frames.tobytes() == b.frames.tobytes() and a.masks.tobytes() == b.masks.tobytes()
    assert a.attributes == b.attributes
    c = make_video(dataclasses.replace(cfg, seed=6))
    assert a.frames.tobytes() != c.frames.tobytes() and a.masks.tobytes() != c.masks.tobytes()
    assert a.frames.shape == (12, 64, 96, 3) and a.frames.dtype == np.uint8
    assert a.masks.shape == (12, 64, 96) and set(np.unique(a.masks)) <= {0, 1, 2}


def test_lazy_and_random_access_equal_eager():
    cfg = SynthConfig(size=(64, 96), length=12, num_objects=2, events=("cut", "peel"), seed=9)
    eager = make_video(cfg)
    lazy = iter_video(cfg)
    for t, (frame, mask) in enumerate(lazy):
        assert np.array_equal(frame, eager.frames[t]) and np.array_equal(mask, eager.masks[t])
    assert lazy.attributes() == eager.attributes
    frame, mask = iter_video(cfg).render(7)
    assert np.array_equal(frame, eager.frames[7]) and np.array_equal(mask, eager.masks[7])
    assert iter_video(cfg).attributes() == eager.attributes  # masks-only path gives the same numbers


@pytest.mark.parametrize("seed", range(4))
def test_cut_splits_the_mask_into_pieces(seed):
    video = _video(("cut",), seed, num_distractors=None, camera_motion=1.0)  # a busy scene on purpose
    (event,) = video.attributes["events"]
    obj, start, end = event["object"], event["start"], event["end"]
    assert 1 <= start < end < video.config.length - 1
    before = [_components(video.masks[t] == obj) for t in range(start)]
    after = [_components(video.masks[t] == obj) for t in range(end, video.config.length)]
    assert before == [1] * start
    assert min(after) >= 2


@pytest.mark.parametrize("event_type", ["peel", "shrink"])
@pytest.mark.parametrize("seed", range(3))
def test_peel_and_shrink_lower_the_area_steadily(event_type, seed):
    video = _video((event_type,), seed)
    (event,) = video.attributes["events"]
    area = _areas(video.masks, 1)[:, 0].astype(float)
    s, e = event["start"], event["end"]
    assert np.ptp(area[: s + 1]) <= 0.03 * area[0]  # unchanged before (rasterisation noise only)
    assert np.all(np.diff(area[s : e + 1]) <= 0.02 * area[0])  # never grows during the event
    assert area[e:].max() < 0.8 * area[0]  # and ends clearly smaller


@pytest.mark.parametrize("event_type", ["morph", "mold"])
@pytest.mark.parametrize("seed", range(3))
def test_morph_and_mold_change_the_shape_not_the_area(event_type, seed):
    video = _video((event_type,), seed)
    (event,) = video.attributes["events"]
    masks = video.masks == 1
    area = masks.sum(axis=(1, 2)).astype(float)
    assert abs(area[-1] / area[0] - 1.0) < 0.08
    same = min(_aligned_iou(masks[0], masks[t]) for t in range(1, event["start"] + 1))
    changed = _aligned_iou(masks[0], masks[-1])
    assert same > 0.88 and changed < 0.87


@pytest.mark.parametrize("seed", range(3))
def test_occlusion_hides_the_object_and_it_comes_back(seed):
    video = _video(("occlusion",), seed)
    (event,) = video.attributes["events"]
    area = _areas(video.masks, 1)[:, 0]
    s, e = event["start"], event["end"]
    assert area[:s].min() > 0.9 * area[0]
    assert area[s : e + 1].min() == 0  # completely hidden at some point
    assert area[e:].min() > 0.9 * area[0]  # and fully back after


@pytest.mark.parametrize("seed", range(4))
def test_small_objects_stay_below_half_a_percent(seed):
    video = _video(("small",), seed, k=2, num_distractors=None, camera_motion=1.0)
    pct = _areas(video.masks, 2) * 100.0 / (SIZE[0] * SIZE[1])
    small = [k for k in range(2) if 0 < pct[:, k].max() < 0.5]
    assert len(small) == 1  # exactly one target was made small ...
    col = pct[:, small[0]]
    assert (col[col > 0] < 0.5).all() and (col > 0).sum() >= 8  # ... in every frame where it is seen
    assert "small" in video.attributes["tags"]


@pytest.mark.parametrize("seed", range(4))
def test_multi_instance_has_look_alikes(seed):
    cfg = SynthConfig(size=SIZE, length=16, num_objects=2, events=("multi_instance",), seed=seed)
    lazy = iter_video(cfg)
    kinds = [tr.kind for tr in lazy.plan.tracks]
    targets = [tr for tr in lazy.plan.tracks if tr.obj_id > 0]
    assert any(kinds.count(tr.kind) >= 2 for tr in targets)
    attrs = lazy.attributes()
    assert "multi_instance" in attrs["tags"]
    assert max(o["instances_of_kind"] for o in attrs["objects"].values()) >= 2
    # instances of one kind look alike: the same sprite
    shared = next(tr.kind for tr in targets if kinds.count(tr.kind) >= 2)
    assert sum(lazy.plan.kinds[k].sprite is lazy.plan.kinds[shared].sprite for k in kinds) >= 2


def _check_attributes(attrs: dict, masks: np.ndarray) -> None:
    """attributes.json entry vs what the masks show (areas recomputed by hand from the masks)."""
    t, h, w = masks.shape
    assert attrs["length"] == t and attrs["size"] == [h, w]
    for key, obj in attrs["objects"].items():
        pct = (masks == int(key)).sum(axis=(1, 2)) * 100.0 / (h * w)
        seen = pct[pct > 0]
        assert obj["frames_present"] == len(seen)
        assert obj["area_pct_first"] == pytest.approx(pct[0], abs=1e-4)
        assert obj["area_pct_mean"] == pytest.approx(seen.mean(), abs=1e-4)
        assert obj["area_pct_min"] == pytest.approx(seen.min(), abs=1e-4)
    ids = {int(k) for k in attrs["objects"]}
    assert ids == set(range(1, max(ids) + 1)) and set(np.unique(masks)) <= ids | {0}
    for ev in attrs["events"]:
        assert ev["type"] in attrs["tags"] and ev["object"] in ids and 0 <= ev["start"] < ev["end"] < t
    assert ("small" in attrs["tags"]) == any(o["area_pct_mean"] < 0.5 for o in attrs["objects"].values())
    assert ("long" in attrs["tags"]) == (t >= 300)


def test_attributes_match_masks():
    for cfg in preset_suite("tiny", seed=1):
        video = make_video(cfg)
        _check_attributes(video.attributes, video.masks)


def test_presets_cover_every_event():
    val = preset_suite("val")
    assert len(val) >= 30 and len({c.name for c in val}) == len(val)
    asked = {e for c in val if c.events != "random" for e in c.events}
    assert asked == set(EVENTS)
    assert sum(c.length >= 300 for c in val) >= 3 and max(c.num_objects for c in val) >= 3
    (demo,) = preset_suite("demo")
    assert demo.num_objects == 2 and demo.events == ("cut",)
    assert preset_suite("val", seed=0) == preset_suite("val", seed=0) != preset_suite("val", seed=1)
    assert len(preset_suite("tiny", num=5)) == 5 and len({c.seed for c in preset_suite("tiny", num=5)}) == 5


def test_long_video_renders_lazily():
    cfg = dataclasses.replace(preset_suite("long")[0], size=(40, 56))
    assert cfg.length >= 300
    lazy = iter_video(cfg)
    n = sum(1 for _ in lazy)
    attrs = lazy.attributes()
    assert n == cfg.length and "long" in attrs["tags"]


def test_stream_is_endless_and_deterministic():
    template = SynthConfig(size=(48, 64), length=12)
    a = [v for _, v in zip(range(3), stream(7, template), strict=False)]
    b = [v for _, v in zip(range(2), stream(7, template), strict=False)]
    assert np.array_equal(a[0].frames, b[0].frames) and np.array_equal(a[1].masks, b[1].masks)
    assert len({v.config.seed for v in a}) == 3 and not np.array_equal(a[0].frames, a[1].frames)


def test_bad_configs_raise_one_line_errors():
    with pytest.raises(SynthConfigError, match="unknown event"):
        SynthConfig(events=("cut", "explode"))
    with pytest.raises(SynthConfigError, match="long"):
        SynthConfig(events=("long",))
    with pytest.raises(SynthConfigError, match="too short"):
        SynthConfig(length=6, events=("cut",))
    assert SynthConfig(events="cut, peel").events == ("cut", "peel")
    assert set(EVENT_TYPES) < set(EVENTS)


def test_cli_writes_davis_layout_that_reads_back(tmp_path):
    from tamvt.data.registry import read_dataset

    out = tmp_path / "synth"
    assert main(["synth", str(out), "--preset", "tiny", "--seed", "3", "--quiet"]) == 0
    configs = preset_suite("tiny", seed=3)
    names = [c.name for c in configs]
    for split in ("val", "train"):
        assert (out / "ImageSets" / "2017" / f"{split}.txt").read_text().split() == names
    attrs = json.loads((out / "attributes.json").read_text())
    assert attrs["generator"] == "tamvt.synthetic" and attrs["format_version"] == 1
    assert not list(out.glob(".tmp-*"))
    seqs = {s.name: s for s in read_dataset("davis", out, "val")}
    assert sorted(seqs) == sorted(names)
    for cfg in configs:
        seq, video = seqs[cfg.name], make_video(cfg)
        assert len(seq) == cfg.length and seq.annotated == tuple(range(cfg.length))
        masks = np.stack([seq.read_mask(t) for t in range(cfg.length)])
        assert np.array_equal(masks, video.masks)  # PNG is lossless
        with Image.open(out / "Annotations" / "480p" / cfg.name / "00000.png") as img:
            assert img.mode == "P"
        frame = seq.read_frame(0).astype(int)
        assert np.abs(frame - video.frames[0]).mean() < 4.0  # JPEG quality 95
        _check_attributes(attrs["videos"][cfg.name], masks)


def test_cli_overrides(tmp_path):
    out = tmp_path / "o"
    rc = main(
        [
            "synth",
            str(out),
            "--preset",
            "val",
            "--num",
            "2",
            "--length",
            "14",
            "--size",
            "48x64",
            "--events",
            "shrink,small",
            "--objects",
            "2",
            "--quiet",
        ]
    )
    assert rc == 0
    attrs = json.loads((out / "attributes.json").read_text())["videos"]
    assert sorted(attrs) == ["val-000", "val-001"]
    for entry in attrs.values():
        assert entry["length"] == 14 and entry["size"] == [48, 64] and len(entry["objects"]) == 2
        assert [e["type"] for e in entry["events"]] == ["shrink"]


def test_cli_refuses_non_empty_output(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    assert main(["synth", str(out), "--preset", "tiny", "--num", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tamvt synth: error:") and str(out) in err and "--overwrite" in err
    assert len(err.splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert main(["synth", str(out), "--preset", "tiny", "--num", "1", "--quiet", "--overwrite"]) == 0
    assert main(["synth", str(out), "--preset", "tiny", "--num", "1", "--quiet", "--overwrite"]) == 0
    assert (out / "keep.txt").exists() and (out / "attributes.json").exists()
    assert main(["synth", str(tmp_path / "p"), "--events", "cut,explode", "--quiet"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_interrupted_write_does_not_look_complete(tmp_path, monkeypatch):
    import tamvt.data.synthetic.dataset as synth_cli

    calls = {"n": 0}
    real = synth_cli.write_index_png

    def failing(path, mask, palette=None):
        calls["n"] += 1
        if calls["n"] == 20:  # in the middle of the second video
            raise OSError("disk full")
        real(path, mask, palette)

    monkeypatch.setattr(synth_cli, "write_index_png", failing)
    out = tmp_path / "o"
    with pytest.raises(OSError):
        synth_cli.write_dataset(out, preset_suite("tiny"), progress=False)
    assert not (out / "attributes.json").exists() and not (out / "ImageSets").exists()
    assert not list(out.glob(".tmp-*"))
    assert not (out / "JPEGImages" / "480p" / "tiny-001").exists()
