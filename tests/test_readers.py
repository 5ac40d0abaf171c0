"""Dataset readers: tiny DAVIS / VOST / YouTube-VOS / VISOR / generic layouts built in tmp_path."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tamvt.data.palette import write_index_png
from tamvt.data.registry import FORMATS, read_dataset
from tamvt.errors import InputError, TamvtError

H, W = 24, 32
FIXTURE_GT = Path(__file__).parent / "fixtures" / "davis_metrics" / "gt"


def write_frames(folder: Path, names: list[str], hw: tuple[int, int] = (H, W), ext: str = ".jpg") -> None:
    """Solid-colour frames; frame i has grey level 10*i (so tests can tell frames apart)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        Image.fromarray(np.full((*hw, 3), 10 * i, np.uint8)).save(folder / f"{n}{ext}")


def blob_mask(ids: dict[int, tuple[slice, slice]], hw: tuple[int, int] = (H, W)) -> np.ndarray:
    m = np.zeros(hw, np.uint8)
    for k, (ys, xs) in ids.items():
        m[ys, xs] = k
    return m


MASK_12V = blob_mask({1: (slice(0, 8), slice(0, 8)), 2: (slice(10, 20), slice(10, 20)), 255: (slice(22, 24), slice(0, 32))})


def make_davis(root: Path) -> Path:
    """seq-a: 4 frames, ids {1, 2} + void in frame 0, every frame annotated.
    seq-b: 3 frames, only id 3 in frame 0 (K = 3 by the max-id rule), only frame 0 annotated."""
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("seq-a\nseq-b\n\n")
    names_a = [f"{i:05d}" for i in range(4)]
    write_frames(root / "JPEGImages" / "480p" / "seq-a", names_a)
    for n in names_a:
        write_index_png(root / "Annotations" / "480p" / "seq-a" / f"{n}.png", MASK_12V)
    write_frames(root / "JPEGImages" / "480p" / "seq-b", [f"{i:05d}" for i in range(3)])
    write_index_png(root / "Annotations" / "480p" / "seq-b" / "00000.png", blob_mask({3: (slice(0, 5), slice(0, 5))}))
    return root


def test_davis_reader(tmp_path: Path) -> None:
    a, b = read_dataset("davis", make_davis(tmp_path / "davis"), split="val")
    assert a.name == "seq-a" and b.name == "seq-b"
    assert a.frame_names == ("00000", "00001", "00002", "00003")
    assert a.annotated == (0, 1, 2, 3) and b.annotated == (0,)
    assert dict(a.objects) == {1: 0, 2: 0}  # 255 is void, not object 255
    assert dict(b.objects) == {1: 0, 2: 0, 3: 0}
    assert a.size == (H, W) and a.void_id == 255 and a.video_path is None
    np.testing.assert_array_equal(a.read_mask(2), MASK_12V)
    frame = a.read_frame(3)
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
    assert abs(int(frame[0, 0, 0]) - 30) <= 2  # JPEG of a solid grey 30


def test_iter_frames_is_lazy(tmp_path: Path) -> None:
    (seq, _) = read_dataset("davis", make_davis(tmp_path / "davis"))
    it = seq.iter_frames(start=1)
    assert isinstance(it, types.GeneratorType)
    i, frame = next(it)
    assert i == 1 and frame.shape == (H, W, 3) and abs(int(frame.mean()) - 10) <= 2
    assert [i for i, _ in it] == [2, 3]


# From tests/fixtures/davis_metrics/README.md: seq -> (frames, K, (H, W)).
FIXTURE_TABLE = {
    "bike-packing": (69, 2, (480, 910)),
    "shooting": (40, 3, (480, 1152)),
    "gold-fish": (78, 5, (480, 854)),
    "judo": (34, 2, (480, 854)),
    "lab-coat": (47, 5, (480, 854)),
    "blackswan": (50, 1, (480, 854)),
}


def test_davis_fixture_matches_readme_table() -> None:
    seqs = read_dataset("davis", FIXTURE_GT, split="val")
    assert [s.name for s in seqs] == list(FIXTURE_TABLE)
    for s in seqs:
        n, k, hw = FIXTURE_TABLE[s.name]
        assert len(s) == n and s.frame_names[0] == "00000" and s.frame_names[-1] == f"{n - 1:05d}"
        assert dict(s.objects) == {obj: 0 for obj in range(1, k + 1)}
        assert s.size == hw and s.annotated == tuple(range(n))
    assert sum(len(s.objects) for s in seqs) == 18


def make_vost(root: Path) -> Path:
    """One sequence, 10 dense frames, masks every 3rd frame (0, 3, 6, 9) with 255 = ignore;
    JPEGImages_10fps holds every 3rd frame too."""
    (root / "ImageSets").mkdir(parents=True)
    (root / "ImageSets" / "val.txt").write_text("cut_apple\n")
    (root / "ImageSets" / "train.txt").write_text("")
    names = [f"frame{i:05d}" for i in range(10)]
    write_frames(root / "JPEGImages" / "cut_apple", names)
    write_frames(root / "JPEGImages_10fps" / "cut_apple", names[::3])
    for n in names[::3]:
        write_index_png(root / "Annotations" / "cut_apple" / f"{n}.png", MASK_12V)
    return root


