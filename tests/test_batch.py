"""``tamvt batch``: a list of videos with one model load; a broken entry recorded while the others go
on; a second run skips complete entries and redoes changed or failed ones; the same masks as
``tamvt segment``; manifests as CSV (relative paths, boxes) or a folder; entries shared by processes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tamvt.cli import main
from tamvt.data.palette import read_index_png, write_index_png
from tamvt.data.video import VideoWriter

H, W, T = 48, 64, 5
# the shipped model at the frames' own size, on the CPU
MODEL = ["--short-side", "0", "--device", "cpu"]


def make_video(path: Path, seed: int, left: int = 6) -> np.ndarray:
    """A ``T``-frame video file of a red box moving right over noise; returns the first frame's ids."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 80, size=(T, H, W, 3), dtype=np.uint8)
    for t in range(T):
        frames[t, 10:30, left + 3 * t : left + 18 + 3 * t] = (240, 40, 40)
    with VideoWriter(path, fps=10) as writer:
        for frame in frames:
            writer.write(frame)
    ids = np.zeros((H, W), np.uint8)
    ids[10:30, left : left + 18] = 1
    return ids


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """``a.mp4 b.mp4 c.mp4`` with masks ``a.png ...`` and ``broken.mp4`` (text) with ``broken.png``."""
    root = tmp_path_factory.mktemp("videos")
    for k, name in enumerate("abc"):
        write_index_png(root / f"{name}.png", make_video(root / f"{name}.mp4", k, left=4 + 2 * k))
    (root / "broken.mp4").write_text("this is not a video\n" * 20)
    write_index_png(root / "broken.png", read_index_png(root / "a.png")[0])
    return root


def copy_inputs(videos: Path, dest: Path, names) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        for suffix in (".mp4", ".png"):
            (dest / f"{name}{suffix}").write_bytes((videos / f"{name}{suffix}").read_bytes())
    return dest


def batch(*argv: str) -> int:
    return main(["batch", *argv, *MODEL, "--quiet"])


def summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="") as f:
        return {row["name"]: row for row in csv.DictReader(f)}


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.iterdir())}


def test_broken_entry_recorded_then_skipped_retried(videos, tmp_path, capsys):
    """One broken entry of three: two complete folders, its error in summary.csv, exit 1. A second run
    skips the two (files untouched) and retries the broken one, which succeeds once its video is fixed."""
    inputs = copy_inputs(videos, tmp_path / "in", ["a", "broken", "b"])
    (inputs / "list.csv").write_text("video,mask\na.mp4,a.png\nbroken.mp4,broken.png\nb.mp4,b.png\n")
    out = tmp_path / "out"
    assert batch(str(inputs / "list.csv"), "--out", str(out)) == 1
    printed = capsys.readouterr().out.strip().splitlines()
    assert "1 failed" in printed[-1]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["a", "b", "summary.csv"]
    for name in "ab":
        assert sorted(p.name for p in (out / name).glob("*.png")) == [f"{k:05d}.png" for k in range(T)]
        assert (out / name / ".done.json").is_file()
    rows = summary(out)
    assert list(rows) == ["a", "broken", "b"]
    assert [rows[n]["status"] for n in rows] == ["done", "failed", "done"]
    assert rows["a"]["frames"] == str(T) and float(rows["a"]["seconds"]) > 0
    # the error is the one-line message `tamvt segment` gives for the same file
    assert (
        main(
            ["segment", str(inputs / "broken.mp4"), "--mask", str(inputs / "broken.png"), "--out", str(tmp_path / "s")]
        )
        == 2
    )
    segment_error = capsys.readouterr().err.strip()
    assert segment_error == f"tamvt segment: error: {rows['broken']['error']}"
    assert "broken.mp4" in rows["broken"]["error"]

    before = {name: mtimes(out / name) for name in "ab"}
    assert batch(str(inputs / "list.csv"), "--out", str(out)) == 1
    rows = summary(out)
    assert [rows[n]["status"] for n in rows] == ["skipped", "failed", "skipped"]
    assert {name: mtimes(out / name) for name in "ab"} == before

    (inputs / "broken.mp4").write_bytes((videos / "c.mp4").read_bytes())  # fixed
    assert batch(str(inputs / "list.csv"), "--out", str(out)) == 0
    rows = summary(out)
    assert [rows[n]["status"] for n in rows] == ["skipped", "done", "skipped"]
    assert "0 failed" in capsys.readouterr().out.strip().splitlines()[-1]
    assert {name: mtimes(out / name) for name in "ab"} == before


