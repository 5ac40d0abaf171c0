"""``tamvt synth OUT``: write synthetic transformation videos in the DAVIS-2017 layout.

    OUT/JPEGImages/480p/<seq>/00000.jpg   (JPEG quality 95)
    OUT/Annotations/480p/<seq>/00000.png  (palette PNG, every frame annotated)
    OUT/ImageSets/2017/val.txt            (train.txt identical)
    OUT/attributes.json                   (tags, events, object sizes: evaluation subsets)

Frames are rendered and written one at a time (a 600-frame 480x854 video never sits in memory).
Each sequence is written under ``OUT/.tmp-<seq>`` and renamed into place when complete; the split
files and attributes.json are written last, so an interrupted run never looks complete.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

import cv2

from tamvt.atomic import write_text_atomic
from tamvt.data.palette import write_index_png
from tamvt.data.synthetic import PRESETS, SynthConfig, iter_video, preset_suite
from tamvt.errors import InputError, TamvtError

_OWNED = ("JPEGImages", "Annotations", "ImageSets", "attributes.json")  # what --overwrite replaces


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output folder (DAVIS layout)")
    parser.add_argument("--preset", default="demo", choices=PRESETS,
                        help="suite of videos: tiny (tests), demo (1 video, a cut), val (33 videos, every event), "
                             "long (3 videos >= 300 frames), train (100 random videos); default demo")
    parser.add_argument("--num", type=int, default=None, help="number of videos (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0, help="suite seed; video i gets a seed derived from it")
    parser.add_argument("--length", type=int, default=None, help="frames per video (overrides the preset)")
    parser.add_argument("--size", default=None, help="frame size HxW, e.g. 480x854 (default: the preset's)")
    parser.add_argument("--events", default=None,
                        help="comma-separated events for every video: cut, peel, shrink, morph, mold, occlusion, "
                             "small, multi_instance; or 'random'")
    parser.add_argument("--objects", type=int, default=None, help="target objects per video")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    parser.add_argument("--overwrite", action="store_true", help="replace the dataset already in OUT")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise TamvtError(f"--size must be HxW, e.g. 480x854, got {text!r}") from None
    return h, w


def configs_from_args(args: argparse.Namespace) -> list[SynthConfig]:
    """The preset's configs with the command-line overrides applied (validated by SynthConfig)."""
    configs = preset_suite(args.preset, args.seed, args.num)
    overrides: dict = {}
    if args.length is not None:
        overrides["length"] = args.length
    if args.size is not None:
        overrides["size"] = _parse_size(args.size)
    if args.events is not None:
        overrides["events"] = args.events.strip()
    if args.objects is not None:
        overrides["num_objects"] = args.objects
    return [dataclasses.replace(c, **overrides) for c in configs]


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


def write_dataset(out: str | Path, configs: Sequence[SynthConfig], *, quality: int = 95, overwrite: bool = False,
                  progress: bool = True) -> dict:
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


def run(args: argparse.Namespace) -> int:
    configs = configs_from_args(args)
    write_dataset(args.out, configs, quality=args.quality, overwrite=args.overwrite, progress=not args.quiet)
    frames = sum(c.length for c in configs)
    print(f"wrote {len(configs)} video(s), {frames} frames, to {args.out}")
    return 0
