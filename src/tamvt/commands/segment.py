"""``tamvt segment``: segment one video (a file or a folder of frames) from a mask, or from boxes / clicks.

    tamvt segment clip.mp4 --mask first.png --checkpoint tamvt-small.safetensors --out masks/ \\
        --overlay overlay.mp4 [--per-object] [--frame K] [--short-side 480|624|0] [inference.merge=first-wins]
    tamvt segment clip.mp4 --box 40,30,200,180 --box 300,50,420,200@2 --click 100,90@3 --out masks/ \\
        [--background-click X,Y[@ID]] [--prompt-model grabcut|sam2.1-hiera-tiny]

Instead of ``--mask``, boxes and clicks on frame ``--frame`` (pixels of the video as stored) are turned
into masks by a prompt model (:mod:`tamvt.commands.prompting`); the merged index mask is written as
``OUT/prompt.png`` next to the results, so what was tracked can be seen, and tracking runs as from a
mask.

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
from tamvt.commands.prompting import add_prompt_arguments, prompts_from_args
from tamvt.devices import resolve_device
from tamvt.errors import InputError, TamvtError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tamvt.data.sequence import VideoSequence

# ---- the command ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="a video file or a folder of frames (jpg/png)")
    parser.add_argument(
        "--mask", type=Path, default=None, help="index PNG of the objects in frame --frame (or boxes / clicks)"
    )
    parser.add_argument(
        "--frame", type=int, default=0, help="index of the frame the mask or prompts belong to (default 0)"
    )
    add_prompt_arguments(parser.add_argument_group("start from boxes or clicks instead of --mask"))
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
    from tamvt.data.palette import read_index_png, write_index_png
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
    prompts = prompts_from_args(args)
    if (args.mask is None) == (not prompts):
        raise TamvtError("give exactly one of --mask or prompts (--box / --click)")
    check_output_folder(args.out, args.force)  # every check before the model loads and anything is written
    if args.overlay is not None:
        check_output_file(args.overlay)
    prompted = None
    if prompts:
        prompted, args.mask = prompt_start(args, prompts, str(device))
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
        if prompted is not None:  # what the prompts became, beside the results
            write_index_png(tmp / PROMPT_PNG, prompted.mask, palette)
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
        if prompted is not None:
            prompted.cleanup()
    extra = f" and {args.overlay}" if args.overlay else ""
    print(f"tamvt segment: {written} masks of {len(ids)} object(s) -> {args.out}{extra}")
    return 0


PROMPT_PNG = "prompt.png"


def refuse_prompt_name(source: Path, frame_names: Sequence[str]) -> None:
    """A one-line error when a frame of ``source`` has the name the prompts' mask is written under
    (``PROMPT_PNG`` beside the frames' PNGs would replace it)."""
    if PROMPT_PNG.removesuffix(".png") in frame_names:
        raise InputError(source, f"a frame is named {PROMPT_PNG}, where the prompts' mask goes; rename it")


class PromptedMask:
    """The index mask made from prompts, held in a temporary PNG that :func:`read_generic` reads like
    a ``--mask`` (so every check on a mask applies to it too)."""

    def __init__(self, mask) -> None:
        import tempfile

        from tamvt.data.palette import write_index_png

        self.mask = mask
        self._dir = tempfile.TemporaryDirectory(prefix="tamvt-prompt-")
        self.path = Path(self._dir.name) / PROMPT_PNG
        write_index_png(self.path, mask)

    def cleanup(self) -> None:
        self._dir.cleanup()


def prompt_start(args: argparse.Namespace, prompts, device: str) -> tuple[PromptedMask, Path]:
    """The index mask the prompts give on frame ``args.frame`` of ``args.input`` (frames at the size
    they are stored), and the temporary PNG holding it."""
    from tamvt.commands.prompting import prompt_mask
    from tamvt.data.video import open_frames
    from tamvt.prompts import get_prompt_model

    frames = open_frames(args.input)
    if not 0 <= args.frame < len(frames):
        raise InputError(args.input, f"--frame {args.frame} out of range: the input has {len(frames)} frames")
    refuse_prompt_name(args.input, frames.names)
    first = next(iter(frames.iter_frames(start=args.frame)), None)
    if first is None:  # a video file cut off before frame K
        raise InputError(args.input, f"frame {args.frame} cannot be decoded (the file ends before it)")
    frame = first[1]
    mask = prompt_mask(frame, prompts, get_prompt_model(args.prompt_model, device))
    prompted = PromptedMask(mask)
    return prompted, prompted.path


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