def test_vost_reader_sparse_annotations(tmp_path: Path) -> None:
    root = make_vost(tmp_path / "vost")
    (seq,) = read_dataset("vost", root, split="val")
    assert seq.name == "cut_apple" and len(seq) == 10
    assert seq.frame_names[3] == "frame00003"
    assert seq.annotated == (0, 3, 6, 9)
    assert set(seq.mask_paths[6].parts[-2:]) == {"cut_apple", "frame00006.png"}
    assert dict(seq.objects) == {1: 0, 2: 0} and seq.void_id == 255
    assert int((seq.read_mask(9) == 255).sum()) == 2 * W
    (seq10,) = read_dataset("vost", root, split="val", frames_dir="JPEGImages_10fps")
    assert len(seq10) == 4 and seq10.annotated == (0, 1, 2, 3)
    assert seq10.extra["frames_dir"] == "JPEGImages_10fps"


def test_registry_formats() -> None:
    assert set(FORMATS) == {"davis", "youtube", "vost", "visor"}
    with pytest.raises(TamvtError, match="unknown dataset format"):
        read_dataset("kitti", FIXTURE_GT)


# ---- bad input: each case corrupts a fresh tiny DAVIS layout and names the file to expect in the message
def _rgb_mask(root: Path) -> str:
    p = root / "Annotations" / "480p" / "seq-a" / "00000.png"
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(p)
    return "00000.png"


def _mask_16bit(root: Path) -> str:
    p = root / "Annotations" / "480p" / "seq-a" / "00000.png"
    Image.fromarray(np.ones((H, W), np.uint16) * 300).save(p)
    return "00000.png"


def _size_mismatch(root: Path) -> str:
    write_index_png(root / "Annotations" / "480p" / "seq-b" / "00000.png", blob_mask({1: (slice(0, 4), slice(0, 4))}, (H, W + 2)))
    return "seq-b/00000.png"


def _no_first_annotation(root: Path) -> str:
    (root / "Annotations" / "480p" / "seq-a" / "00000.png").unlink()
    return "seq-a/00000.png"


def _empty_first_annotation(root: Path) -> str:
    write_index_png(root / "Annotations" / "480p" / "seq-b" / "00000.png", np.zeros((H, W), np.uint8))
    return "seq-b/00000.png"


def _no_frames(root: Path) -> str:
    for p in (root / "JPEGImages" / "480p" / "seq-b").iterdir():
        p.unlink()
    return "JPEGImages/480p/seq-b"


def _missing_sequence_folder(root: Path) -> str:
    (root / "ImageSets" / "2017" / "val.txt").write_text("seq-a\nseq-zzz\n")
    return "seq-zzz"


def _missing_split(root: Path) -> str:
    (root / "ImageSets" / "2017" / "val.txt").unlink()
    return "val.txt"


def _empty_split(root: Path) -> str:
    (root / "ImageSets" / "2017" / "val.txt").write_text("\n \n")
    return "val.txt"


def _mask_without_frame(root: Path) -> str:
    write_index_png(root / "Annotations" / "480p" / "seq-b" / "00007.png", MASK_12V)
    return "00007.png"


def _missing_annotation_folder(root: Path) -> str:
    for p in (root / "Annotations" / "480p" / "seq-b").iterdir():
        p.unlink()
    (root / "Annotations" / "480p" / "seq-b").rmdir()
    return "Annotations/480p/seq-b"


BAD_DAVIS = [_rgb_mask, _mask_16bit, _size_mismatch, _no_first_annotation, _empty_first_annotation, _no_frames,
             _missing_sequence_folder, _missing_split, _empty_split, _mask_without_frame, _missing_annotation_folder]


@pytest.mark.parametrize("corrupt", BAD_DAVIS, ids=[f.__name__.strip("_") for f in BAD_DAVIS])
def test_davis_bad_input(tmp_path: Path, corrupt) -> None:
    root = make_davis(tmp_path / "davis")
    expected = corrupt(root)
    with pytest.raises(InputError) as info:
        read_dataset("davis", root)
    assert expected in str(info.value).replace("\\", "/")


def test_missing_root(tmp_path: Path) -> None:
    for fmt in ("davis", "vost"):
        with pytest.raises(InputError, match="not found") as info:
            read_dataset(fmt, tmp_path / "nowhere")
        assert "nowhere" in str(info.value)


def test_corrupt_frame_is_reported_when_read(tmp_path: Path) -> None:
    root = make_davis(tmp_path / "davis")
    (root / "JPEGImages" / "480p" / "seq-a" / "00002.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (seq, _) = read_dataset("davis", root)  # frames are decoded lazily, so construction succeeds
    with pytest.raises(InputError, match="00002.jpg"):
        list(seq.iter_frames())


def test_wrong_size_frame_is_reported_when_read(tmp_path: Path) -> None:
    root = make_davis(tmp_path / "davis")
    write_frames(root / "JPEGImages" / "480p" / "seq-a", ["00001"], hw=(H + 2, W))
    (seq, _) = read_dataset("davis", root)
    with pytest.raises(InputError, match="00001.jpg: frame size 32x26 != expected 32x24"):
        seq.read_frame(1)


def test_vost_bad_input(tmp_path: Path) -> None:
    root = make_vost(tmp_path / "vost")
    with pytest.raises(InputError, match="train.txt: split file lists no sequences"):
        read_dataset("vost", root, split="train")
    with pytest.raises(InputError, match="JPEGImages_5fps: frame folder not found"):
        read_dataset("vost", root, frames_dir="JPEGImages_5fps")
    (root / "Annotations" / "cut_apple" / "frame00000.png").unlink()
    with pytest.raises(InputError, match="frame00000.png: first annotation"):
        read_dataset("vost", root)
