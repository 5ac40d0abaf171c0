"""``tamvt segment``: outputs named like the frames with the input palette, per-object masks, overlay video,
and bad input -> one-line error, exit 2, nothing that looks complete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tamvt.checkpoint import save_checkpoint
from tamvt.cli import main
from tamvt.config import load_preset
from tamvt.data.palette import DAVIS_PALETTE, read_index_png
from tamvt.inference.overlay import contours, overlay
from tamvt.models.tamvt import build_tamvt

H, W, T = 64, 96, 7
PALETTE = bytes(np.random.default_rng(1).integers(0, 256, 768, dtype=np.uint8))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("segment")
    cfg = load_preset("tamvt-small")
    torch.manual_seed(0)
    ckpt = save_checkpoint(root / "small.safetensors", build_tamvt(cfg.model), cfg)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 80, size=(T, H, W, 3), dtype=np.uint8)
    for t in range(T):
        frames[t, 10:30, 5 + 3 * t : 25 + 3 * t] = (250, 40, 40)
        frames[t, 35:60, 50:80] = (40, 40, 250)
    folder = root / "frames"
    folder.mkdir()
    for t in range(T):
        Image.fromarray(frames[t]).save(folder / f"img_{t:03d}.png")
    ids = np.zeros((H, W), np.uint8)
    ids[10:30, 5:25] = 1
    ids[35:60, 50:80] = 3
    mask = Image.frombytes("P", (W, H), ids.tobytes())
    mask.putpalette(PALETTE)
    mask.save(root / "mask.png")
    Image.fromarray(ids).save(root / "gray.png")  # mode L: no palette
    return {"root": root, "ckpt": ckpt, "frames": frames, "folder": folder, "ids": ids}


def segment_argv(data, *extra: str, mask: str = "mask.png", input: Path | None = None) -> list[str]:
    """``tamvt segment`` on the test video with the tiny checkpoint at its own size, on the CPU."""
    folder, mask_path, ckpt = str(input or data["folder"]), str(data["root"] / mask), str(data["ckpt"])
    return [
        "segment",
        folder,
        "--mask",
        mask_path,
        "--checkpoint",
        ckpt,
        "--short-side",
        "0",
        "--device",
        "cpu",
        *extra,
    ]


def segment(data, *extra: str, mask: str = "mask.png", input: Path | None = None) -> int:
    return main(segment_argv(data, "--quiet", *extra, mask=mask, input=input))


def test_default_checkpoint_is_the_shipped_model(data, tmp_path):
    """Without --checkpoint the model shipped in the package is used: the same masks as naming it."""
    from tamvt.checkpoint import shipped_model_path

    base = ["segment", str(data["folder"]), "--mask", str(data["root"] / "mask.png"), "--device", "cpu", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "default")]) == 0
    assert main([*base, "--out", str(tmp_path / "named"), "--checkpoint", str(shipped_model_path())]) == 0
    names = sorted(p.name for p in (tmp_path / "default").glob("*.png"))
    assert len(names) == T
    for name in names:
        assert (tmp_path / "default" / name).read_bytes() == (tmp_path / "named" / name).read_bytes()
    # and it is not the random model of the fixture
    assert main([*base, "--out", str(tmp_path / "random"), "--checkpoint", str(data["ckpt"])]) == 0
    assert any((tmp_path / "default" / n).read_bytes() != (tmp_path / "random" / n).read_bytes() for n in names)


def test_folder_input_with_overlay_and_per_object(data, tmp_path):
    out, video = tmp_path / "out", tmp_path / "overlay.mp4"
    assert segment(data, "--out", str(out), "--overlay", str(video), "--per-object") == 0
    names = [f"img_{t:03d}" for t in range(T)]
    assert sorted(p.stem for p in out.glob("*.png")) == names
    first, palette = read_index_png(out / "img_000.png")
    assert palette == PALETTE  # the input mask's palette is kept
    assert np.array_equal(first, data["ids"])  # the given frame comes back as given
    for obj in (1, 3):
        assert sorted(p.stem for p in (out / str(obj)).glob("*.png")) == names
        binary = np.asarray(Image.open(out / str(obj) / "img_000.png"))
        assert set(np.unique(binary)) == {0, 255}
        assert np.array_equal(binary == 255, data["ids"] == obj)
    for t in range(1, T):
        merged, _ = read_index_png(out / f"img_{t:03d}.png")
        assert set(np.unique(merged)) <= {0, 1, 3}
    from tamvt.data.video import probe_video

    n, size, _ = probe_video(video)
    assert (n, size) == (T, (H, W))
    assert not list(tmp_path.glob(".*"))  # no temporary folder / video left


def test_outputs_equal_the_python_api(data, tmp_path):
    from tamvt.inference.predictor import Predictor

    out = tmp_path / "out"
    assert segment(data, "--out", str(out), "inference.merge=first-wins") == 0
    p = Predictor.from_checkpoint(data["ckpt"], short_side=None, merge="first-wins")
    session = p.start(data["frames"])
    p.add_index_mask(session, 0, data["ids"])
    for t, r in p.propagate(session):
        written, _ = read_index_png(out / f"img_{t:03d}.png")
        assert np.array_equal(written, r.mask), t


def test_later_frame_gray_mask_and_video_file(data, tmp_path):
    from tamvt.data.video import VideoWriter

    video = tmp_path / "in.mp4"
    with VideoWriter(video, fps=10) as w:
        for f in data["frames"]:
            w.write(f)
    out = tmp_path / "out"
    assert segment(data, "--out", str(out), "--frame", "2", "--objects", "3", mask="gray.png", input=video) == 0
    assert sorted(p.stem for p in out.glob("*.png")) == [f"{t:05d}" for t in range(2, T)]
    first, palette = read_index_png(out / "00002.png")
    assert palette == DAVIS_PALETTE  # a gray mask has no palette: DAVIS colours
    assert np.array_equal(first, np.where(data["ids"] == 3, 3, 0))  # --objects 3 drops object 1


def test_force_and_existing_output(data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert segment(data, "--out", str(out)) == 2
    assert "not empty" in capsys.readouterr().err
    assert segment(data, "--out", str(out), "--force") == 0
    assert not (out / "keep.txt").exists() and len(list(out.glob("*.png"))) == T


def bad_cases(data, tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    small = Image.fromarray(np.ones((H // 2, W // 2), np.uint8))
    small.save(tmp_path / "small.png")
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "empty.png")
    base = ["--checkpoint", str(data["ckpt"]), "--short-side", "0", "--device", "cpu", "--quiet"]
    folder, mask = str(data["folder"]), str(data["root"] / "mask.png")
    return {
        "mask size": ([folder, "--mask", str(tmp_path / "small.png"), *base], "mask size 48x32 != frame size 96x64"),
        "empty mask": ([folder, "--mask", str(tmp_path / "empty.png"), *base], "mask is empty"),
        "unknown id": ([folder, "--mask", mask, "--objects", "1,7", *base], "object id(s) 7 not in the mask"),
        "unreadable video": ([str(tmp_path / "broken.mp4"), "--mask", mask, *base], "broken.mp4: cannot open video"),
        "other preset": (
            [folder, "--mask", mask, *base, "--preset", "tamvt-r50"],
            "checkpoint is for a different model",
        ),
        "missing checkpoint": (
            [folder, "--mask", mask, *base[2:], "--checkpoint", str(tmp_path / "no.safetensors")],
            "no.safetensors: checkpoint not found",
        ),
        "model override": ([folder, "--mask", mask, *base, "model.rte=add"], "only inference.* settings"),
        "unknown override": ([folder, "--mask", mask, *base, "inference.colour=red"], "unknown config key"),
        "frame out of range": ([folder, "--mask", mask, "--frame", "9", *base], "mask frame 9 out of range"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "mask size",
        "empty mask",
        "unknown id",
        "unreadable video",
        "other preset",
        "missing checkpoint",
        "model override",
        "unknown override",
        "frame out of range",
    ],
)
def test_bad_input_one_line_exit_2(data, tmp_path, capsys, case):
    argv, message = bad_cases(data, tmp_path)[case]
    out = tmp_path / "out"
    assert main(["segment", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tamvt segment: error: ") and message in err, err
    assert err.count("\n") == 1
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_failure_mid_video_leaves_nothing(data, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for p in data["folder"].iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "img_004.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out, video = tmp_path / "out", tmp_path / "o.mp4"
    cmd = [
        sys.executable,
        "-m",
        "tamvt.cli",
        *segment_argv(data, "--out", str(out), "--overlay", str(video), input=folder),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "img_004.png: cannot read image" in proc.stderr
    assert not out.exists() and not video.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no temporary leftovers


def test_overlay_colours_and_contours():
    frame = np.full((6, 8, 3), 100, np.uint8)
    mask = np.zeros((6, 8), np.uint8)
    mask[1:5, 2:7] = 2
    pal = bytes([0, 0, 0, 0, 0, 0, 200, 0, 50]) + bytes(759)
    out = overlay(frame, mask, pal, alpha=0.5, thickness=1)
    edge = contours(mask)
    # interior pixels of a 4x5 box: rows 2..3, columns 3..5
    assert edge.sum() == 20 - 6 and not edge[2:4, 3:6].any()
    assert out[2, 3].tolist() == [150, 50, 75]  # (100 + colour) / 2
    assert out[1, 2].tolist() == [200, 0, 50]  # contour: full colour
    assert out[0, 0].tolist() == [100, 100, 100]  # background untouched
