"""``tamvt synth OUT``: write synthetic transformation videos in the DAVIS-2017 layout
(:mod:`tamvt.data.synthetic.dataset` says what is written and how)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from tamvt.data.synthetic import PRESETS, SynthConfig, preset_suite
from tamvt.data.synthetic.dataset import write_dataset
from tamvt.errors import TamvtError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output folder (DAVIS layout)")
    parser.add_argument(
        "--preset",
        default="demo",
        choices=PRESETS,
        help="suite of videos: tiny (tests), demo (1 video, a cut), val (33 videos, every event), "
        "long (3 videos >= 300 frames), train (100 random videos), train-lost (train, half of them with "
        "random lost events); default demo",
    )
    parser.add_argument("--num", type=int, default=None, help="number of videos (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0, help="suite seed; video i gets a seed derived from it")
    parser.add_argument("--length", type=int, default=None, help="frames per video (overrides the preset)")
    parser.add_argument("--size", default=None, help="frame size HxW, e.g. 480x854 (default: the preset's)")
    parser.add_argument(
        "--events",
        default=None,
        help="comma-separated events for every video: cut, peel, shrink, morph, mold, occlusion, "
        "small, multi_instance; or 'random'",
    )
    parser.add_argument(
        "--lost",
        default=None,
        help="comma-separated lost-and-found events for every video: hide or exit (a target hidden "
        "5-20 frames / leaving the frame and coming back), decoy (still look-alikes where it was); or "
        "'random'; 'none' for none",
    )
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
    if args.lost is not None:
        overrides["lost"] = "" if args.lost.strip() == "none" else args.lost.strip()
    if args.objects is not None:
        overrides["num_objects"] = args.objects
    return [dataclasses.replace(c, **overrides) for c in configs]


def run(args: argparse.Namespace) -> int:
    from tamvt.commands.output import check_output_folder

    configs = configs_from_args(args)
    check_output_folder(args.out)  # a non-empty OUT without --overwrite is refused by write_dataset
    write_dataset(args.out, configs, quality=args.quality, overwrite=args.overwrite, progress=not args.quiet)
    frames = sum(c.length for c in configs)
    print(f"wrote {len(configs)} video(s), {frames} frames, to {args.out}")
    return 0
