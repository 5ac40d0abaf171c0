"""DAVIS-2017 reader, plus the per-sequence DAVIS layout that VOST and VISOR share.

Layout::

    <root>/JPEGImages/480p/<seq>/00000.jpg
    <root>/Annotations/480p/<seq>/00000.png
    <root>/ImageSets/2017/{train,val,test-dev}.txt

Objects are ids ``1..K`` with ``K`` the largest id in the first annotated frame (255 is void,
not an object), as in the official davis2017-evaluation toolkit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tamvt.data.images import list_frame_files, list_mask_files, read_image_size
from tamvt.data.palette import read_index_png
from tamvt.data.sequence import VOID_ID, VideoSequence
from tamvt.errors import InputError


def check_root(root: str | Path) -> Path:
    """``root`` as a Path, or an InputError when it is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "dataset root folder not found")
    return root


def read_split_list(path: Path) -> list[str]:
    """Sequence names of an ImageSets split file, one per line (blank lines skipped, order kept)."""
    if not path.is_file():
        raise InputError(path, "split file not found")
    names = [line.strip() for line in path.read_text().splitlines()]
    names = [n for n in names if n]
    if not names:
        raise InputError(path, "split file lists no sequences")
    dup = sorted(n for n, c in Counter(names).items() if c > 1)
    if dup:
        raise InputError(path, f"sequence listed twice: {dup[0]}")
    return names


def max_object_id(mask: np.ndarray, void_id: int | None) -> int:
    """Largest object id of a ``(H, W)`` uint8 mask, ignoring ``void_id`` (0 when there is none)."""
    ids = np.unique(mask)
    ids = ids[(ids != 0) & (ids != (void_id if void_id is not None else -1))]
    return int(ids.max()) if ids.size else 0


def check_mask_matches_frame(mask_path: Path, mask_hw: tuple[int, int], frame_path: Path) -> None:
    """Raise when a mask and its frame differ in size (frames are otherwise decoded later)."""
    fh, fw = read_image_size(frame_path)
    if (fh, fw) != tuple(mask_hw):
        raise InputError(mask_path, f"mask size {mask_hw[1]}x{mask_hw[0]} != frame size {fw}x{fh} of {frame_path.name}")


def match_masks(frame_paths: list[Path], mask_files: list[Path]) -> dict[int, Path]:
    """Frame index -> mask path, pairing files by stem; a mask without a frame is an error."""
    index: dict[str, int] = {}
    for i, p in enumerate(frame_paths):
        if p.stem in index:
            raise InputError(p, f"two frames named {p.stem} in {p.parent}")
        index[p.stem] = i
    out: dict[int, Path] = {}
    for m in mask_files:
        if m.stem not in index:
            raise InputError(m, f"annotation has no frame named {m.stem} in {frame_paths[0].parent}")
        out[index[m.stem]] = m
    return out


def read_davis_style_sequence(
    name: str, frames_dir: Path, ann_dir: Path, *, void_id: int | None = VOID_ID, extra: Mapping[str, Any] | None = None
) -> VideoSequence:
    """One sequence stored as ``frames_dir/*.jpg`` + ``ann_dir/*.png`` with frame 0 annotated.

    Only the first mask is decoded (object ids, size); the first frame's header is read to check
    the size. Masks may cover a subset of the frames (VOST annotates at 5 fps).
    """
    frames = list_frame_files(frames_dir)
    if not frames:
        raise InputError(frames_dir, "no frames (jpg/png) in the sequence folder")
    if not ann_dir.is_dir():
        raise InputError(ann_dir, "annotation folder not found")
    mask_paths = match_masks(frames, list_mask_files(ann_dir))
    if 0 not in mask_paths:
        raise InputError(ann_dir / f"{frames[0].stem}.png", "first annotation (of the first frame) not found")
    first, _ = read_index_png(mask_paths[0])
    check_mask_matches_frame(mask_paths[0], first.shape, frames[0])
    k = max_object_id(first, void_id)
    if k == 0:
        raise InputError(mask_paths[0], "first annotation has no object (all background / void)")
    return VideoSequence(
        name=name,
        frame_names=tuple(p.stem for p in frames),
        frame_paths=tuple(frames),
        video_path=None,
        mask_paths=mask_paths,
        objects={obj: 0 for obj in range(1, k + 1)},
        size=(int(first.shape[0]), int(first.shape[1])),
        void_id=void_id,
        extra=dict(extra or {}),
    )


def read_davis(
    root: str | Path,
    split: str = "val",
    resolution: str = "480p",
    year: str = "2017",
    sequences: list[str] | None = None,
) -> list[VideoSequence]:
    """Read the sequences of a DAVIS split, in the order of ``ImageSets/<year>/<split>.txt``.

    ``resolution``: ``"480p"`` or ``"Full-Resolution"``. ``sequences``: read only these names
    (they need not be in the split file).
    """
    root = check_root(root)
    names = sequences if sequences is not None else read_split_list(root / "ImageSets" / year / f"{split}.txt")
    return [
        read_davis_style_sequence(n, root / "JPEGImages" / resolution / n, root / "Annotations" / resolution / n)
        for n in names
    ]
