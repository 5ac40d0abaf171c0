"""``tamvt export RUN_DIR OUT [inference.KEY=VALUE ...]``: a training run's EMA (or raw) weights as a
tamvt checkpoint carrying the run's inference settings (or those given), with ``--summary`` its
configs and training summary beside it (:mod:`tamvt.train.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="a training run folder (or its last.pt)")
    parser.add_argument("out", metavar="OUT", help="output checkpoint, e.g. model.safetensors")
    parser.add_argument(
        "inference",
        nargs="*",
        metavar="inference.KEY=VALUE",
        help="default inference settings the checkpoint carries, changed from the run's "
        "(e.g. inference.short_side=192 inference.memory=spread)",
    )
    parser.add_argument("--raw", action="store_true", help="export the raw weights instead of the EMA")
    parser.add_argument(
        "--summary",
        action="store_true",
        help="also write OUT's .json: configs and training summary (steps, time, validation)",
    )


def run(args: argparse.Namespace) -> int:
    from tamvt.commands.output import check_output_file
    from tamvt.train.export import export_run

    check_output_file(Path(args.out))  # before the run is read
    for path in export_run(args.run, args.out, raw=args.raw, summary=args.summary, inference=args.inference):
        print(f"wrote {path}")
    return 0
