"""``tamvt eval``: score a results folder with a benchmark protocol.

Example::

    tamvt eval --protocol davis --gt DAVIS --pred results/ --json scores.json --csv per_object.csv
    tamvt eval ... --html report.html     # one self-contained page with the tables and plots (viz extra)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tamvt.evaluation.protocols import PROTOCOLS

# The dataset layout each protocol reads by default (--format overrides it).
DEFAULT_FORMAT = {"davis": "davis", "vost": "vost", "visor": "visor", "youtube": "youtube", "generic": "davis"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--protocol",
        required=True,
        choices=PROTOCOLS,
        help="davis: first+last frames excluded; vost: annotated frames, first+last excluded, "
        "J_tr; visor: first excluded; youtube: each object after its first appearance; "
        "generic: every annotated frame but the first",
    )
    parser.add_argument("--gt", required=True, metavar="ROOT", help="dataset root holding the ground truth")
    parser.add_argument("--pred", required=True, metavar="DIR", help="results folder: DIR/<sequence>/<frame>.png")
    parser.add_argument("--split", default="val", help="dataset split (default: val)")
    parser.add_argument(
        "--format",
        choices=sorted(set(DEFAULT_FORMAT.values())),
        default=None,
        help="dataset layout of --gt (default: the protocol's own; generic reads a DAVIS layout)",
    )
    parser.add_argument("--sequences", default=None, metavar="A,B", help="evaluate only these sequences")
    parser.add_argument(
        "--workers", type=int, default=None, help="parallel processes (default: CPU count; 1 = in this process)"
    )
    parser.add_argument("--json", default=None, metavar="FILE", help="write global, per-object and subset scores")
    parser.add_argument("--csv", default=None, metavar="FILE", help="write one row per object")
    parser.add_argument(
        "--html",
        default=None,
        metavar="FILE",
        help="write one self-contained HTML page with the tables, J&F per sequence and J over "
        "time (needs matplotlib: pip install 'tamvt[viz]')",
    )


def run(args: argparse.Namespace) -> int:
    from tamvt.commands.output import check_output_file
    from tamvt.data.registry import read_dataset
    from tamvt.errors import TamvtError
    from tamvt.evaluation.evaluate import evaluate
    from tamvt.evaluation.report import (
        format_table,
        load_attributes,
        write_csv,
        write_json,
    )

    if args.workers is not None and args.workers < 1:
        raise TamvtError(f"--workers must be >= 1, got {args.workers}")
    names = [n.strip() for n in args.sequences.split(",") if n.strip()] if args.sequences else None
    if args.sequences is not None and not names:
        raise TamvtError("--sequences lists no sequence")
    for option in ("json", "csv", "html"):  # before the evaluation, not after it
        if getattr(args, option):
            check_output_file(Path(getattr(args, option)))
    if args.html:
        from tamvt.viz.figure import pyplot

        pyplot()  # without matplotlib, fail before the evaluation
    fmt = args.format or DEFAULT_FORMAT[args.protocol]
    sequences = read_dataset(fmt, args.gt, args.split, sequences=names)
    attributes = load_attributes(args.gt, warn=lambda line: print(f"tamvt eval: warning: {line}", file=sys.stderr))
    result = evaluate(sequences, args.pred, args.protocol, workers=args.workers)
    for line in result.warnings:
        print(f"tamvt eval: warning: {line}", file=sys.stderr)
    print(format_table(result, attributes))
    if args.json:
        write_json(args.json, result, attributes)
    if args.csv:
        write_csv(args.csv, result)
    if args.html:
        from tamvt.viz.html_report import eval_html, write_page

        page = eval_html(
            result,
            attributes,
            details=[f"ground truth: {args.gt} ({fmt}, split {args.split})", f"predictions: {args.pred}"],
        )
        write_page(args.html, page)
    return 0
