"""`tamvt eval` against the official DAVIS / VOST numbers, protocol frame selection, reports, bad input."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tamvt.cli import main
from tamvt.data.palette import write_index_png
from tamvt.data.registry import read_dataset
from tamvt.data.sequence import VideoSequence
from tamvt.evaluation.evaluate import EvalResult, ObjectResult, SequenceResult, evaluate, evaluate_sequence
from tamvt.evaluation.protocols import frames_needed, make_plan
from tamvt.evaluation.report import subsets, to_json

FIX = Path(__file__).parent / "fixtures" / "davis_metrics"
EXPECTED = json.loads((FIX / "expected.json").read_text())
METRIC_KEYS = ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
TOL = 1e-9


def run_eval(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "scores.json"
    assert main(["eval", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def assert_close(got: dict, want: dict, keys) -> None:
    for k in keys:
        assert got[k] == pytest.approx(want[k], abs=TOL), k


@pytest.fixture(scope="module")
def davis_result() -> EvalResult:
    seqs = read_dataset("davis", FIX / "gt", "val")
    return evaluate(seqs, FIX / "pred", "davis", workers=2)


def vost_layout(tmp: Path, gt_root: Path, names: list[str]) -> Path:
    """A VOST layout (no resolution folder, ImageSets/val.txt) made of symlinks to a DAVIS layout."""
    for sub in ("Annotations", "JPEGImages"):
        (tmp / sub).mkdir(parents=True)
        for n in names:
            os.symlink(gt_root / sub / "480p" / n, tmp / sub / n)
    (tmp / "ImageSets").mkdir()
    (tmp / "ImageSets" / "val.txt").write_text("\n".join(names) + "\n")
    return tmp


# --- the official numbers --------------------------------------------------------------------


def test_davis_global_and_per_object(davis_result: EvalResult) -> None:
    got = to_json(davis_result)
    assert_close(got["global"], EXPECTED["global"], [*METRIC_KEYS, "J&F-Mean"])
    assert all(type(v) is float for v in got["global"].values())
    assert len(got["per_object"]) == len(EXPECTED["per_object"]) == 18
    for g, w in zip(got["per_object"], EXPECTED["per_object"], strict=True):
        assert (g["sequence"], g["object"]) == (w["sequence"], w["object"])
        assert_close(g, w, METRIC_KEYS)


def test_davis_via_cli_with_reports(tmp_path: Path, capsys) -> None:
    fixture = ["--protocol", "davis", "--gt", str(FIX / "gt"), "--pred", str(FIX / "pred")]
    got = run_eval(tmp_path, *fixture, "--sequences", "judo,blackswan", "--csv", str(tmp_path / "obj.csv"))
    want = [w for w in EXPECTED["per_object"] if w["sequence"] in ("judo", "blackswan")]
    for g, w in zip(got["per_object"], want, strict=True):
        assert (g["sequence"], g["object"]) == (w["sequence"], w["object"])
        assert_close(g, w, METRIC_KEYS)
    assert got["global"]["J-Mean"] == pytest.approx(np.mean([w["J-Mean"] for w in want]), abs=TOL)
    rows = (tmp_path / "obj.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("sequence,object,") and rows[1].startswith("judo,1,32,")
    out = capsys.readouterr().out
    assert "GLOBAL" in out and "blackswan" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obj.csv", "scores.json"]  # no temp files left


def test_davis_per_frame_values(davis_result: EvalResult) -> None:
    per_frame = json.loads((FIX / "per_frame.json").read_text())["main"]
    for obj in davis_result.objects:
        ref = per_frame[obj.sequence]
        assert list(obj.frames) == ref["frames"]
        np.testing.assert_allclose(obj.j, ref["J"][obj.object - 1], rtol=0, atol=TOL)
        np.testing.assert_allclose(obj.f, ref["F"][obj.object - 1], rtol=0, atol=TOL)


def test_vost_protocol_j_and_j_tr(tmp_path: Path) -> None:
    names = (FIX / "gt" / "ImageSets" / "2017" / "val.txt").read_text().split()
    root = vost_layout(tmp_path / "vost", FIX / "gt", names)
    got = run_eval(tmp_path, "--protocol", "vost", "--gt", str(root), "--pred", str(FIX / "pred"), "--workers", "1")
    want = EXPECTED["vost"]
    keys = ("J-Mean", "J-Recall", "J-Decay", "J_tr-Mean", "J_tr-Recall", "J_tr-Decay")
    assert_close(got["global"], want["global"], keys)
    for g, w in zip(got["per_object"], want["per_object"], strict=True):
        assert (g["sequence"], g["object"]) == (w["sequence"], w["object"])
        assert_close(g, w, keys)


def test_long_sequence_decay_is_int64(tmp_path: Path) -> None:
    got = run_eval(
        tmp_path, "--protocol", "davis", "--gt", str(FIX / "long" / "gt"), "--pred", str(FIX / "long" / "pred")
    )
    want = EXPECTED["long"]
    assert_close(got["global"], want["global_official"], ("J-Mean", "J-Recall", "F-Mean", "F-Recall", "J&F-Mean"))
    assert_close(got["global"], want["global_int64_decay"], ("J-Decay", "F-Decay"))
    for g, w in zip(got["per_object"], want["per_object"], strict=True):
        assert_close(g, w, ("J-Mean", "J-Recall", "F-Mean", "F-Recall"))
        assert g["J-Decay"] == pytest.approx(w["J-Decay_int64"], abs=TOL)
        assert g["F-Decay"] == pytest.approx(w["F-Decay_int64"], abs=TOL)
        assert g["num_frames"] == want["num_evaluated_frames"]
    assert got["global"]["J_tr-Mean"] == pytest.approx(want["vost"]["global"]["J_tr-Mean"], abs=TOL)
    assert "length>=300" in got["subsets"] and got["subsets"]["length>=300"]["num_objects"] == 2


def test_extra_prediction_id_is_ignored_with_a_warning(tmp_path: Path, capsys) -> None:
    case = EXPECTED["error_cases"][0]
    root = vost_layout(tmp_path / "vost", FIX / "gt", ["judo"])
    got = run_eval(tmp_path, "--protocol", "vost", "--gt", str(root), "--pred", str(FIX / "pred_extra_id"))
    err = capsys.readouterr().err
    warn = [line for line in err.splitlines() if "warning" in line]
    assert len(warn) == 1
    assert "judo" in warn[0] and case["frame_with_extra_id"] in warn[0] and f"id {case['extra_id']}" in warn[0]
    want = case["vost_official"]
    keys = ("J-Mean", "J-Recall", "J-Decay", "J_tr-Mean", "J_tr-Recall", "J_tr-Decay")
    assert_close(got["global"], want["global"], keys)
    for g, w in zip(got["per_object"], want["per_object"], strict=True):
        assert_close(g, w, keys)


# --- protocols -------------------------------------------------------------------------------


def fake_sequence(
    n: int,
    annotated: list[int],
    objects: dict[int, int],
    tmp: Path = Path("/nonexistent"),
    size: tuple[int, int] = (8, 8),
    extra: dict | None = None,
) -> VideoSequence:
    return VideoSequence(
        name="s",
        frame_names=tuple(f"{i:05d}" for i in range(n)),
        frame_paths=None,
        video_path=None,
        mask_paths={a: tmp / f"{a:05d}.png" for a in annotated},
        objects=objects,
        size=size,
        extra=extra or {},
    )


def test_protocol_frame_selection() -> None:
    seq = fake_sequence(20, [0, 5, 10, 15, 19], {1: 0, 2: 0})
    first = np.zeros((8, 8), np.uint8)
    first[0, 0], first[1, 1] = 1, 3  # ids 1..3: id 2 is absent in frame 0 but still an object (DAVIS)
    for proto, frames in [
        ("davis", (5, 10, 15)),
        ("vost", (5, 10, 15)),
        ("visor", (5, 10, 15, 19)),
        ("generic", (5, 10, 15, 19)),
    ]:
        plan = make_plan(proto, seq, first)
        assert frames_needed(proto, seq) == frames
        assert set(plan.frames.values()) == {frames}
        assert plan.objects == ((1, 2) if proto == "generic" else (1, 2, 3))
    yt = fake_sequence(20, [0, 5, 10, 15, 19], {2: 0, 7: 10})
    plan = make_plan("youtube", yt, first)
    assert plan.objects == (2, 7)
    assert plan.frames == {2: (5, 10, 15, 19), 7: (15, 19)}
    assert plan.all_frames == frames_needed("youtube", yt) == (5, 10, 15, 19)


@pytest.mark.parametrize("protocol", ["visor", "generic"])
def test_last_frame_included(protocol: str) -> None:
    # visor / generic = the DAVIS frames plus the last one
    from tamvt.data.palette import read_index_png
    from tamvt.evaluation.metrics import region_similarity

    seqs = read_dataset("davis", FIX / "gt", "val", sequences=["judo"])
    res = evaluate(seqs, FIX / "pred", protocol, workers=1)
    ref = json.loads((FIX / "per_frame.json").read_text())["main"]["judo"]
    gt, _ = read_index_png(FIX / "gt" / "Annotations" / "480p" / "judo" / "00033.png")
    pred, _ = read_index_png(FIX / "pred" / "judo" / "00033.png")
    for obj in res.objects:
        assert obj.frames == (*ref["frames"], "00033")
        np.testing.assert_allclose(obj.j[:-1], ref["J"][obj.object - 1], rtol=0, atol=TOL)
        assert obj.j[-1] == region_similarity(gt == obj.object, pred == obj.object)


def test_visor_layout_seen_unseen(tmp_path: Path) -> None:
    base = tmp_path / "VISOR_2022"
    for sub in ("JPEGImages", "Annotations"):
        (base / sub / "480p").mkdir(parents=True)
        for n in ("judo", "blackswan"):
            os.symlink(FIX / "gt" / sub / "480p" / n, base / sub / "480p" / n)
    (base / "ImageSets" / "2022").mkdir(parents=True)
    (base / "ImageSets" / "2022" / "val.txt").write_text("judo\nblackswan\n")
    (base / "ImageSets" / "2022" / "val_unseen.txt").write_text("judo\n")
    got = run_eval(tmp_path, "--protocol", "visor", "--gt", str(tmp_path), "--pred", str(FIX / "pred"))
    assert got["subsets"]["visor:unseen"]["num_objects"] == 2 and got["subsets"]["visor:seen"]["num_objects"] == 1
    assert [o["num_frames"] for o in got["per_object"]] == [33, 33, 49]


def test_youtube_objects_scored_after_first_appearance(tmp_path: Path) -> None:
    # frames 0..4, annotated 0, 2, 4; object 1 from frame 0, object 5 appears in frame 2.
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt = {a: np.zeros((10, 10), np.uint8) for a in (0, 2, 4)}
    for a in gt:
        gt[a][0:4, 0:4] = 1  # 16 px
    gt[2][6:8, 6:8] = 5
    gt[4][6:8, 6:8] = 5  # 4 px
    pred = {a: m.copy() for a, m in gt.items()}
    pred[2][0:4, 0:2] = 0  # object 1 half missing in frame 2: J = 8 / 16
    pred[4][6:8, 6:10] = 5  # object 5 twice too wide in frame 4: J = 4 / 8
    for a in gt:
        write_index_png(gt_dir / f"{a:05d}.png", gt[a])
        write_index_png(pred_dir / f"{a:05d}.png", pred[a])
    seq = fake_sequence(5, [0, 2, 4], {1: 0, 5: 2}, gt_dir, (10, 10))
    seq = VideoSequence(**{**seq.__dict__, "void_id": None})
    res = evaluate_sequence(seq, pred_dir, "youtube")
    o1, o5 = res.objects
    assert (o1.object, o1.frames, o1.j.tolist()) == (1, ("00002", "00004"), [0.5, 1.0])
    assert (o5.object, o5.frames, o5.j.tolist()) == (5, ("00004",), [0.5])
    assert o1.area_frac == pytest.approx(16 / 100) and o5.area_frac == pytest.approx(4 / 100)
    assert res.warnings == ()


def test_youtube_layout_and_submission_folder(tmp_path: Path) -> None:
    # video v1: frames 00000..00010 every 5th; object 2 from 00000, object 7 from 00005 (ids non-contiguous)
    split = tmp_path / "yt" / "valid"
    gt = {f: np.zeros((12, 16), np.uint8) for f in ("00000", "00005", "00010")}
    for m in gt.values():
        m[0:4, 0:4] = 2  # 16 px
    gt["00005"][8:10, 8:12] = 7
    gt["00010"][8:10, 8:12] = 7  # 8 px
    pred = {f: m.copy() for f, m in gt.items()}
    pred["00010"][8:10, 8:10] = 0  # object 7 half missing in 00010: J = 4 / 8
    (split / "JPEGImages" / "v1").mkdir(parents=True)
    for f in gt:
        Image.new("RGB", (16, 12)).save(split / "JPEGImages" / "v1" / f"{f}.jpg")
        write_index_png(split / "Annotations" / "v1" / f"{f}.png", gt[f])
        write_index_png(tmp_path / "pred" / "Annotations" / "v1" / f"{f}.png", pred[f])
    meta = {
        "videos": {
            "v1": {
                "objects": {
                    "2": {"category": "a", "frames": ["00000", "00005", "00010"]},
                    "7": {"category": "b", "frames": ["00005", "00010"]},
                }
            }
        }
    }
    (split / "meta.json").write_text(json.dumps(meta))
    got = run_eval(tmp_path, "--protocol", "youtube", "--gt", str(tmp_path / "yt"), "--pred", str(tmp_path / "pred"))
    objs = {(o["object"], o["num_frames"], o["J-Mean"]) for o in got["per_object"]}
    assert objs == {(2, 2, 1.0), (7, 1, 0.5)}
    assert got["global"]["J-Mean"] == pytest.approx(0.75)


# --- subsets ---------------------------------------------------------------------------------


def fake_result() -> EvalResult:
    def obj(seq: str, k: int, j: float, area: float) -> ObjectResult:
        return ObjectResult(seq, k, ("1",), np.array([j]), np.array([j]), area)

    seqs = (
        SequenceResult(
            "a", 50, (10, 10), None, {"visor_split": "seen"}, (obj("a", 1, 1.0, 0.02), obj("a", 2, 0.0, 0.004))
        ),
        SequenceResult("b", 320, (10, 10), 32.0, {"visor_split": "unseen"}, (obj("b", 1, 0.5, 0.0004),)),
    )
    return EvalResult("visor", seqs)


def test_subset_membership_and_means() -> None:
    attrs = {
        "videos": {
            "a": {
                "fps": 10.0,
                "tags": ["cut", "multi_instance"],
                "objects": {"1": {"instances_of_kind": 2}, "2": {"instances_of_kind": 1}},
            },
            "b": {"tags": ["long"]},
        }
    }
    subs = subsets(fake_result(), attrs)
    assert subs["length<100"] == [0, 1] and subs["length>=300"] == [2] and "length100-299" not in subs
    assert subs["LNG"] == [2]  # 320 frames / 32 s; "a" is 5 s long
    assert subs["size<1%"] == [1, 2] and subs["size<0.5%"] == [1, 2] and subs["size<0.05%"] == [2]
    assert subs["multi_instance"] == [0]
    assert subs["tag:cut"] == [0, 1] and subs["tag:long"] == [2]
    assert subs["visor:seen"] == [0, 1] and subs["visor:unseen"] == [2]
    js = to_json(fake_result(), attrs)
    assert js["subsets"]["size<1%"]["num_objects"] == 2
    assert js["subsets"]["size<1%"]["J-Mean"] == pytest.approx(0.25)
    assert js["global"]["J-Mean"] == pytest.approx(0.5)  # objects weigh equally: (1 + 0 + 0.5) / 3
    assert "multi_instance" not in subsets(fake_result(), None)


# --- bad input -------------------------------------------------------------------------------


def judo_pred(tmp: Path) -> Path:
    """A writable copy of pred/judo (symlinked frames) under tmp/pred."""
    d = tmp / "pred" / "judo"
    d.mkdir(parents=True)
    for p in sorted((FIX / "pred" / "judo").iterdir()):
        os.symlink(p, d / p.name)
    return tmp / "pred"


def eval_error(capsys, *args: str) -> str:
    rc = main(["eval", "--protocol", "davis", "--gt", str(FIX / "gt"), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_missing_prediction_folder_and_sequence(tmp_path: Path, capsys) -> None:
    err = eval_error(capsys, "--pred", str(tmp_path / "nope"))
    assert "nope" in err and "not found" in err
    (tmp_path / "empty").mkdir()
    err = eval_error(capsys, "--pred", str(tmp_path / "empty"), "--sequences", "judo")
    assert str(tmp_path / "empty" / "judo") in err


def test_missing_prediction_frame(tmp_path: Path, capsys) -> None:
    pred = judo_pred(tmp_path)
    (pred / "judo" / "00010.png").unlink()
    err = eval_error(capsys, "--pred", str(pred), "--sequences", "judo")
    assert str(pred / "judo" / "00010.png") in err and "missing" in err


@pytest.mark.parametrize("kind", ["size", "rgb", "16bit"])
def test_bad_prediction_png_in_a_worker(tmp_path: Path, capsys, kind: str) -> None:
    pred = judo_pred(tmp_path)
    os.symlink(FIX / "pred" / "blackswan", pred / "blackswan")
    bad = pred / "judo" / "00007.png"
    bad.unlink()
    if kind == "size":
        write_index_png(bad, np.zeros((240, 427), np.uint8))
    elif kind == "rgb":
        Image.new("RGB", (854, 480)).save(bad)
    else:
        Image.fromarray(np.zeros((480, 854), np.uint16)).save(bad)
    err = eval_error(
        capsys,
        "--pred",
        str(pred),
        "--sequences",
        "judo,blackswan",
        "--workers",
        "2",
        "--json",
        str(tmp_path / "out.json"),
    )
    assert str(bad) in err
    assert {"size": "size", "rgb": "RGB", "16bit": "16-bit"}[kind] in err
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("content", [None, "\n"])
def test_missing_or_empty_imagesets(tmp_path: Path, capsys, content: str | None) -> None:
    gt = tmp_path / "gt"
    gt.mkdir()
    for sub in ("Annotations", "JPEGImages"):
        os.symlink(FIX / "gt" / sub, gt / sub)
    if content is not None:
        (gt / "ImageSets" / "2017").mkdir(parents=True)
        (gt / "ImageSets" / "2017" / "val.txt").write_text(content)
    rc = main(["eval", "--protocol", "davis", "--gt", str(gt), "--pred", str(FIX / "pred")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert str(gt / "ImageSets" / "2017" / "val.txt") in err


def test_nan_free_results_are_plain_floats(davis_result: EvalResult) -> None:
    js = to_json(davis_result)
    for entry in [js["global"], *js["per_object"], *js["subsets"].values()]:
        for k, v in entry.items():
            if k not in ("sequence", "object", "num_frames", "num_objects"):
                assert type(v) is float and not math.isnan(v)
