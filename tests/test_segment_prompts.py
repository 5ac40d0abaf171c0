"""``tamvt segment`` from boxes / clicks: the proposal written as OUT/prompt.png and tracked like a mask,
ids from ``@ID`` or the options' order, and bad prompts -> one-line error, exit 2, nothing written."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tamvt.checkpoint import save_checkpoint
from tamvt.cli import main
from tamvt.commands.prompting import group_by_object, parse_prompt, prompt_mask
from tamvt.config import load_preset
from tamvt.data.palette import read_index_png
from tamvt.errors import TamvtError
from tamvt.models.tamvt import build_tamvt
from tamvt.prompts.grabcut import GrabCutPrompts

H, W, T = 72, 96, 5
RED = (slice(12, 36), slice(8, 32))  # object 1 at t = 0 (moves right 3 px a frame)
BLUE = (slice(38, 64), slice(54, 84))  # object 2


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("segment-prompts")
    cfg = load_preset("tamvt-small")
    torch.manual_seed(0)
    ckpt = save_checkpoint(root / "small.safetensors", build_tamvt(cfg.model), cfg)
    rng = np.random.default_rng(0)
    frames = rng.integers(60, 120, size=(T, H, W, 3), dtype=np.uint8)
    for t in range(T):
        frames[t, RED[0], RED[1].start + 3 * t : RED[1].stop + 3 * t] = (250, 40, 40)
        frames[t, BLUE[0], BLUE[1]] = (40, 40, 250)
    folder = root / "frames"
    folder.mkdir()
    for t in range(T):
        Image.fromarray(frames[t]).save(folder / f"f{t}.png")
    ids = np.zeros((H, W), np.uint8)
    ids[RED] = 1
    ids[BLUE] = 2
    return {"root": root, "ckpt": str(ckpt), "folder": str(folder), "ids": ids, "frame": frames[0]}


def segment(data, out, *prompts: str) -> int:
    return main(
        ["segment", data["folder"], *prompts, "--out", str(out), "--checkpoint", data["ckpt"]]
        + ["--short-side", "0", "--device", "cpu", "--quiet"]
    )


def iou(a, b) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_boxes_start_tracking_and_the_proposal_is_written(data, tmp_path):
    out = tmp_path / "out"
    # loose boxes around the two squares; the second named @2, the first gets the next free id, 1
    assert segment(data, out, "--box", "5,9,35,39", "--box", "50,34,88,68@2") == 0
    prompt, _ = read_index_png(out / "prompt.png")
    for obj in (1, 2):
        assert iou(prompt == obj, data["ids"] == obj) > 0.9, obj
    assert sorted(p.stem for p in out.glob("f*.png")) == [f"f{t}" for t in range(T)]
    first, _ = read_index_png(out / "f0.png")
    assert np.array_equal(first, prompt)  # the start frame comes back as the proposal
    assert not list(tmp_path.glob(".*"))


def test_clicks_with_one_id_refine_one_object(data, tmp_path):
    out = tmp_path / "out"
    assert segment(data, out, "--click", "70,50@4", "--click", "60,60@4", "--background-click", "40,50") == 0
    prompt, _ = read_index_png(out / "prompt.png")
    assert set(np.unique(prompt)) == {0, 4}
    assert iou(prompt == 4, data["ids"] == 2) > 0.9


@pytest.mark.parametrize(
    "prompts, message",
    [
        (["--box", "1,2,3"], "--box '1,2,3': expected X0,Y0,X1,Y1[@ID]"),
        (["--box", "a,b,c,d"], "expected X0,Y0,X1,Y1[@ID]"),
        (["--box", "30,30,10,40"], "expected X0 < X1 and Y0 < Y1"),
        (["--box", "1,2,30,40@0"], "object id after @ must be a whole number in 1..255"),
        (["--box", "1,2,30,40@x"], "object id after @"),
        (["--click", "5"], "--click '5': expected X,Y[@ID]"),
        (["--box", "200,200,300,300"], "--box 200,200,300,300: box (200.0, 200.0, 300.0, 300.0) is empty or outside"),
        (["--click", "500,5"], "object click (500, 5) is outside the 96x72 frame"),
        (["--background-click", "5,5"], "no object before it to refine"),
        (["--box", "5,9,35,39@1", "--box", "50,34,88,68@1"], "object 1 has two boxes"),
        (["--box", "5,9,35,39", "--mask", "x.png"], "give exactly one of --mask or prompts"),
        ([], "give exactly one of --mask or prompts"),
        (["--box", "5,9,35,39", "--frame", "9"], "--frame 9 out of range"),
    ],
)
def test_bad_prompts_one_line_exit_2(data, tmp_path, capsys, prompts, message):
    out = tmp_path / "out"
    assert segment(data, out, *prompts) == 2
    err = capsys.readouterr().err
    assert err.startswith("tamvt segment: error: ") and message in err, err
    assert err.count("\n") == 1
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_an_empty_proposal_names_its_box():
    frame = np.full((40, 50, 3), 100, np.uint8)
    prompts = [parse_prompt("10,10,30,30", "box"), parse_prompt("15,15", "background-click")]

    class Empty(GrabCutPrompts):
        def box_to_mask(self, frame, box):
            return np.zeros(frame.shape[:2], bool)

        def clicks_to_mask(self, frame, positive, negative=(), previous=None):
            return np.zeros(frame.shape[:2], bool)

    with pytest.raises(
        TamvtError, match=r"--box 10,10,30,30, --background-click 15,15: the grabcut proposal for object 1 is empty"
    ):
        prompt_mask(frame, prompts, Empty())


def test_ids_follow_the_options_and_later_objects_win_overlaps():
    options = [("box", "0,0,10,10"), ("click", "7,7@1"), ("click", "3,3"), ("box", "6,6,9,9@3")]
    ps = [parse_prompt(t, k) for k, t in options]
    groups = group_by_object(ps)
    # @1 is named, so the unnumbered box takes 2 and the unnumbered click 4 (3 is named too)
    assert list(groups) == [2, 1, 4, 3]

    class Fixed(GrabCutPrompts):
        def box_to_mask(self, frame, box):
            m = np.zeros(frame.shape[:2], bool)
            m[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])] = True
            return m

        def clicks_to_mask(self, frame, positive, negative=(), previous=None):
            m = np.zeros(frame.shape[:2], bool)
            for x, y in positive:
                m[int(y), int(x)] = True
            return m

    mask = prompt_mask(np.zeros((12, 12, 3), np.uint8), ps, Fixed())
    # drawn 2, 1, 4, 3: 1 and 4 over 2's box, 3 over 1's pixel
    assert mask[0, 0] == 2 and mask[3, 3] == 4 and mask[7, 7] == 3 and mask[6, 6] == 3 and mask[9, 9] == 2


def test_prompts_on_a_later_frame_of_a_video_file_are_in_its_own_pixels(data, tmp_path):
    """Frame 1 of an MP4, tracked at a smaller size (--short-side 48): the box is read in the file's
    96x72 pixels, the proposal and every output are at that size."""
    from tamvt.data.video import VideoWriter

    frames = np.asarray([np.asarray(Image.open(f"{data['folder']}/f{t}.png")) for t in range(T)])
    video = tmp_path / "in.mp4"
    with VideoWriter(video, fps=10) as w:
        for f in frames:
            w.write(f)
    out = tmp_path / "out"
    argv = ["segment", str(video), "--box", "50,34,88,68", "--frame", "1", "--out", str(out)]
    assert main([*argv, "--checkpoint", data["ckpt"], "--short-side", "48", "--device", "cpu", "--quiet"]) == 0
    prompt, _ = read_index_png(out / "prompt.png")
    assert prompt.shape == (H, W) and iou(prompt == 1, data["ids"] == 2) > 0.85
    assert sorted(p.stem for p in out.glob("0*.png")) == [f"{t:05d}" for t in range(1, T)]
    assert read_index_png(out / "00004.png")[0].shape == (H, W)
