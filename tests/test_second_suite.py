"""The second evaluation suite (benchmarks/second_suite.py) and the re-found metric (tamvt.evaluation.refound)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tamvt.data.palette import read_index_png, write_index_png
from tamvt.data.registry import read_dataset
from tamvt.evaluation.evaluate import evaluate
from tamvt.evaluation.refound import (
    reappearances,
    refound_events,
    refound_rate,
    result_refound,
    sequence_presence,
)

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
TINY = (60, 107)


def _module(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def suite2():
    return _module("second_suite")


# ----------------------------------------------------------------------------- the generator


def test_the_generator_is_deterministic_and_writes_the_davis_layout(tmp_path, suite2):
    a = suite2.write_suite(tmp_path / "a", seed=7, num=2, size=TINY)
    b = suite2.write_suite(tmp_path / "b", seed=7, num=2, size=TINY)
    c = suite2.plan_video(1, 8, TINY)
    assert a == b
    assert list(a["videos"]) == ["s2-000", "s2-001"]
    assert (tmp_path / "a/ImageSets/2017/val.txt").read_text() == "s2-000\ns2-001\n"
    for name, video in a["videos"].items():
        jpgs = sorted((tmp_path / "a/JPEGImages/480p" / name).glob("*.jpg"))
        pngs = sorted((tmp_path / "a/Annotations/480p" / name).glob("*.png"))
        assert len(jpgs) == len(pngs) == video["length"] >= 144  # the first six videos are the long ones
        assert "long" in video["tags"]
        for p in (pngs[0], pngs[-1]):
            other = tmp_path / "b/Annotations/480p" / name / p.name
            assert np.array_equal(read_index_png(p)[0], read_index_png(other)[0])
        assert (tmp_path / "a/JPEGImages/480p" / name / "00050.jpg").read_bytes() == (
            tmp_path / "b/JPEGImages/480p" / name / "00050.jpg"
        ).read_bytes()
    # another seed: another video
    assert c.length != a["videos"]["s2-001"]["length"] or not np.array_equal(
        c.render(0)[1], read_index_png(tmp_path / "a/Annotations/480p/s2-001/00000.png")[0]
    )
    # the project's readers take it; every object is on frame 0
    seqs = read_dataset("davis", tmp_path / "a", "val")
    assert [s.name for s in seqs] == ["s2-000", "s2-001"]
    assert all(set(s.objects.values()) == {0} for s in seqs)
    assert json.loads((tmp_path / "a/attributes.json").read_text())["generator"] == suite2.GENERATOR


def _unoccluded(video, t: int) -> np.ndarray:
    occluders, video.occluders = video.occluders, []
    try:
        return video.render(t, with_frame=False)[1]
    finally:
        video.occluders = occluders


def test_a_fully_hidden_interval_has_empty_ground_truth_while_the_object_is_in_the_frame(suite2):
    for index, kind in ((6, "cover"), (8, "sweep")):
        video = suite2.plan_video(index, 7, TINY)
        attrs = suite2.attributes(video)
        (event,) = [e for e in attrs["events"] if e["type"] == kind]
        start, end = event["start"], event["end"]
        assert suite2.HIDE_MIN <= end - start <= suite2.HIDE_MAX
        assert [start, end] in attrs["objects"]["1"]["invisible"]
        for t in range(start, end):
            assert not (video.render(t, with_frame=False)[1] == 1).any()
            assert (_unoccluded(video, t) == 1).sum() > 0  # it is there, behind the occluder
        assert (video.render(start - 1, with_frame=False)[1] == 1).any()
        assert (video.render(end, with_frame=False)[1] == 1).any()


def test_an_exit_really_leaves_the_frame_and_comes_back(suite2):
    video = suite2.plan_video(7, 7, TINY)
    attrs = suite2.attributes(video)
    (event,) = [e for e in attrs["events"] if e["type"] == "exit"]
    h, w = TINY
    mid = (event["start"] + event["end"]) // 2
    assert not (_unoccluded(video, mid) == 1).any()  # gone without any occluder
    x, y = video.camera(mid) @ np.array([*video.objects[0].pos[mid], 1.0])
    assert not (0 <= x < w and 0 <= y < h)  # its centre is outside the frame
    assert (_unoccluded(video, event["end"]) == 1).any()
    assert event["end"] < video.length - 1


# ----------------------------------------------------------------------------- the metric on hand-made arrays


def _present(n: int, gone: tuple[int, int]) -> np.ndarray:
    p = np.ones(n, bool)
    p[gone[0] : gone[1]] = False
    return p


def test_reappearances_need_a_full_absence_after_being_seen():
    assert reappearances(np.array([1, 1, 0, 0, 1, 1], bool)) == [(4, 2)]
    assert reappearances(np.array([0, 0, 1, 1], bool)) == []  # appears late: not a reappearance
    assert reappearances(np.array([1, 0, 0, 0], bool)) == []  # never comes back: not counted
    assert reappearances(np.array([1, 0, 1, 0, 1], bool)) == [(2, 1), (4, 1)]


def test_refound_found_not_found_too_late_and_never_back():
    present = _present(30, (5, 8))  # back at frame 8
    j = np.where(present, 0.0, 1.0)
    found = j.copy()
    found[12] = 0.6  # 4 frames after
    (e,) = refound_events(found, present)
    assert e.found and e.delay == 4 and e.frame == 8 and e.absent == 3
    (e,) = refound_events(j, present)  # never above 0.5 again
    assert not e.found and e.delay is None
    late = j.copy()
    late[18] = 0.9  # the 11th frame from the reappearance: too late
    (e,) = refound_events(late, present)
    assert not e.found
    edge = j.copy()
    edge[17] = 0.5  # the 10th frame: in time (J >= 0.5 counts)
    assert refound_events(edge, present)[0].found
    gone = _present(30, (20, 30))  # leaves for good: nothing to count
    assert refound_events(np.zeros(30), gone) == []
    # J on an absent frame (empty ground truth and empty prediction: 1.0) never counts as found
    assert not refound_events(np.where(present, 0.1, 1.0), present)[0].found
    # a reappearance with no scored frame in its window is not counted
    unscored = j.copy()
    unscored[8:18] = np.nan
    assert refound_events(unscored, present) == []
    assert refound_rate([]) != refound_rate([])  # NaN
    assert refound_rate(refound_events(found, present) + refound_events(j, present)) == 0.5


def test_refound_from_an_evaluation_of_files(tmp_path):
    """Ground truth on disk: object 1 hidden on frames 4-6, object 2 always there; predictions find object 1
    again on frame 9 in one folder, and leave its mask where it was in another."""
    h, w, n = 20, 30, 16
    root = tmp_path / "gt"
    good, stuck = tmp_path / "good" / "v", tmp_path / "stuck" / "v"
    (root / "JPEGImages/480p/v").mkdir(parents=True)
    for t in range(n):
        gt = np.zeros((h, w), np.uint8)
        gt[2:6, 20:26] = 2
        x = 2 + t  # object 1 moves right
        if not 4 <= t < 7:
            gt[10:15, x : x + 4] = 1
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(root / f"JPEGImages/480p/v/{t:05d}.jpg")
        write_index_png(root / f"Annotations/480p/v/{t:05d}.png", gt)
        p = gt.copy()
        if 7 <= t < 9:  # not yet found on frames 7 and 8
            p[p == 1] = 0
        write_index_png(good / f"{t:05d}.png", p)
        q = (gt == 2).astype(np.uint8) * 2
        q[10:15, 5:9] = 1  # the mask left behind where the object was on frame 3
        write_index_png(stuck / f"{t:05d}.png", q)
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("v\n")
    seqs = read_dataset("davis", root, "val")
    presence = {s.name: sequence_presence(s) for s in seqs}
    assert presence["v"][1][1].tolist() == [not 4 <= t < 7 for t in range(n)]
    ok = result_refound(evaluate(seqs, tmp_path / "good", "davis", workers=1), presence)
    bad = result_refound(evaluate(seqs, tmp_path / "stuck", "davis", workers=1), presence)
    assert [[(e.frame, e.found, e.delay) for e in ev] for ev in ok] == [[(7, True, 2)], []]
    assert [[(e.frame, e.found) for e in ev] for ev in bad] == [[(7, False)], []]
    assert math.isnan(refound_rate(ok[1]))
