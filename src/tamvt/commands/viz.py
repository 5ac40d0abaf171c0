"""``tamvt viz``: pictures of a model, a training run and an evaluation, written as PNGs (needs the
``viz`` extra: ``pip install 'tamvt[viz]'``).

    tamvt viz rte CKPT                                  # learned RTE e_n (paper Fig. 4a)
    tamvt viz attention CKPT VIDEO --mask M --frame K   # matching attention of frame K (Fig. 4b)
    tamvt viz loss-weights GT_FOLDER                    # transformation-aware loss weights (Fig. A5a)
    tamvt viz training RUN_DIR                          # losses, learning rate, validation scores
    tamvt viz scores scores.json                        # J&F per sequence, J over time per object

Every sub-command writes into ``--out`` (default ``viz/``) and prints the files written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tamvt.errors import TamvtError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="plot", required=True, metavar="PLOT")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--out", type=Path, default=Path("viz"), help="output folder (default viz/)")
        p.add_argument("--dpi", type=int, default=100, help="PNG resolution (default 100)")
        return p

    p = add("rte", "the learned relative time encoding e_n per memory size and position (paper Fig. 4a)")
    p.add_argument("checkpoint", type=Path, help="tamvt checkpoint (.safetensors)")

    p = add("attention", "matching attention of frame K over the memory, per scale and memory entry (Fig. 4b)")
    p.add_argument("checkpoint", type=Path, help="tamvt checkpoint (.safetensors)")
    p.add_argument("video", type=Path, help="a video file or a folder of frames")
    p.add_argument("--mask", type=Path, required=True, help="index PNG of the object in frame --mask-frame")
    p.add_argument("--mask-frame", type=int, default=0, help="frame the mask belongs to (default 0)")
    p.add_argument("--frame", type=int, required=True, help="the query frame K (after the mask's frame)")
    p.add_argument("--object", type=int, default=None, help="object id in the mask (default: the smallest)")
    p.add_argument(
        "--short-side",
        type=int,
        default=None,
        metavar="PX",
        help="resize frames so the short side is PX (0 = keep); default: the checkpoint's",
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")

    p = add("loss-weights", "transformation-aware loss weights of a ground-truth mask sequence (Fig. A5a)")
    p.add_argument("masks", type=Path, metavar="GT_FOLDER", help="folder of index-PNG masks of one video")
    p.add_argument("--objects", default=None, metavar="IDS", help="only these object ids, e.g. 1,3 (default: all)")
    p.add_argument("--tau", type=float, default=1.0, help="temperature τ (default 1.0)")
    p.add_argument(
        "--window",
        type=int,
        default=None,
        help="weights per window of N masks, as the loss sees the query frames of a training window "
        "(default: the whole sequence)",
    )
    p.add_argument("--kinds", default="area,centroid,components", help="measures to draw (default: all three)")

    p = add("training", "loss terms, learning rate and validation J&F / J_tr of a training run")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="training run folder (holds metrics.jsonl)")

    p = add("scores", "J&F per sequence and J over time per object of 'tamvt eval --json'")
    p.add_argument("report", type=Path, metavar="SCORES_JSON", help="the JSON written by tamvt eval --json")


def run(args: argparse.Namespace) -> int:
    from tamvt.viz.figure import pyplot

    pyplot()  # fail first, in one line, without matplotlib
    if args.dpi < 10:
        raise TamvtError(f"--dpi must be >= 10, got {args.dpi}")
    written = PLOTS[args.plot](args)
    for path in written:
        print(path)
    return 0


def _save(fig: Any, args: argparse.Namespace, name: str) -> Path:
    from tamvt.viz.figure import save_png

    return save_png(fig, args.out / name, args.dpi)


def _rte(args: argparse.Namespace) -> list[Path]:
    from tamvt.checkpoint import load_checkpoint
    from tamvt.viz.rte import plot_rte, rte_table

    model, _ = load_checkpoint(args.checkpoint)
    return [_save(plot_rte(rte_table(model)), args, "rte.png")]


def _attention(args: argparse.Namespace) -> list[Path]:
    import numpy as np

    from tamvt.data.generic import read_generic
    from tamvt.data.palette import read_index_png
    from tamvt.devices import resolve_device
    from tamvt.errors import InputError
    from tamvt.inference.predictor import Predictor
    from tamvt.viz.attention import capture_attention, plot_attention

    seq = read_generic(args.video, args.mask, args.mask_frame)  # checks the video, the mask size, emptiness
    ids, _ = read_index_png(args.mask)
    present = [int(i) for i in np.unique(ids) if i != 0]
    obj = present[0] if args.object is None else args.object
    if obj not in present:
        raise InputError(args.mask, f"object {obj} is not in the mask (ids: {', '.join(map(str, present))})")
    if args.short_side is not None and args.short_side < 0:
        raise TamvtError(f"--short-side must be >= 0 (0 = keep the size), got {args.short_side}")
    fields: dict[str, Any] = {} if args.short_side is None else {"short_side": args.short_side or None}
    predictor = Predictor.from_checkpoint(args.checkpoint, device=resolve_device(args.device), **fields)
    cap = capture_attention(predictor, seq, ids == obj, args.mask_frame, args.frame, obj)
    return [_save(plot_attention(cap), args, f"attention-frame{args.frame}-obj{obj}.png")]


def _loss_weights(args: argparse.Namespace) -> list[Path]:
    from tamvt.commands.options import parse_ids
    from tamvt.errors import InputError
    from tamvt.viz.loss_weights import KINDS, loss_weight_curves, object_ids, plot_loss_weights, read_mask_folder

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise TamvtError(f"--kinds: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(KINDS)}")
    frames, masks = read_mask_folder(args.masks)
    present = object_ids(masks)
    wanted = parse_ids(args.objects, "--objects") or present
    missing = [o for o in wanted if o not in present]
    if missing or not wanted:
        raise InputError(
            args.masks,
            f"object(s) {', '.join(map(str, missing)) or '(none)'} not in the masks "
            f"(ids: {', '.join(map(str, present)) or 'none'})",
        )
    out = []
    for obj in wanted:
        curves = loss_weight_curves(frames, masks, obj, args.tau, kinds, args.window)
        out.append(_save(plot_loss_weights(curves), args, f"loss-weights-obj{obj}.png"))
    return out


def _training(args: argparse.Namespace) -> list[Path]:
    from tamvt.viz.training import plot_training, training_curves

    curves = training_curves(args.run_dir)
    return [_save(plot_training(curves, args.run_dir.name), args, "training.png")]


def _scores(args: argparse.Namespace) -> list[Path]:
    from tamvt.viz.figure import safe_name
    from tamvt.viz.scores import object_curves, plot_j_over_time, plot_sequence_bars, read_report

    report = read_report(args.report)
    out = [_save(plot_sequence_bars(report), args, "scores-jf.png")]
    curves = object_curves(report)
    if not curves:
        print(
            f"tamvt viz: warning: {args.report} has no per-frame scores (written by an older tamvt eval): "
            "J over time is left out",
            file=sys.stderr,
        )
    for seq, objs in curves.items():
        out.append(_save(plot_j_over_time(seq, objs), args, f"scores-j-{safe_name(seq)}.png"))
    return out


PLOTS: dict[str, Callable[[argparse.Namespace], list[Path]]] = {
    "rte": _rte,
    "attention": _attention,
    "loss-weights": _loss_weights,
    "training": _training,
    "scores": _scores,
}
