"""``tamvt segment``: segment one video (a file or a folder of frames) from a mask.

    tamvt segment clip.mp4 --mask first.png --checkpoint tamvt-small.safetensors --out masks/ \\
        --overlay overlay.mp4 [--per-object] [--frame K] [--short-side 480|624|0] [inference.merge=first-wins]

Writes ``OUT/<frame>.png`` palette masks (the input mask's palette, DAVIS colours for a gray mask)
for the mask's frame and every later frame, ``OUT/<id>/<frame>.png`` binary 0/255 masks with
``--per-object``, and an overlay video with ``--overlay``. Everything is written under a hidden
temporary folder that is renamed to OUT at the end, so an interrupted run leaves no OUT that
looks complete. The model options here are shared with ``tamvt predict``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
from pathlib import Path
from typing import Sequence

from tamvt.errors import InputError, TamvtError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm")


# ---- model options shared with `tamvt predict` -----------------------------------------------------

def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint --preset --short-side --device`` and trailing ``KEY=VALUE`` inference overrides."""
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="tamvt checkpoint (.safetensors); default: the model shipped in the package "
                             "(tamvt-mini, trained on synthetic videos only)")
    parser.add_argument("--preset", default=None,
                        help="fail unless the checkpoint holds this preset's architecture (e.g. tamvt-r50)")
    parser.add_argument("--short-side", type=int, default=None, metavar="PX",
                        help="resize frames so the short side is PX (480 or 624; 0 = keep the size); "
                             "default: the checkpoint's setting")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="default: cuda when available")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="inference settings, e.g. inference.bank_size=12 inference.merge=first-wins")
    # overrides may follow the options: argparse's plain parse_args cannot mix them (bpo-14191)
    parser.parse_args = parser.parse_intermixed_args  # type: ignore[method-assign]


def inference_overrides(items: Sequence[str]) -> list[str]:
    """``KEY=VALUE`` items as ``inference.KEY=VALUE``; checked against the schema now (before any work)."""
    from tamvt.config import TamvtConfig, apply_overrides

    out = []
    for item in items:
        key = item.partition("=")[0].strip()
        if key.startswith("model."):
            raise TamvtError(f"{item!r}: the architecture comes from the checkpoint; only inference.* "
                             "settings can be overridden")
        out.append(item if key.startswith("inference.") else f"inference.{item.strip()}")
    apply_overrides(TamvtConfig(), out)
    return out


def resolve_device(name: str, local_rank: int = 0) -> str:
    """``auto`` -> ``cuda[:local_rank]`` when available, else ``cpu``."""
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise TamvtError("--device cuda: no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return f"cuda:{local_rank}" if name == "cuda" else "cpu"


def build_predictor(args: argparse.Namespace, overrides: list[str], device: str):
    """The :class:`~tamvt.predictor.Predictor` for the parsed model options."""
    import dataclasses

    from tamvt.checkpoint import load_checkpoint
    from tamvt.config import apply_overrides
    from tamvt.predictor import Predictor

    if args.short_side is not None and args.short_side < 0:
        raise TamvtError(f"--short-side must be >= 0 (0 = keep the size), got {args.short_side}")
    from tamvt.demo import shipped_model_path

    model, cfg = load_checkpoint(args.checkpoint or shipped_model_path(), args.preset, device=device)
    cfg = apply_overrides(cfg, overrides)
    inference = cfg.inference
    if args.short_side is not None:
        inference = dataclasses.replace(inference, short_side=args.short_side or None)
    return Predictor(model, inference, clip_length=cfg.model.clip_length)


def parse_ids(text: str | None, option: str) -> list[int] | None:
    if text is None:
        return None
    try:
        ids = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise TamvtError(f"{option} must be comma-separated integer ids, got {text!r}") from None
    if not ids:
        raise TamvtError(f"{option} lists no id")
    return ids


def prepare_output(out: Path, force: bool) -> Path:
    """A fresh hidden temporary folder next to ``out``; refuses a non-empty ``out`` without ``force``."""
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(out, "output folder exists and is not empty (use --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def commit_output(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder onto ``out`` (replacing an old one)."""
    if out.is_dir():
        shutil.rmtree(out)
    os.replace(tmp, out)


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
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tamvt.data.frames import VideoWriter
    from tamvt.data.generic import read_generic
    from tamvt.data.palette import read_index_png, write_index_png
    from tamvt.overlay import overlay
    from tamvt.predictor import index_ids
    from tamvt.session import SessionError

    overrides = inference_overrides(args.overrides)
    device = resolve_device(args.device)
    wanted = parse_ids(args.objects, "--objects")
    if args.overlay is not None and args.overlay.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(args.overlay, f"overlay must be a video file ({', '.join(VIDEO_SUFFIXES)})")
    seq = read_generic(args.input, args.mask, args.frame)  # checks the input, mask size and emptiness
    mask, palette = read_index_png(args.mask)
    try:
        ids = index_ids(mask, wanted, None)
    except SessionError as err:
        raise InputError(args.mask, str(err)) from None
    predictor = build_predictor(args, overrides, device)
    session = predictor.start(seq)
    for obj in ids:
        predictor.add_mask(session, args.frame, obj, mask == obj)

    tmp = prepare_output(args.out, args.force)
    written = 0
    try:
        writer = VideoWriter(args.overlay, fps=args.fps or seq.extra.get("fps") or 24.0) if args.overlay else None
        with writer if writer is not None else contextlib.nullcontext():
            bar = tqdm(predictor.propagate(session), total=len(seq) - args.frame, unit="frame",
                       disable=args.quiet, desc=seq.name)
            for _, result in bar:
                write_index_png(tmp / f"{result.name}.png", result.mask, palette)
                if args.per_object:
                    for obj in ids:  # each object's own p > 0.5 (may overlap others, unlike the merged mask)
                        write_binary_png(tmp / str(obj) / f"{result.name}.png", result.binary(obj))
                if writer is not None:
                    writer.write(overlay(result.image, result.mask, palette))
                written += 1
        commit_output(tmp, args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    extra = f" and {args.overlay}" if args.overlay else ""
    print(f"tamvt segment: {written} masks of {len(ids)} object(s) -> {args.out}{extra}")
    return 0


def write_binary_png(path: Path, mask) -> None:
    """``mask (H, W)`` bool as an 8-bit gray PNG with values 0 / 255."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path)  # 2-D uint8 -> mode L
