"""``--save-probs``: each object's probability as an 8-bit gray PNG per frame (``round(p * 255)``),
``OUT/probs/<id>/<frame>.png`` for ``segment`` and ``OUT/<sequence>/probs/<id>/<frame>.png`` for
``predict``; for one object, ``>= 128`` is the index mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tamvt.cli import main
from tamvt.commands.output import write_probs
from tamvt.data.palette import read_index_png, write_index_png

H, W, T = 48, 64, 6
MODEL = ["--short-side", "0", "--device", "cpu", "--quiet"]  # the shipped model at the frames' size


@pytest.fixture(scope="module")
def davis(tmp_path_factory):
    """A one-sequence DAVIS layout: a red box moving right over noise, object id 2."""
    root = tmp_path_factory.mktemp("probs")
    rng = np.random.default_rng(0)
    for t in range(T):
        frame = rng.integers(0, 80, size=(H, W, 3), dtype=np.uint8)
        frame[10:30, 6 + 3 * t : 24 + 3 * t] = (240, 40, 40)
        (root / "JPEGImages" / "480p" / "box").mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame).save(root / "JPEGImages" / "480p" / "box" / f"{t:05d}.png")
    ids = np.zeros((H, W), np.uint8)
    ids[10:30, 6:24] = 2
    write_index_png(root / "Annotations" / "480p" / "box" / "00000.png", ids)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("box\n")
    return root


def check_probs(folder, obj: int, given: np.ndarray) -> None:
    """``folder/probs/<obj>/<frame>.png`` for every mask ``folder/<frame>.png``: gray, soft, and
    ``>= 128`` where the mask has ``obj``; the given frame's are the given mask as 0 / 255."""
    masks = sorted(folder.glob("*.png"))
    assert len(masks) == T
    soft = False
    for path in masks:
        img = Image.open(folder / "probs" / str(obj) / path.name)
        assert img.mode == "L"
        p = np.asarray(img)
        ids, _ = read_index_png(path)
        assert ((p >= 128) == (ids == obj)).all(), path.name
        soft |= bool(((p > 0) & (p < 255)).any())
    assert sorted(p.name for p in (folder / "probs" / str(obj)).iterdir()) == [p.name for p in masks]
    assert (np.asarray(Image.open(folder / "probs" / str(obj) / masks[0].name)) == np.where(given, 255, 0)).all()
    assert soft  # probabilities, not the binary masks again
    assert read_index_png(masks[-1])[0].any()  # the object is still tracked at the end


def test_segment_save_probs(davis, tmp_path):
    frames = davis / "JPEGImages" / "480p" / "box"
    mask = davis / "Annotations" / "480p" / "box" / "00000.png"
    assert (
        main(["segment", str(frames), "--mask", str(mask), "--out", str(tmp_path / "out"), "--save-probs", *MODEL]) == 0
    )
    check_probs(tmp_path / "out", 2, read_index_png(mask)[0] == 2)


def test_predict_save_probs(davis, tmp_path):
    out = tmp_path / "res"
    argv = ["predict", "--format", "davis", "--root", str(davis), "--out", str(out), "--save-probs", *MODEL]
    assert main(argv) == 0
    check_probs(out / "box", 2, read_index_png(davis / "Annotations" / "480p" / "box" / "00000.png")[0] == 2)


def test_probability_levels(tmp_path):
    """round(p * 255), by hand; 0.5 and just above are 128, just below 127."""
    probs = torch.tensor([[[0.0, 1.0, 0.5, 0.4999999, 0.2, 0.5000001]]])
    write_probs(tmp_path, "00007", (4,), probs)
    got = np.asarray(Image.open(tmp_path / "probs" / "4" / "00007.png"))
    assert got.tolist() == [[0, 255, 128, 127, 51, 128]]
