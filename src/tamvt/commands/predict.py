"""``tamvt predict``: run a checkpoint over a dataset split and write the results folder ``tamvt eval`` reads.

    tamvt predict --format vost --root VOST --split val --checkpoint tamvt_vost.safetensors --out results/
    torchrun --nproc_per_node 4 -m tamvt.cli predict ...        # sequences split across the processes

Writes ``OUT/<sequence>/<frame>.png`` (palette of the sequence's first annotation) for every frame;
frames before an object's first annotation simply do not contain it. Each sequence is written to
``OUT/.<sequence>.tmp-<pid>`` and renamed when complete (``--save-probs``: each object's probability too,
``OUT/<sequence>/probs/<id>/<frame>.png``), so a sequence folder exists only when complete:
a re-run skips those and redoes the rest, removing the temporary folders of killed runs. Under torchrun
(``WORLD_SIZE``/``RANK`` in the environment) rank r takes sequences r, r+W, r+2W, ...; no process group is
needed.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from tamvt.errors import TamvtError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tamvt.commands.options import add_model_arguments
    from tamvt.data.registry import FORMATS

    parser.add_argument("--format", required=True, choices=FORMATS, help="dataset layout")
    parser.add_argument("--root", type=Path, required=True, help="dataset root")
    parser.add_argument("--split", default="val", help="split (default: val)")
    parser.add_argument("--out", type=Path, required=True, help="results folder: OUT/<sequence>/<frame>.png")
    parser.add_argument("--sequences", default=None, metavar="A,B", help="only these sequences")
    parser.add_argument("--frames-dir", default=None, help="VOST only: JPEGImages (default) or JPEGImages_10fps")
    parser.add_argument(
        "--save-probs",
        action="store_true",
        help="also write OUT/<sequence>/probs/<id>/<frame>.png probabilities (0..255)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_model_arguments(parser)


def distributed_rank() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment; ``(0, 1, 0)`` without it."""

    def env_int(name: str, default: int) -> int:
        text = os.environ.get(name)
        if text is None or text == "":
            return default
        try:
            return int(text)
        except ValueError:
            raise TamvtError(f"environment variable {name}={text!r} is not an integer") from None

    world, rank, local = env_int("WORLD_SIZE", 1), env_int("RANK", 0), env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise TamvtError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return rank, world, local


def add_first_masks(predictor, session, seq) -> list[str]:
    """Give ``session`` every object of ``seq`` in its first annotated frame; returns the warnings for the
    objects skipped, those whose first mask is empty."""
    warnings = []
    for ref in sorted(set(seq.objects.values())):
        gt = seq.read_mask(ref)
        for obj in sorted(o for o, r in seq.objects.items() if r == ref):
            if not (gt == obj).any():
                warnings.append(
                    f"{seq.name}: object {obj} is empty in its first annotation ({seq.frame_names[ref]}); not tracked"
                )
                continue
            predictor.add_mask(session, ref, obj, gt == obj)
    return warnings


def predict_sequence(
    predictor, seq, folder: Path, progress: bool = False, save_probs: bool = False
) -> tuple[int, list[str]]:
    """Segment ``seq`` from its annotations and write ``folder/<frame>.png`` for every frame (with
    ``save_probs`` also ``folder/probs/<id>/<frame>.png`` where an object is tracked).

    Returns ``(frames written, warnings)``; an object whose first mask is empty is skipped with a warning.
    """
    import numpy as np
    from tqdm import tqdm

    from tamvt.commands.output import write_probs
    from tamvt.data.palette import read_index_png, write_index_png

    session = predictor.start(seq, keep_results=False)
    _, palette = read_index_png(seq.mask_paths[min(seq.objects.values())])
    warnings = add_first_masks(predictor, session, seq)
    folder.mkdir(parents=True)
    written = 0
    frames = predictor.propagate(session, start=0) if session.annotations else ((i, None) for i in range(len(seq)))
    for idx, result in tqdm(frames, total=len(seq), unit="frame", leave=False, disable=not progress, desc=seq.name):
        mask = np.zeros(seq.size, np.uint8) if result is None else result.mask  # None: nothing to track
        write_index_png(folder / f"{seq.frame_names[idx]}.png", mask, palette)
        if save_probs and result is not None:
            write_probs(folder, seq.frame_names[idx], result.object_ids, result.probs)
        written += 1
    return written, warnings


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tamvt.commands.options import build_predictor, inference_overrides
    from tamvt.commands.output import check_output_folder, remove_stale_temps
    from tamvt.data.registry import read_dataset
    from tamvt.devices import resolve_device

    overrides = inference_overrides(args.overrides)
    rank, world, local_rank = distributed_rank()
    device = resolve_device(args.device, local_rank)
    kw = {}
    if args.sequences is not None:
        kw["sequences"] = [n.strip() for n in args.sequences.split(",") if n.strip()]
        if not kw["sequences"]:
            raise TamvtError("--sequences lists no sequence")
    if args.frames_dir is not None:
        if args.format != "vost":
            raise TamvtError("--frames-dir is a VOST option")
        kw["frames_dir"] = args.frames_dir
    check_output_folder(args.out)  # before the model loads
    sequences = read_dataset(args.format, args.root, args.split, **kw)
    mine = sequences[rank::world]
    predictor = build_predictor(args, overrides, device)
    args.out.mkdir(parents=True, exist_ok=True)
    show = not args.quiet and rank == 0
    tag = f"rank {rank}/{world}: " if world > 1 else ""
    wrote = skipped = 0
    for seq in tqdm(mine, unit="seq", disable=not show, desc="sequences"):
        final = args.out / seq.name
        remove_stale_temps(args.out, seq.name, prog=f"tamvt predict: {tag}".rstrip(": "))
        shutil.rmtree(args.out / f".tmp-{seq.name}", ignore_errors=True)  # the name older versions used (no pid)
        if final.is_dir():  # only complete sequences are ever renamed into place
            skipped += 1
            tqdm.write(f"tamvt predict: {tag}{seq.name}: complete, skipped")
            continue
        tmp = args.out / f".{seq.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            n, warnings = predict_sequence(predictor, seq, tmp, progress=show, save_probs=args.save_probs)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for line in warnings:
            tqdm.write(f"tamvt predict: warning: {line}")
        wrote += 1
        tqdm.write(f"tamvt predict: {tag}{seq.name}: wrote {n} frames")
    print(
        f"tamvt predict: {tag}{wrote} sequence(s) written, {skipped} already complete "
        f"({len(mine)} of {len(sequences)} on this process) -> {args.out}"
    )
    return 0
