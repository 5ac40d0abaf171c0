"""VOST reader (Video Object Segmentation under Transformations).

Layout (no resolution sub-folder)::

    <root>/JPEGImages/<seq>/*.jpg          dense frames
    <root>/JPEGImages_10fps/<seq>/*.jpg    (optional) the 10 fps subset the authors' models consume
    <root>/Annotations/<seq>/*.png         masks at 5 fps only: a subset of the frames, 255 = ignore
    <root>/ImageSets/{train,val}.txt

``mask_paths`` holds only the annotated (5 fps) frames; the VOST protocol scores those alone.
The first frame must be annotated; objects are ids ``1..K`` of that first mask, as in the
official VOST toolkit.
"""

from __future__ import annotations

from pathlib import Path

from tamvt.data.davis import check_root, read_davis_style_sequence, read_split_list
from tamvt.data.sequence import VideoSequence
from tamvt.errors import InputError


def read_vost(
    root: str | Path, split: str = "val", frames_dir: str = "JPEGImages", sequences: list[str] | None = None
) -> list[VideoSequence]:
    """Read the sequences of a VOST split, in the order of ``ImageSets/<split>.txt``.

    ``frames_dir``: ``"JPEGImages"`` (all frames) or ``"JPEGImages_10fps"``. Every annotation must
    name a frame of the chosen folder (annotated frames are in both).
    ``sequences``: read only these names. ``extra["frames_dir"]`` records the choice.
    """
    root = check_root(root)
    if not (root / frames_dir).is_dir():
        raise InputError(root / frames_dir, "frame folder not found")
    names = sequences if sequences is not None else read_split_list(root / "ImageSets" / f"{split}.txt")
    return [
        read_davis_style_sequence(n, root / frames_dir / n, root / "Annotations" / n, extra={"frames_dir": frames_dir})
        for n in names
    ]
