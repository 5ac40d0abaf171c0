"""Accuracy on a synthetic validation set: the shipped model, a copy-the-first-mask baseline, and any
other checkpoints (the paper's ablations trained with the same budget).

    python benchmarks/accuracy.py [--suite first|second|lost|exits] [--work DIR] [--seed N] [--num N]
        [--model NAME=CKPT ...] [--no-shipped] [--json FILE] [--reuse] [--short-side N] [--bank-size N]
        [--set [NAME:]KEY=VALUE ...] [--grid-oracle HxW]

The validation set is the generator's ``val`` suite (>= 30 videos: cuts, peeling / shrinking,
morphing, occlusion, small objects, look-alike instances, long videos, several objects) rendered
with ``--seed``. Training draws from the ``train`` suite through ``stream(run seed)``; the default
seed here is not a training run seed used by this project, and the suite's per-video seeds are
derived from it, so the videos are never seen in training. Scores use the DAVIS protocol (first and
last frame excluded) with J_tr = J over the last quarter of the evaluated frames (VOST's
definition); the subset rows come from the generator's attributes.json (event tags, length, object
size) and are computed exactly as ``tamvt eval`` does. ``--set memory=spread`` (repeatable) changes an
``inference.*`` setting (the memory policy, ``memory_gate``, ...) for every model, ``--set NAME:KEY=VALUE``
for model ``NAME`` only, so one checkpoint can appear under several settings in one table:
``--model spread=CKPT --set spread:memory=spread``.

``--suite second`` scores the second suite instead (``benchmarks/second_suite.py``: 24 videos from an
independent generator, seed 20261204 by default, in ``runs/accuracy-second``): other shapes, textures,
camera and event timing, objects fully hidden for 5-20 frames or leaving the frame and coming back.
``--suite lost`` scores the first suite's videos rendered at another seed (20261206) with a
lost-and-found event in every video (a target hidden for 5-20 frames or leaving the frame and coming
back, and/or still look-alikes where it was: ``preset_suite("val", lost_share=1.0)``, in
``runs/accuracy-lost``): the training generator's own videos, so settings may be tuned on it before
the final check on the second suite. ``--suite exits`` (seed 20261207, ``runs/accuracy-exits``) is the
same recipes with an exit in every video and no look-alikes (``lost=("exit",)``): the object leaves the
frame for 2-20 frames and comes back across the same edge or an adjacent one, so what is tuned on it is
re-finding an object that returns elsewhere with nothing like it to take instead. All suites get the
same columns; ``RF`` is *re-found* (``tamvt.evaluation.refound``): of the reappearances after a full
absence from the ground truth (``reapp`` per row), the share with J >= 0.5 within 10 frames of the object
being visible again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

KEYS = ("J&F-Mean", "J-Mean", "F-Mean", "J_tr-Mean")
SUITES = ("first", "second", "lost", "exits")
DEFAULT_SEEDS = {"first": 20261125, "lost": 20261206, "exits": 20261207}  # the second's: second_suite
LOST_EVENTS = {"lost": "random", "exits": ("exit",)}  # the events of every video of the tuning suites


def _sibling(name: str):
    """A module of this folder by file (the script may be loaded without ``benchmarks/`` on sys.path)."""
    import importlib.util

    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def copy_first_mask(sequences, out: Path) -> None:
    """The trivial baseline: every frame's prediction is the first frame's ground truth."""
    from tamvt.data.palette import read_index_png, write_index_png

    for seq in sequences:
        first = seq.annotated[0]
        mask, palette = read_index_png(seq.mask_paths[first])
        folder = out / seq.name
        folder.mkdir(parents=True, exist_ok=True)
        for name in seq.frame_names:
            write_index_png(folder / f"{name}.png", mask, palette)


def grid_oracle(sequences, out: Path, grid: tuple[int, int]) -> None:
    """The resolution ceiling of a model whose logits live on a ``grid = (h, w)`` map (stride 4 of its
    input): each object's ground truth area-averaged onto the grid, bilinearly upsampled back and
    merged like the predictor (argmax against background 0.5)."""
    import cv2
    import numpy as np

    from tamvt.data.palette import read_index_png, write_index_png

    gh, gw = grid
    for seq in sequences:
        folder = out / seq.name
        folder.mkdir(parents=True, exist_ok=True)
        for i in seq.annotated:
            mask, palette = read_index_png(seq.mask_paths[i])
            h, w = mask.shape
            ids = sorted(int(v) for v in np.unique(mask) if v not in (0, 255))
            probs = [np.full((h, w), 0.5, np.float32)]
            for obj in ids:
                coarse = cv2.resize((mask == obj).astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA)
                probs.append(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR))
            merged = np.array([0, *ids], np.uint8)[np.argmax(np.stack(probs), axis=0)]
            write_index_png(folder / f"{seq.frame_names[i]}.png", merged, palette)


def predict(checkpoint: Path, sequences, out: Path, settings=(), **inference) -> float:
    """Segment every sequence with ``checkpoint`` (``inference``: settings that replace the
    checkpoint's, e.g. ``short_side=240``; ``settings``: ``["memory=spread", ...]`` as ``inference.*``
    overrides); returns seconds per frame."""
    from tqdm import tqdm

    from tamvt.commands.predict import predict_sequence
    from tamvt.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(
        checkpoint, config_overrides=[f"inference.{s}" for s in settings], **inference
    )
    frames, start = 0, time.perf_counter()
    for seq in tqdm(sequences, unit="seq", desc=checkpoint.stem, leave=False):
        if (out / seq.name).is_dir():
            shutil.rmtree(out / seq.name)
        n, _ = predict_sequence(predictor, seq, out / seq.name)
        frames += n
    return (time.perf_counter() - start) / max(frames, 1)


def _stamp(checkpoint: Path, inference: dict) -> str:
    st = checkpoint.stat()
    return json.dumps(
        {"checkpoint": str(checkpoint.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns, "inference": inference},
        sort_keys=True,
    )


def reusable(checkpoint: Path, sequences, out: Path, inference: dict) -> bool:
    """True when ``out`` holds a complete prediction made earlier by this very file (path, size and
    modification time) with the same inference settings."""
    stamp = out / ".made-by.json"
    if not stamp.is_file() or stamp.read_text() != _stamp(checkpoint, inference):
        return False
    return all(len(list((out / seq.name).glob("*.png"))) == len(seq) for seq in sequences)


def score(sequences, pred: Path, attributes, presence=None) -> dict:
    """The report JSON of ``pred`` plus ``"refound"``: per object its reappearances, and per row (``global``
    and each subset) ``{"events", "found", "rate"}``; ``presence``: :func:`tamvt.evaluation.refound.
    sequence_presence` of every sequence (read here when None)."""
    from tamvt.evaluation.evaluate import evaluate
    from tamvt.evaluation.refound import result_refound, sequence_presence
    from tamvt.evaluation.report import subsets, to_json

    result = evaluate(sequences, pred, "davis", workers=min(2, os.cpu_count() or 1))
    out = to_json(result, attributes)
    if presence is None:
        presence = {seq.name: sequence_presence(seq) for seq in sequences}
    events = result_refound(result, presence)

    def block(ids) -> dict:
        n = sum(len(events[i]) for i in ids)
        found = sum(e.found for i in ids for e in events[i])
        return {"events": n, "found": found, "rate": found / n if n else None}

    out["refound"] = {
        "global": block(range(len(events))),
        "subsets": {name: block(ids) for name, ids in subsets(result, attributes).items()},
        "per_object": [
            [{"frame": e.frame, "absent": e.absent, "found": e.found, "delay": e.delay} for e in ev] for ev in events
        ],
    }
    return out


def table(results: dict[str, dict]) -> str:
    """Rows: overall then each subset; columns: J&F / J / F / J_tr / re-found per model, in %; ``reapp``:
    the reappearances (full absence, then visible again) the re-found share is over."""
    names = list(results)
    first = next(iter(results.values()))
    subsets = list(first["subsets"])
    width = 28
    head = f"{'subset':<18}{'objs':>5}{'reapp':>6}  " + "  ".join(f"{n[:width]:>{width}}" for n in names)
    sub = f"{'':<18}{'':>5}{'':>6}  " + "  ".join(f"{'J&F   J     F     Jtr   RF':>{width}}" for _ in names)
    lines = [head, sub, "-" * len(head)]

    def row(label, get, get_rf):
        cells, num = [], None
        for n in names:
            block = get(results[n])
            num = block.get("num_objects", num)
            vals = [f"{100 * block[k]:5.1f}" if block.get(k) is not None else "  n/a" for k in KEYS]
            rf = get_rf(results[n]) or {}
            vals.append(f"{100 * rf['rate']:5.1f}" if rf.get("rate") is not None else "    -")
            cells.append(" ".join(vals))
        rf0 = get_rf(first) or {}
        reapp = rf0.get("events", "")
        return f"{label:<18}{num if num is not None else '':>5}{reapp:>6}  " + "  ".join(f"{c:>{width}}" for c in cells)

    n_obj = len(first["per_object"])
    lines.append(
        row("overall", lambda r: {**r["global"], "num_objects": n_obj}, lambda r: r.get("refound", {}).get("global"))
    )
    for s in subsets:
        lines.append(
            row(s, lambda r, s=s: r["subsets"][s], lambda r, s=s: r.get("refound", {}).get("subsets", {}).get(s))
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--suite",
        choices=SUITES,
        default="first",
        help="first: the generator's val suite; second: benchmarks/second_suite.py (never trained on); "
        "lost: the val suite with a lost-and-found event in every video (the training generator's: for tuning); "
        "exits: the val suite with an exit in every video and no look-alikes (for tuning)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="folder for data and predictions (default runs/accuracy, runs/accuracy-second)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the suite (default 20261125; second 20261204; lost 20261206; exits 20261207)",
    )
    parser.add_argument("--num", type=int, default=None, help="first N videos of the suite only (quick runs)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=CKPT", help="extra checkpoints")
    parser.add_argument("--no-shipped", action="store_true", help="skip the shipped model")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="skip a model whose complete predictions from the same checkpoint file are in --work",
    )
    parser.add_argument(
        "--short-side",
        type=int,
        default=None,
        help="model input short side for every model (default: each checkpoint's own)",
    )
    parser.add_argument(
        "--bank-size", type=int, default=None, help="memory capacity for every model (default: each checkpoint's own)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[NAME:]KEY=VALUE",
        dest="settings",
        help="an inference.* setting for every model, or for model NAME (repeatable), e.g. memory=spread",
    )
    parser.add_argument(
        "--grid-oracle",
        default=None,
        metavar="HxW",
        help="add the ground truth reduced to an HxW logit map (e.g. 30x40: stride 4 at 120 px)",
    )
    args = parser.parse_args(argv)

    from tamvt.data.registry import read_dataset
    from tamvt.evaluation.refound import sequence_presence

    if args.work is None:
        args.work = Path("runs/accuracy" if args.suite == "first" else f"runs/accuracy-{args.suite}")
    data = args.work / "data"
    if args.suite in DEFAULT_SEEDS:
        from tamvt.commands.synth import write_dataset
        from tamvt.data.synthetic import preset_suite
        from tamvt.evaluation.report import load_attributes

        args.seed = DEFAULT_SEEDS[args.suite] if args.seed is None else args.seed
        lost = LOST_EVENTS.get(args.suite)
        share = None if lost is None else 1.0
        configs = preset_suite("val", seed=args.seed, num=args.num, lost_share=share, lost=lost or "random")
        if not (data / "attributes.json").is_file():
            write_dataset(data, configs, overwrite=True)
        attributes = load_attributes(data)
    else:
        suite2 = _sibling("second_suite")
        args.seed = suite2.DEFAULT_SEED if args.seed is None else args.seed
        attributes = suite2.load_suite_attributes(data)
        want = len(suite2.SCENARIOS) if args.num is None else args.num
        if attributes is None or attributes.get("seed") != args.seed or len(attributes["videos"]) != want:
            attributes = suite2.write_suite(data, seed=args.seed, num=args.num, overwrite=True)
    sequences = read_dataset("davis", data, "val")
    presence = {seq.name: sequence_presence(seq) for seq in sequences}
    print(
        f"{args.suite} suite: {len(sequences)} videos, {sum(len(s) for s in sequences)} frames, "
        f"{sum(len(s.objects) for s in sequences)} objects (seed {args.seed})"
    )

    models: dict[str, Path] = {}
    if not args.no_shipped:
        from tamvt.checkpoint import shipped_model_path

        models["shipped"] = shipped_model_path()
    for item in args.model:
        name, sep, path = item.partition("=")
        if not sep:
            parser.error(f"--model wants NAME=CKPT, got {item!r}")
        models[name] = Path(path)

    results: dict[str, dict] = {}
    copy_first_mask(sequences, args.work / "pred" / "copy-first-mask")
    results["copy-first-mask"] = score(sequences, args.work / "pred" / "copy-first-mask", attributes, presence)
    if args.grid_oracle:
        try:
            grid = tuple(int(v) for v in args.grid_oracle.lower().split("x"))
            assert len(grid) == 2 and min(grid) > 0
        except (ValueError, AssertionError):
            parser.error(f"--grid-oracle wants HxW, e.g. 30x40; got {args.grid_oracle!r}")
        name = f"gt-at-{grid[0]}x{grid[1]}"
        grid_oracle(sequences, args.work / "pred" / name, grid)
        results[name] = score(sequences, args.work / "pred" / name, attributes, presence)
    for name, ckpt in models.items():
        inference = {k: v for k, v in (("short_side", args.short_side), ("bank_size", args.bank_size)) if v is not None}
        settings = [
            s.partition(":")[2] if ":" in s.partition("=")[0] else s
            for s in args.settings
            if ":" not in s.partition("=")[0] or s.partition(":")[0] == name
        ]
        stamp = {**inference, **({"settings": settings} if settings else {})}
        pred = args.work / "pred" / name
        if args.reuse and reusable(ckpt, sequences, pred, stamp):
            print(f"{name}: reusing the predictions in {pred}")
        else:
            (pred / ".made-by.json").unlink(missing_ok=True)
            spf = predict(ckpt, sequences, pred, settings, **inference)
            (pred / ".made-by.json").write_text(_stamp(ckpt, stamp))
            print(f"{name}: {spf:.3f} s/frame")
        results[name] = score(sequences, pred, attributes, presence)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