def test_changed_mask_or_option_redoes(videos, tmp_path):
    """A changed mask redoes its entry only; a changed option redoes every entry."""
    inputs = copy_inputs(videos, tmp_path / "in", "ab")
    (inputs / "list.csv").write_text("video,mask\na.mp4,a.png\nb.mp4,b.png\n")
    out = tmp_path / "out"
    assert batch(str(inputs / "list.csv"), "--out", str(out)) == 0
    first = {name: mtimes(out / name) for name in "ab"}
    ids, _ = read_index_png(inputs / "a.png")
    write_index_png(inputs / "a.png", np.where(ids > 0, 2, 0).astype(np.uint8))  # same region, id 2
    assert batch(str(inputs / "list.csv"), "--out", str(out)) == 0
    assert [r["status"] for r in summary(out).values()] == ["done", "skipped"]
    assert mtimes(out / "b") == first["b"]
    assert read_index_png(out / "a" / "00000.png")[0].max() == 2  # the new mask's id
    assert batch(str(inputs / "list.csv"), "--out", str(out), "inference.merge=first-wins") == 0
    assert [r["status"] for r in summary(out).values()] == ["done", "done"]


def test_same_masks_as_segment(videos, tmp_path):
    """Every file a batch entry writes equals `tamvt segment`'s for the same inputs and options."""
    options = ["--per-object", "--save-probs"]
    assert (
        main(
            [
                "segment",
                str(videos / "a.mp4"),
                "--mask",
                str(videos / "a.png"),
                "--out",
                str(tmp_path / "seg"),
                *options,
                *MODEL,
                "--quiet",
            ]
        )
        == 0
    )
    (tmp_path / "list.csv").write_text(f"video,mask\n{videos / 'a.mp4'},{videos / 'a.png'}\n")
    assert batch(str(tmp_path / "list.csv"), "--out", str(tmp_path / "out"), *options) == 0
    seg = sorted(p.relative_to(tmp_path / "seg") for p in (tmp_path / "seg").rglob("*.png"))
    got = sorted(p.relative_to(tmp_path / "out" / "a") for p in (tmp_path / "out" / "a").rglob("*.png"))
    assert got == seg and len(seg) == 3 * T  # masks, object 1's masks, object 1's probabilities
    for rel in seg:
        assert (tmp_path / "out" / "a" / rel).read_bytes() == (tmp_path / "seg" / rel).read_bytes(), rel


def test_folder_manifest_relative_paths_boxes(videos, tmp_path):
    """A folder (video files and a frame folder, each with a mask of its name) and a CSV whose relative
    paths, names, frames and boxes are read from the manifest's folder."""
    folder = copy_inputs(videos, tmp_path / "clips", "ab")
    frames = folder / "shots"
    frames.mkdir()
    for k in range(T):
        Image.fromarray(np.full((H, W, 3), 40 + 10 * k, np.uint8)).save(frames / f"f{k}.png")
    ids = np.zeros((H, W), np.uint8)
    ids[5:20, 5:20] = 3
    write_index_png(folder / "shots.png", ids)
    (folder / "notes.txt").write_text("not a video")
    assert batch(str(folder), "--out", str(tmp_path / "out")) == 0
    assert list(summary(tmp_path / "out")) == ["a", "b", "shots"]
    assert sorted(p.name for p in (tmp_path / "out" / "shots").glob("*.png")) == [f"f{k}.png" for k in range(T)]

    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "jobs.csv").write_text(
        "video,mask,box,frame,name\n"
        "../clips/a.mp4,../clips/a.png,,,first\n"
        '../clips/b.mp4,,"10,8,32,32",2,boxed\n'
        '../clips/b.mp4,,"70,60,90,80",,outside\n'
    )
    assert batch(str(lists / "jobs.csv"), "--out", str(tmp_path / "out2")) == 1
    rows = summary(tmp_path / "out2")
    assert [rows[n]["status"] for n in rows] == ["done", "done", "failed"]
    assert "box 1" in rows["outside"]["error"] and "b.mp4" in rows["outside"]["error"]
    boxed = sorted((tmp_path / "out2" / "boxed").glob("0*.png"))
    assert [p.name for p in boxed] == [f"{k:05d}.png" for k in range(2, T)]  # from the box's frame on
    first = read_index_png(boxed[0])[0]
    assert set(np.unique(first)) == {0, 1} and first[10:30, 12:30].mean() > 0.5  # the box's object
    proposal = read_index_png(tmp_path / "out2" / "boxed" / "prompt.png")[0]  # what the box became, kept
    assert set(np.unique(proposal)) == {0, 1} and proposal[10:30, 12:30].mean() > 0.5
    assert not (tmp_path / "out2" / "first" / "prompt.png").exists()  # a mask entry has no proposal


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("movie,mask\na.mp4,a.png\n", "no 'video' column"),
        (
            "video,mask\na.mp4,a.png\nb.mp4,a.png\nclips/a.mkv,a.png\n",
            "two entries named 'a': list.csv line 2 and list.csv line 4",
        ),
        ("video,box\na.mp4,1;2\n", "list.csv line 2: a box is X0,Y0,X1,Y1"),
        ("video,mask,frame\na.mp4,a.png,x\n", "frame must be an integer"),
    ],
)
def test_manifest_errors_before_any_work(tmp_path, capsys, text, words):
    (tmp_path / "list.csv").write_text(text)
    assert batch(str(tmp_path / "list.csv"), "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("tamvt batch: error: ") and words in err, err
    assert not (tmp_path / "out").exists()
    assert batch(str(tmp_path / "missing.csv"), "--out", str(tmp_path / "out")) == 2
    assert "missing.csv: manifest not found" in capsys.readouterr().err


def run_cli(argv: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tamvt.cli", *argv, *MODEL, "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})},
    )


