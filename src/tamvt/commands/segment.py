"""``tamvt segment``: segment one video (a file or a folder of frames) from a mask.

    tamvt segment clip.mp4 --mask first.png --checkpoint tamvt-small.safetensors --out masks/ \\
        --overlay overlay.mp4 [--per-object] [--frame K] [--short-side 480|624|0] [inference.merge=first-wins]

Writes ``OUT/<frame>.png`` palette masks (the input mask's palette, DAVIS colours for a gray mask)
for the mask's frame and every later frame, ``OUT/<id>/<frame>.png`` binary 0/255 masks with
``--per-object``, ``OUT/probs/<id>/<frame>.png`` probabilities (0..255) with ``--save-probs``, and an
overlay video with ``--overlay``. Everything is written under a hidden
temporary folder that is renamed to OUT at the end, so an interrupted run leaves no OUT that
looks complete (the next run on OUT removes what a killed one left). Every input and output is
checked before the model loads. A video file that ends before the frames its header announces (a
cut-off recording) is refused, naming the first missing frame; ``--allow-truncated`` segments the
frames that are there. The model options here are shared with ``tamvt predict``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tamvt.commands.options import (
    add_model_arguments,
    build_predictor,
    inference_overrides,
    parse_ids,
)
from tamvt.commands.output import check_output_file, check_output_folder, commit_output, prepare_output, write_results
from tamvt.devices import resolve_device
from tamvt.errors import InputError

if TYPE_CHECKING:
    from tamvt.data.sequence import VideoSequence

# ---- the command ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="a video file or a folder of frames (jpg/png)")
    parser.add_argument("--mask", type=Path, required=True, help="index PNG of the objects in frame --frame")
    parser.add_argument("--frame", type=int, default=0, help="index of the frame the mask belongs to (default 0)")
    parser.add_argument("--objects", default=None, metavar="IDS", help="track only these ids of the mask, e.g. 1,3")
    parser.add_argument("--out", type=Path, required=True, help="output folder for <frame>.png masks")
    parser.add_argument("--overlay", type=Path, default=None, metavar="FILE.mp4", help="also write an overlay video")
    parser.add_argument("--fps", type=float, default=None, help="overlay frame rate (default: the video's, or 24)")
    parser.add_argument("--per-object", action="store_true", help="also write OUT/<id>/<frame>.png binary masks")
    parser.add_argument(
        "--save-probs", action="store_true", help="also write OUT/probs/<id>/<frame>.png probabilities (0..255)"
    )
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    parser.add_argument(
        "--allow-truncated",
        action="store_true",
        help="segment the frames a truncated video file holds instead of failing",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tamvt.data.generic import read_generic
    from tamvt.data.palette import read_index_png
    from tamvt.data.video import VIDEO_SUFFIXES
    from tamvt.errors import SessionError
    from tamvt.inference.predictor import index_ids

    overrides = inference_overrides(args.overrides)
    device = resolve_device(args.device)
    wanted = parse_ids(args.objects, "--objects")
    if args.overlay is not None and args.overlay.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(args.overlay, f"overlay must be a video file ({', '.join(VIDEO_SUFFIXES)})")
    if args.fps is not None and not args.fps > 0:
        raise InputError(args.overlay or args.input, f"--fps must be > 0, got {args.fps}")
    check_output_folder(args.out, args.force)  # every check before the model loads and anything is written
    if args.overlay is not None:
        check_output_file(args.overlay)
    seq = read_generic(args.input, args.mask, args.frame)  # checks the input, mask size and emptiness
    if seq.video_path is not None:
        seq = complete_frames(seq, args.frame, args.allow_truncated)
    mask, palette = read_index_png(args.mask)
    try:
        ids = index_ids(mask, wanted, None)
    except SessionError as err:
        raise InputError(args.mask, str(err)) from None
    predictor = build_predictor(args, overrides, device)
    session = predictor.start(seq, keep_results=False)
    for obj in ids:
        predictor.add_mask(session, args.frame, obj, mask == obj)

    tmp = prepare_output(args.out, args.force, prog="tamvt segment")
    try:
        bar = tqdm(
            predictor.propagate(session),
            total=len(seq) - args.frame,
            unit="frame",
            disable=args.quiet,
            desc=seq.name,
        )
        written = write_results(
            bar,
            tmp,
            palette,
            ids,
            per_object=args.per_object,
            save_probs=args.save_probs,
            overlay_to=args.overlay,
            fps=args.fps or seq.extra.get("fps") or 24.0,
        )
        commit_output(tmp, args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    extra = f" and {args.overlay}" if args.overlay else ""
    print(f"tamvt segment: {written} masks of {len(ids)} object(s) -> {args.out}{extra}")
    return 0


def complete_frames(seq: VideoSequence, frame: int, allow_truncated: bool) -> VideoSequence:
    """``seq`` (read from a video file) if the file holds every frame its header announces; for a
    truncated file, an error naming the first missing frame, or with ``allow_truncated`` ``seq`` cut
    to the frames that are there."""
    import dataclasses

    from tamvt.data.video import inspect_video

    path = seq.video_path
    if path is None:  # a frame folder: nothing can be cut off
        return seq
    info = inspect_video(path)
    if not info.truncated:
        return seq
    n = info.frames
    if not allow_truncated:
        raise InputError(
            path, f"{info.describe_truncation()}; pass --allow-truncated to segment the {n} frame(s) that are there"
        )
    if frame >= n:
        raise InputError(path, f"{info.describe_truncation()}; the mask's frame {frame} is not among them")
    print(
        f"tamvt segment: warning: {seq.video_path}: {info.describe_truncation()}; segmenting those {n} frame(s)",
        file=sys.stderr,
    )
    return dataclasses.replace(seq, frame_names=seq.frame_names[:n])
