"""``tamvt demo``: the package out of the box, on a video it makes itself.

    tamvt demo [--out tamvt-demo]

1. renders a synthetic transformation video (an object is cut into drifting pieces, clutter, a moving
   camera) in DAVIS layout under ``OUT/data``;
2. segments it with the model shipped inside the package, from the first frame's mask;
3. writes palette PNGs (``OUT/pred/<seq>/``), an overlay video (``OUT/overlay.mp4``) and the
   J / F / J_tr report (console and ``OUT/report.json``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("tamvt-demo"), help="output folder (default tamvt-demo)")
    parser.add_argument(
        "--checkpoint",
        default=None,
        metavar="PATH|NAME",
        help="a tamvt checkpoint or a model name (`tamvt weights list`) instead of the shipped model",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic video (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    from tamvt.commands.options import add_precision_argument

    add_precision_argument(parser)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tamvt.commands.output import check_output_folder, commit_output, prepare_output
    from tamvt.data.palette import read_index_png, write_index_png
    from tamvt.data.registry import read_dataset
    from tamvt.data.synthetic import preset_suite
    from tamvt.data.synthetic.dataset import write_dataset
    from tamvt.data.video import VideoWriter
    from tamvt.evaluation.evaluate import evaluate
    from tamvt.evaluation.report import format_table, load_attributes, write_json
    from tamvt.hub.registry import resolve_checkpoint
    from tamvt.inference.overlay import overlay
    from tamvt.inference.predictor import Predictor

    out: Path = args.out
    check_output_folder(out)  # every input is checked (and the model loaded) before anything is written
    checkpoint = resolve_checkpoint(args.checkpoint)
    predictor = Predictor.from_checkpoint(
        checkpoint, **({} if args.precision is None else {"precision": args.precision})
    )
    data = out / "data"
    write_dataset(data, preset_suite("demo", seed=args.seed), overwrite=True, progress=not args.quiet)
    sequences = read_dataset("davis", data, "val")

    pred_root = out / "pred"
    for seq in sequences:
        first = seq.annotated[0]
        gt, palette = read_index_png(seq.mask_paths[first])
        session = predictor.start(seq, keep_results=False)
        predictor.add_index_mask(session, first, gt, void_id=seq.void_id)
        tmp = prepare_output(pred_root / seq.name, force=True, prog="tamvt demo")
        overlay_path = out / (f"overlay-{seq.name}.mp4" if len(sequences) > 1 else "overlay.mp4")
        with VideoWriter(overlay_path, fps=float(seq.extra.get("fps") or 10.0)) as writer:
            results = predictor.propagate(session, start=first)
            for idx, result in tqdm(
                results, total=len(seq) - first, unit="frame", desc=f"segment {seq.name}", disable=args.quiet
            ):
                write_index_png(tmp / f"{seq.frame_names[idx]}.png", result.mask, palette)
                writer.write(overlay(result.image, result.mask, palette))
        commit_output(tmp, pred_root / seq.name)

    scores = evaluate(sequences, pred_root, "davis", workers=1)
    attributes = load_attributes(data)
    print(format_table(scores, attributes))
    write_json(out / "report.json", scores, attributes)
    print(
        f"tamvt demo: masks in {pred_root}, overlay in {out}, report in {out / 'report.json'} "
        f"(model: {checkpoint.name})"
    )
    return 0
