"""Synthetic transformation videos written as a dataset transformation videos in the DAVIS-2017 layout.

    OUT/JPEGImages/480p/<seq>/00000.jpg   (JPEG quality 95 by default)
    OUT/Annotations/480p/<seq>/00000.png  (palette PNG, every frame annotated)
    OUT/ImageSets/2017/val.txt            (train.txt identical)
    OUT/attributes.json                   (tags, events, object sizes: evaluation subsets)

Frames are rendered and written one at a time (a 600-frame 480x854 video never sits in memory).
Each sequence is written under ``OUT/.tmp-<seq>`` and renamed into place when complete; the split
files and attributes.json are written last, so an interrupted run never looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2

from tamvt.atomic import write_text_atomic
from tamvt.data.palette import write_index_png
from tamvt.data.synthetic import SynthConfig, iter_video
from tamvt.errors import InputError, TamvtError

_OWNED = ("JPEGImages", "Annotations", "ImageSets", "attributes.json")  # what --overwrite replaces


def prepare_out(out: Path, overwrite: bool) -> None:
    """Create ``out``; refuse a non-empty one unless ``overwrite`` (then only the dataset parts go)."""
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError(out, "folder is not empty; pass --overwrite to replace the dataset in it")
        for child in out.iterdir():
            if child.name in _OWNED or child.name.startswith(".tmp-"):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)


def write_dataset(
    out: str | Path,
    configs: Sequence[SynthConfig],
    *,
    quality: int = 95,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Render ``configs`` into ``out`` in the DAVIS layout (see the module docstring).

    Returns the attributes.json content ``{"generator", "format_version", "videos": {name: entry}}``.
    """
    from tqdm import tqdm

    out = Path(out)
    names = [c.sequence_name for c in configs]
    if len(set(names)) != len(names):
        raise TamvtError("sequence names must be unique")
    if not 1 <= quality <= 100:
        raise TamvtError(f"--quality must be in 1..100, got {quality}")
    prepare_out(out, overwrite)
    videos = {}
    bar = tqdm(total=sum(c.length for c in configs), unit="frame", disable=not progress, file=sys.stderr)
    try:
        for cfg in configs:
            name = cfg.sequence_name
            bar.set_description(name)
            tmp = out / f".tmp-{name}"
            try:
                jpg_dir, png_dir = tmp / "JPEGImages" / name, tmp / "Annotations" / name
                jpg_dir.mkdir(parents=True)
                video = iter_video(cfg)
                for t, (frame, mask) in enumerate(video):
                    jpg = jpg_dir / f"{t:05d}.jpg"
                    if not cv2.imwrite(str(jpg), frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality]):
                        raise InputError(jpg, "cannot write JPEG")
                    write_index_png(png_dir / f"{t:05d}.png", mask)
                    bar.update(1)
                for sub in ("JPEGImages", "Annotations"):
                    (out / sub / "480p").mkdir(parents=True, exist_ok=True)
                    os.replace(tmp / sub / name, out / sub / "480p" / name)
                videos[name] = video.attributes()
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        bar.close()
    listing = "".join(f"{n}\n" for n in names)
    for split in ("val", "train"):
        write_text_atomic(out / "ImageSets" / "2017" / f"{split}.txt", listing)
    attributes = {"generator": "tamvt.synthetic", "format_version": 1, "videos": videos}
    write_text_atomic(out / "attributes.json", json.dumps(attributes, indent=1) + "\n")
    return attributes
