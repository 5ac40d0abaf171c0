"""``tamvt predict``: a results folder ``tamvt eval`` reads, resumable (complete sequences skipped, stale
temporary folders redone), sequences split across torchrun processes, objects appearing mid-video."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tamvt.checkpoint import save_checkpoint
from tamvt.cli import main
from tamvt.config import load_preset
from tamvt.data.palette import DAVIS_PALETTE, read_index_png, write_index_png
from tamvt.models.tamvt import build_tamvt

H, W = 64, 96
SEQS = {"alpha": 5, "bravo": 4, "charlie": 6}  # name -> frames


def moving_video(t_len: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``frames (T, H, W, 3)`` uint8 and ``ids (T, H, W)`` uint8: two moving boxes (ids 1, 2)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 80, size=(t_len, H, W, 3), dtype=np.uint8)
    ids = np.zeros((t_len, H, W), np.uint8)
    for t in range(t_len):
        ids[t, 8:28, 4 + 4 * t : 24 + 4 * t] = 1
        ids[t, 36:58, 70 - 3 * t : 90 - 3 * t] = 2
    frames[ids == 1] = (240, 50, 50)
    frames[ids == 2] = (50, 240, 50)
    return frames, ids


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    cfg = load_preset("tamvt-small")
    torch.manual_seed(0)
    ckpt = save_checkpoint(root / "small.safetensors", build_tamvt(cfg.model), cfg)
    davis = root / "davis"
    for k, (name, n) in enumerate(SEQS.items()):
        frames, ids = moving_video(n, k)
        for t in range(n):
            (davis / "JPEGImages" / "480p" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(frames[t]).save(davis / "JPEGImages" / "480p" / name / f"{t:05d}.jpg", quality=95)
            write_index_png(davis / "Annotations" / "480p" / name / f"{t:05d}.png", ids[t])
    (davis / "ImageSets" / "2017").mkdir(parents=True)
    (davis / "ImageSets" / "2017" / "val.txt").write_text("\n".join(SEQS) + "\n")
    return {"root": root, "ckpt": ckpt, "davis": davis}


def model_args(data) -> list[str]:
    return ["--checkpoint", str(data["ckpt"]), "--short-side", "0", "--device", "cpu", "--quiet"]


def test_results_folder_is_evaluable(data, tmp_path, capsys):
    out = tmp_path / "results"
    assert (
        main(["predict", "--format", "davis", "--root", str(data["davis"]), "--out", str(out), *model_args(data)]) == 0
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(SEQS)
    for name, n in SEQS.items():
        assert sorted(p.name for p in (out / name).iterdir()) == [f"{t:05d}.png" for t in range(n)]
        first, palette = read_index_png(out / name / "00000.png")
        gt, _ = read_index_png(data["davis"] / "Annotations" / "480p" / name / "00000.png")
        assert np.array_equal(first, gt) and palette == DAVIS_PALETTE
    capsys.readouterr()
    assert main(["eval", "--protocol", "davis", "--gt", str(data["davis"]), "--pred", str(out), "--workers", "1"]) == 0


def test_rerun_skips_complete_and_redoes_interrupted(data, tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["predict", "--format", "davis", "--root", str(data["davis"]), "--out", str(out), *model_args(data)]
    assert main(argv) == 0
    # simulate an interruption inside "bravo": only a temporary folder with some of its frames
    import shutil

    shutil.rmtree(out / "bravo")
    (out / ".tmp-bravo").mkdir()
    (out / ".tmp-bravo" / "00000.png").write_bytes(b"half")
    stamp = (out / "alpha" / "00003.png").stat().st_mtime_ns
    capsys.readouterr()
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "alpha: complete, skipped" in text and "charlie: complete, skipped" in text
    assert "bravo: wrote 4 frames" in text
    assert (out / "alpha" / "00003.png").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in out.iterdir()) == sorted(SEQS)  # .tmp-bravo is gone
    assert len(list((out / "bravo").iterdir())) == 4


def test_torchrun_two_processes_split_the_sequences(data, tmp_path):
    out = tmp_path / "results"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "tamvt.cli",
        "predict",
        "--format",
        "davis",
        "--root",
        str(data["davis"]),
        "--out",
        str(out),
        *model_args(data),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wrote = re.findall(r"rank (\d)/2: (\w+): wrote", proc.stdout)
    # rank r takes sequences r, r+2, ...: alpha, charlie on rank 0; bravo on rank 1; each exactly once
    assert sorted(wrote) == [("0", "alpha"), ("0", "charlie"), ("1", "bravo")], proc.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(SEQS)
    for name, n in SEQS.items():
        assert len(list((out / name).iterdir())) == n


def test_youtube_object_appearing_mid_video(data, tmp_path):
    root = tmp_path / "ytvos"
    frames, ids = moving_video(6, 7)
    ids[:3][ids[:3] == 2] = 0  # object 2 appears in frame 3
    split = root / "valid"
    for t in range(6):
        (split / "JPEGImages" / "vid1").mkdir(parents=True, exist_ok=True)
        Image.fromarray(frames[t]).save(split / "JPEGImages" / "vid1" / f"{5 * t:05d}.jpg", quality=95)
    write_index_png(split / "Annotations" / "vid1" / "00000.png", ids[0])
    write_index_png(split / "Annotations" / "vid1" / "00015.png", ids[3])
    meta = {
        "videos": {
            "vid1": {
                "objects": {
                    "1": {"category": "a", "frames": ["00000", "00005"]},
                    "2": {"category": "b", "frames": ["00015", "00020"]},
                }
            }
        }
    }
    (split / "meta.json").write_text(json.dumps(meta))
    out = tmp_path / "results"
    assert (
        main(
            [
                "predict",
                "--format",
                "youtube",
                "--root",
                str(root),
                "--split",
                "val",
                "--out",
                str(out),
                *model_args(data),
            ]
        )
        == 0
    )
    pred = [read_index_png(out / "vid1" / f"{5 * t:05d}.png")[0] for t in range(6)]
    assert all(2 not in np.unique(p) for p in pred[:3])  # not there before its first mask
    assert np.array_equal(pred[3] == 2, ids[3] == 2)  # its first mask comes back as given


def test_bad_input(data, tmp_path, capsys):
    out = tmp_path / "results"
    base = ["predict", "--format", "davis", "--out", str(out)]
    assert main([*base, "--root", str(tmp_path / "nowhere"), *model_args(data)]) == 2
    assert "nowhere: dataset root folder not found" in capsys.readouterr().err
    missing = ["--checkpoint", str(tmp_path / "x.safetensors"), "--device", "cpu", "--quiet"]
    assert main([*base, "--root", str(data["davis"]), *missing]) == 2
    err = capsys.readouterr().err
    assert "x.safetensors: checkpoint not found" in err and err.count("\n") == 1
    assert main([*base, "--root", str(data["davis"]), *model_args(data), "--preset", "tamvt-r50"]) == 2
    assert "checkpoint is for a different model" in capsys.readouterr().err
    assert not out.exists()
