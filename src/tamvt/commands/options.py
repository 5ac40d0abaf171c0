"""Options and output helpers shared by the commands: the model options of ``segment`` / ``predict``
(``--checkpoint --preset --short-side --device`` and ``KEY=VALUE`` inference overrides), id lists,
and the hidden-temporary-folder pattern that keeps an interrupted run from leaving a complete-looking
output folder."""

from __future__ import annotations

import argparse
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


def build_predictor(args: argparse.Namespace, overrides: list[str], device):
    """The :class:`~tamvt.inference.predictor.Predictor` for the parsed model options (``--checkpoint``
    defaults to the shipped model; ``--short-side 0`` keeps the frame size)."""
    from tamvt.checkpoint import shipped_model_path
    from tamvt.inference.predictor import Predictor

    if args.short_side is not None and args.short_side < 0:
        raise TamvtError(f"--short-side must be >= 0 (0 = keep the size), got {args.short_side}")
    fields = {} if args.short_side is None else {"short_side": args.short_side or None}
    return Predictor.from_checkpoint(args.checkpoint or shipped_model_path(), preset=args.preset, device=device,
                                     config_overrides=overrides, **fields)


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