def test_processes_share_the_list(videos, tmp_path):
    """``--workers 2`` and two torchrun-like ranks (RANK/WORLD_SIZE, one parent): each entry is
    segmented by exactly one process, and summary.csv holds all of them."""
    (tmp_path / "list.csv").write_text(
        "video,mask\n" + "".join(f"{videos / n}.mp4,{videos / n}.png\n" for n in ["a", "b", "c", "broken"])
    )
    proc = run_cli(["batch", str(tmp_path / "list.csv"), "--out", str(tmp_path / "w"), "--workers", "2"])
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr
    for name, status in [("a", "done"), ("b", "done"), ("c", "done"), ("broken", "failed")]:
        assert stdout.count(f"tamvt batch: {name}: {status}") == 1, stdout
    assert [r["status"] for r in summary(tmp_path / "w").values()] == ["done", "done", "done", "failed"]

    ranks = [
        run_cli(
            ["batch", str(tmp_path / "list.csv"), "--out", str(tmp_path / "r")],
            {"WORLD_SIZE": "2", "RANK": str(r), "LOCAL_RANK": str(r)},
        )
        for r in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in ranks]
    joined = "".join(outputs)
    for name in ["a", "b", "c", "broken"]:
        assert joined.count(f"tamvt batch: {name}: ") == 1, joined
    assert [r["status"] for r in summary(tmp_path / "r").values()] == ["done", "done", "done", "failed"]


def test_foreign_folder_not_replaced(videos, tmp_path):
    """A folder of an entry's name that tamvt batch did not write (no .done.json) is left alone."""
    (tmp_path / "list.csv").write_text(f"video,mask\n{videos / 'a.mp4'},{videos / 'a.png'}\n")
    (tmp_path / "out" / "a").mkdir(parents=True)
    (tmp_path / "out" / "a" / "keep.txt").write_text("mine")
    assert batch(str(tmp_path / "list.csv"), "--out", str(tmp_path / "out")) == 1
    assert "not written by tamvt batch" in summary(tmp_path / "out")["a"]["error"]
    assert [p.name for p in (tmp_path / "out" / "a").iterdir()] == ["keep.txt"]


def test_claims_stale_live_and_same_run(tmp_path):
    """A claim is taken over from a finished or dead process of an earlier run, never from a running
    one nor from this run's other process; a claimed entry is claimed once."""
    import json
    import socket

    from tamvt.commands.claims import Claims

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    records = {
        "dead": {"run": "old", "host": host, "pid": dead.pid, "status": "running"},
        "finished": {"run": "old", "host": host, "pid": os.getpid(), "status": "failed"},
        "live": {"run": "old", "host": host, "pid": os.getpid(), "status": "running"},
        "ours": {"run": "new", "host": host, "pid": dead.pid, "status": "running"},
    }
    for name, record in records.items():
        (tmp_path / f".{name}.claim").write_text(json.dumps(record))
    claims = Claims(tmp_path, "new")
    got = {name: claims.claim(name) for name in [*records, "fresh"]}
    assert got == {"dead": "mine", "finished": "mine", "live": "busy", "ours": "taken", "fresh": "mine"}
    assert claims.claim("fresh") == "taken"
    assert json.loads((tmp_path / ".dead.claim").read_text())["pid"] == os.getpid()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f".{n}.claim" for n in [*records, "fresh"])
