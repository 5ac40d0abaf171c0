"""VISOR reader (EPIC-KITCHENS VISOR, semi-supervised VOS, converted to the DAVIS layout).

Layout::

    VISOR_2022/JPEGImages/480p/<seq>/<vid>_frame_<10 digits>.jpg
    VISOR_2022/Annotations/480p/<seq>/<vid>_frame_<10 digits>.png
    VISOR_2022/ImageSets/2022/{train,val,val_unseen}.txt

``root`` may be the folder holding ``VISOR_2022`` or ``VISOR_2022`` itself. Each sequence gets
``extra["visor_split"]``: ``"unseen"`` when it is listed in ``val_unseen.txt`` or comes from one of
the unseen kitchens' videos (:data:`UNSEEN_VIDEOS`), else ``"seen"``.
"""

from __future__ import annotations

import re
from pathlib import Path

from tamvt.data.davis import check_root, read_davis_style_sequence, read_split_list
from tamvt.data.sequence import VideoSequence
from tamvt.errors import InputError

# Val videos whose kitchens never appear in train (the paper's "unseen" subset).
UNSEEN_VIDEOS = frozenset(
    {
        "P07_101",
        "P07_103",
        "P07_110",
        "P09_02",
        "P09_07",
        "P09_104",
        "P09_103",
        "P09_106",
        "P21_01",
        "P29_04",
    }
)
_VIDEO_ID = re.compile(r"^(P\d+_\d+)")


def video_id(sequence: str) -> str | None:
    """The EPIC-KITCHENS video id a VISOR sequence comes from (``"P07_101_seq_00003"`` -> ``"P07_101"``)."""
    m = _VIDEO_ID.match(sequence)
    return m.group(1) if m else None


def _base(root: Path) -> Path:
    if (root / "VISOR_2022").is_dir():
        return root / "VISOR_2022"
    if (root / "ImageSets").is_dir() or (root / "JPEGImages").is_dir():
        return root
    raise InputError(root, "neither a VISOR_2022 folder nor one inside it (no ImageSets / JPEGImages)")


def read_visor(
    root: str | Path, split: str = "val", resolution: str = "480p", sequences: list[str] | None = None
) -> list[VideoSequence]:
    """Read the sequences of a VISOR split (``train``, ``val``, ``val_unseen``) in split-file order."""
    base = _base(check_root(root))
    sets = base / "ImageSets" / "2022"
    names = sequences if sequences is not None else read_split_list(sets / f"{split}.txt")
    unseen_file = sets / "val_unseen.txt"
    listed_unseen = set(unseen_file.read_text().split()) if unseen_file.is_file() else set()
    out = []
    for n in names:
        unseen = n in listed_unseen or video_id(n) in UNSEEN_VIDEOS
        out.append(
            read_davis_style_sequence(
                n,
                base / "JPEGImages" / resolution / n,
                base / "Annotations" / resolution / n,
                extra={"visor_split": "unseen" if unseen else "seen", "video_id": video_id(n)},
            )
        )
    return out
