"""How well an object's look tells its good masks from masks elsewhere (``inference.presence_likeness``).

    python benchmarks/look_separation.py --work runs/accuracy-exits [--model CKPT] [--num N] [--rule S[:F] ...]

Runs a checkpoint (default: the shipped model, its own settings) on the DAVIS-layout suite that
``benchmarks/accuracy.py`` left in ``WORK/data`` with the presence bound set to -1 (it never fires, so
the masks are the checkpoint's own) and records :func:`tamvt.memory.likeness` for every object and
frame the presence rule keeps. Those are split by the ground truth into *good* masks (J >= 0.5) and
masks *elsewhere* (under 10 % of their pixels on the object, whether it is in view or not), and the
script prints the AUC of the likeness between the two and, for thresholds at low quantiles of the good
masks' likeness, the share of masks elsewhere below them (what a bound there would empty). Each
``--rule S`` or ``S:F`` prints what ``presence_likeness=S`` (with ``presence_likeness_peak=F``: only where
the mask's area is below ``F`` times the object's peak area as the rule keeps it) would empty of the
masks elsewhere and of the good masks, all of them and those of objects under 1 % of the frame.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

QUANTILES = (0.5, 1.0, 2.0, 5.0)  # percent of the good masks


def separation(good: np.ndarray, bad: np.ndarray) -> tuple[float, list[tuple[float, float, float]]]:
    """AUC of ``good`` over ``bad`` (ties count half) and, per quantile ``q`` in :data:`QUANTILES`,
    ``(q, threshold, share of bad below it)``."""
    if good.size == 0 or bad.size == 0:
        raise ValueError("separation needs good and bad masks")
    auc = float((good[:, None] > bad[None, :]).mean() + 0.5 * (good[:, None] == bad[None, :]).mean())
    rows = []
    for q in QUANTILES:
        threshold = float(np.quantile(good, q / 100))
        rows.append((q, threshold, float((bad < threshold).mean())))
    return auc, rows


def emptied(rows: list[tuple[float, float, bool]], bound: float, peak: float | None) -> float:
    """The share of ``rows`` ``(likeness, area / peak area, _)`` a likeness ``bound`` empties (with
    ``peak``: only where the area is also below that fraction of the peak)."""
    hit = [like < bound and (peak is None or shrunk < peak) for like, shrunk, _ in rows]
    return sum(hit) / len(hit) if hit else float("nan")


def parse_rule(text: str) -> tuple[float, float | None]:
    """``S`` or ``S:F`` (``--rule``) as ``(S, F or None)``."""
    bound, _, peak = text.partition(":")
    try:
        return float(bound), float(peak) if peak else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rule {text!r}: expected S or S:F (numbers)") from None


def record_sequence(predictor, seq) -> list[tuple[int, int, float, bool, float, float, float, float]]:
    """``(object, frame, likeness, present, J, share of the mask on the object, area / peak area, the
    object's share of the frame)`` for every object and frame segmented (not the given ones); the mask's
    and peak areas as the presence rule reads them."""
    import tamvt.memory as memory
    from tamvt.commands.predict import add_first_masks
    from tamvt.evaluation.metrics import region_similarity

    likes: list = []
    original = memory.presence

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        like = kwargs["like"] if "like" in kwargs else args[6]
        peak = kwargs["peak"] if "peak" in kwargs else args[5]
        likes.append((like, args[0] / peak.to(args[0])[:, None].clamp(min=1e-12)))  # area (B, T) / peak (B,)
        return out

    per_frame: dict[tuple[int, int], tuple[float, bool, float]] = {}

    def on_clip(record) -> None:
        like, shrunk = likes.pop()
        for b, obj in enumerate(record.object_ids):
            for t, idx in enumerate(record.frames):
                per_frame[(obj, idx)] = (float(like[b, t]), bool(record.present[b][t]), float(shrunk[b, t]))

    memory.presence = recording
    try:
        session = predictor.start(seq, keep_results=False, on_clip=on_clip)
        add_first_masks(predictor, session, seq)  # as tamvt predict does
        rows = []
        for idx, result in predictor.propagate(session, start=0):
            truth = seq.read_mask(idx)
            for k, obj in enumerate(result.object_ids):
                if (obj, idx) not in per_frame:
                    continue  # a given frame
                like, present, shrunk = per_frame[(obj, idx)]
                mask = (result.probs[k] > 0.5).numpy()
                g = truth == obj
                on = float((mask & g).sum() / max(int(mask.sum()), 1))
                rows.append((obj, idx, like, present, region_similarity(g, mask), on, shrunk, float(g.mean())))
    finally:
        memory.presence = original
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="accuracy.py's work folder (data/)")
    parser.add_argument("--model", type=Path, default=None, help="checkpoint (default: the shipped model)")
    parser.add_argument("--num", type=int, default=None, help="the first N videos only")
    parser.add_argument(
        "--rule",
        type=parse_rule,
        action="append",
        default=[],
        metavar="S[:F]",
        help="also print what presence_likeness=S (and presence_likeness_peak=F) would empty",
    )
    args = parser.parse_args(argv)

    from tqdm import tqdm

    from tamvt.checkpoint import shipped_model_path
    from tamvt.data.registry import read_dataset
    from tamvt.errors import TamvtError
    from tamvt.inference.predictor import Predictor

    try:
        sequences = read_dataset("davis", args.work / "data", "val")[: args.num]
        predictor = Predictor.from_checkpoint(args.model or shipped_model_path(), presence=True, presence_likeness=-1.0)
    except TamvtError as err:
        print(f"look_separation: {err}", file=sys.stderr)
        return 1
    good: list[tuple[float, float, bool]] = []  # (likeness, area / peak, object under 1 % of the frame)
    bad: list[tuple[float, float, bool]] = []
    for seq in tqdm(sequences, unit="seq", leave=False):
        for _, _, like, present, j, on, shrunk, size in record_sequence(predictor, seq):
            if not present:
                continue  # the rule's other bounds empty it already
            if j >= 0.5:
                good.append((like, shrunk, size < 0.01))
            elif on < 0.1:
                bad.append((like, shrunk, size < 0.01))
    print(f"{len(sequences)} videos: {len(good)} good masks, {len(bad)} masks elsewhere (present by the rule)")
    auc, rows = separation(np.array([g[0] for g in good]), np.array([b[0] for b in bad]))
    print(f"AUC {auc:.3f}")
    for q, threshold, share in rows:
        below = f"{share * 100:5.1f} % of those elsewhere below"
        print(f"  likeness {threshold:6.3f} (the good masks' {q:g} % quantile): {below}")
    small = [g for g in good if g[2]]
    for bound, peak in args.rule:
        name = f"presence_likeness={bound:g}" + ("" if peak is None else f" presence_likeness_peak={peak:g}")
        shares = [emptied(r, bound, peak) * 100 for r in (bad, good, small)]
        print(
            f"  {name}: empties {shares[0]:5.1f} % of those elsewhere, {shares[1]:4.1f} % of the good masks"
            f" ({shares[2]:4.1f} % of the {len(small)} of objects under 1 %)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
