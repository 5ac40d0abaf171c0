"""Dataset readers: tiny DAVIS / VOST / YouTube-VOS / VISOR / generic layouts built in tmp_path."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tamvt.data.generic import read_generic
from tamvt.data.palette import DAVIS_PALETTE, write_index_png
from tamvt.data.registry import FORMATS, read_dataset
from tamvt.data.video import VideoWriter
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


MASK_12V = blob_mask(
    {1: (slice(0, 8), slice(0, 8)), 2: (slice(10, 20), slice(10, 20)), 255: (slice(22, 24), slice(0, 32))}
)


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
    wide = blob_mask({1: (slice(0, 4), slice(0, 4))}, (H, W + 2))
    write_index_png(root / "Annotations" / "480p" / "seq-b" / "00000.png", wide)
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


BAD_DAVIS = [
    _rgb_mask,
    _mask_16bit,
    _size_mismatch,
    _no_first_annotation,
    _empty_first_annotation,
    _no_frames,
    _missing_sequence_folder,
    _missing_split,
    _empty_split,
    _mask_without_frame,
    _missing_annotation_folder,
]


@pytest.mark.parametrize("corrupt", BAD_DAVIS, ids=[f.__name__.strip("_") for f in BAD_DAVIS])
def test_davis_bad_input(tmp_path: Path, corrupt) -> None:
    root = make_davis(tmp_path / "davis")
    expected = corrupt(root)
    with pytest.raises(InputError) as info:
        read_dataset("davis", root)
    assert expected in str(info.value).replace("\\", "/")


def test_missing_root(tmp_path: Path) -> None:
    for fmt in FORMATS:
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


# ---- YouTube-VOS
def make_youtube(root: Path, split: str = "valid") -> Path:
    """Video "vid1": frames 00000, 00005, ..., 00025; object 2 from 00000, object 5 from 00010
    (valid-style: masks only at each object's first appearance)."""
    names = [f"{i:05d}" for i in range(0, 30, 5)]
    write_frames(root / split / "JPEGImages" / "vid1", names)
    ann = root / split / "Annotations" / "vid1"
    write_index_png(ann / "00000.png", blob_mask({2: (slice(0, 6), slice(0, 6))}))
    write_index_png(ann / "00010.png", blob_mask({2: (slice(0, 6), slice(0, 6)), 5: (slice(12, 20), slice(12, 20))}))
    meta = {
        "videos": {
            "vid1": {
                "objects": {
                    "5": {"category": "cat", "frames": ["00010", "00015", "00020", "00025"]},
                    "2": {"category": "person", "frames": names},
                }
            }
        }
    }
    (root / split / "meta.json").write_text(json.dumps(meta))
    return root


def test_youtube_reader_object_starts_mid_video(tmp_path: Path) -> None:
    root = make_youtube(tmp_path / "ytvos")
    (seq,) = read_dataset("youtube", root, split="val")  # "val" finds the "valid" folder
    assert seq.name == "vid1" and seq.frame_names == ("00000", "00005", "00010", "00015", "00020", "00025")
    assert dict(seq.objects) == {2: 0, 5: 2}
    assert seq.annotated == (0, 2) and seq.void_id is None and seq.size == (H, W)
    assert seq.extra["categories"] == {2: "person", 5: "cat"}
    assert set(np.unique(seq.read_mask(2)).tolist()) == {0, 2, 5}


def test_youtube_all_frames(tmp_path: Path) -> None:
    root = make_youtube(tmp_path / "ytvos")
    write_frames(root / "valid_all_frames" / "JPEGImages" / "vid1", [f"{i:05d}" for i in range(26)])
    (seq,) = read_dataset("youtube", root, split="valid", all_frames=True)
    assert len(seq) == 26 and dict(seq.objects) == {2: 0, 5: 10} and seq.annotated == (0, 10)


def test_youtube_bad_input(tmp_path: Path) -> None:
    root = make_youtube(tmp_path / "ytvos")
    with pytest.raises(InputError, match="train: split folder not found"):
        read_dataset("youtube", root, split="train")
    (root / "valid" / "Annotations" / "vid1" / "00010.png").unlink()
    with pytest.raises(InputError, match="00010.png: first annotation of object 5 not found"):
        read_dataset("youtube", root)
    (root / "valid" / "meta.json").write_text("{not json")
    with pytest.raises(InputError, match="meta.json: not valid JSON"):
        read_dataset("youtube", root)
    (root / "valid" / "meta.json").unlink()
    with pytest.raises(InputError, match="meta.json not found"):
        read_dataset("youtube", root)


# ---- VISOR
def make_visor(root: Path) -> Path:
    base = root / "VISOR_2022"
    sets = base / "ImageSets" / "2022"
    sets.mkdir(parents=True)
    seqs = ["P01_107_seq_00001", "P07_101_seq_00002", "P22_01_seq_00003"]
    (sets / "val.txt").write_text("\n".join(seqs) + "\n")
    (sets / "val_unseen.txt").write_text("P22_01_seq_00003\n")  # listed, though its video is not in UNSEEN_VIDEOS
    for s in seqs:
        vid = s[: s.index("_seq")]
        names = [f"{vid}_frame_{i:010d}" for i in (21, 101, 1001)]
        write_frames(base / "JPEGImages" / "480p" / s, names)
        write_index_png(base / "Annotations" / "480p" / s / f"{names[0]}.png", MASK_12V)
        write_index_png(base / "Annotations" / "480p" / s / f"{names[2]}.png", MASK_12V)
    return root


def test_visor_reader_seen_unseen(tmp_path: Path) -> None:
    root = make_visor(tmp_path / "visor")
    for r in (root, root / "VISOR_2022"):
        seqs = read_dataset("visor", r, split="val")
        assert [s.extra["visor_split"] for s in seqs] == ["seen", "unseen", "unseen"]
    a = seqs[0]
    # natural order: frame 21 < 101 < 1001
    assert a.frame_names == tuple(f"P01_107_frame_{i:010d}" for i in (21, 101, 1001))
    assert a.annotated == (0, 2) and dict(a.objects) == {1: 0, 2: 0}
    assert seqs[1].extra["video_id"] == "P07_101"


def test_visor_bad_root(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: neither a VISOR_2022 folder"):
        read_dataset("visor", tmp_path / "empty")


# ---- generic
GEN_MASK = blob_mask({3: (slice(2, 10), slice(4, 12)), 7: (slice(12, 20), slice(16, 30))})


def test_generic_from_folder(tmp_path: Path) -> None:
    write_frames(tmp_path / "clip", ["img_1", "img_2", "img_10"], ext=".png")
    palette = bytes(range(256)) * 3
    write_index_png(tmp_path / "m.png", GEN_MASK, palette=palette)
    seq = read_generic(tmp_path / "clip", tmp_path / "m.png", frame=1)
    assert seq.name == "clip" and seq.frame_names == ("img_1", "img_2", "img_10")
    assert dict(seq.objects) == {3: 1, 7: 1} and seq.annotated == (1,) and seq.size == (H, W)
    assert seq.extra["palette"] == palette
    assert int(seq.read_frame(2)[0, 0, 0]) == 20  # PNG frames are lossless


def test_generic_from_video(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "v.mp4", fps=10) as w:
        for i in range(5):
            w.write(np.full((H, W, 3), 40 * i, np.uint8))
    write_index_png(tmp_path / "m.png", GEN_MASK)
    seq = read_generic(tmp_path / "v.mp4", tmp_path / "m.png", name="mine")
    assert seq.name == "mine" and seq.frame_names == ("00000", "00001", "00002", "00003", "00004")
    assert seq.frame_paths is None and seq.video_path == tmp_path / "v.mp4"
    assert dict(seq.objects) == {3: 0, 7: 0} and seq.extra["palette"] == DAVIS_PALETTE
    it = seq.iter_frames(start=3)
    assert isinstance(it, types.GeneratorType)
    frames = list(it)
    assert [i for i, _ in frames] == [3, 4] and abs(float(frames[0][1].mean()) - 120) < 4


@pytest.mark.parametrize("case", ["mask_size", "empty_mask", "frame_range", "no_input", "bad_video", "rgb_mask"])
def test_generic_bad_input(tmp_path: Path, case: str) -> None:
    write_frames(tmp_path / "clip", ["a", "b"])
    inp, mask, frame = tmp_path / "clip", tmp_path / "m.png", 0
    write_index_png(mask, GEN_MASK)
    expect = "m.png"
    if case == "mask_size":
        write_index_png(mask, np.ones((H, W + 1), np.uint8))
    elif case == "empty_mask":
        write_index_png(mask, np.zeros((H, W), np.uint8))
    elif case == "frame_range":
        frame, expect = 2, "clip: mask frame 2 out of range"
    elif case == "no_input":
        inp, expect = tmp_path / "nothing.mp4", "nothing.mp4"
    elif case == "bad_video":
        inp, expect = tmp_path / "broken.mp4", "broken.mp4"
        inp.write_bytes(b"\x00\x00\x00\x18ftypmp42 garbage garbage")
    elif case == "rgb_mask":
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(mask)
    with pytest.raises(InputError) as info:
        read_generic(inp, mask, frame=frame)
    assert expect in str(info.value)
