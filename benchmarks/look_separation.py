"""How well an object's look tells its good masks from masks elsewhere (``inference.presence_likeness``).

    python benchmarks/look_separation.py --work runs/accuracy-exits [--model CKPT] [--num N]

Runs a checkpoint (default: the shipped model, its own settings) on the DAVIS-layout suite that
``benchmarks/accuracy.py`` left in ``WORK/data`` with the presence bound set to -1 (it never fires, so
the masks are the checkpoint's own) and records :func:`tamvt.memory.likeness` for every object and
frame the presence rule keeps. Those are split by the ground truth into *good* masks (J >= 0.5) and
masks *elsewhere* (under 10 % of their pixels on the object, whether it is in view or not), and the
script prints the AUC of the likeness between the two and, for thresholds at low quantiles of the good
masks' likeness, the share of masks elsewhere below them (what a bound there would empty).
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


def record_sequence(predictor, seq) -> list[tuple[int, int, float, bool, float, float]]:
    """``(object, frame, likeness, present, J, share of the mask on the object)`` for every object and
    frame segmented (not the given ones)."""
    import tamvt.memory as memory
    from tamvt.commands.predict import add_first_masks
    from tamvt.evaluation.metrics import region_similarity

    likes: list = []
    original = memory.presence

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        likes.append(kwargs["like"] if "like" in kwargs else args[6])
        return out

    per_frame: dict[tuple[int, int], tuple[float, bool]] = {}

    def on_clip(record) -> None:
        like = likes.pop()
        for b, obj in enumerate(record.object_ids):
            for t, idx in enumerate(record.frames):
                per_frame[(obj, idx)] = (float(like[b, t]), bool(record.present[b][t]))

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
                like, present = per_frame[(obj, idx)]
                mask = (result.probs[k] > 0.5).numpy()
                g = truth == obj
                on = float((mask & g).sum() / max(int(mask.sum()), 1))
                rows.append((obj, idx, like, present, region_similarity(g, mask), on))
    finally:
        memory.presence = original
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="accuracy.py's work folder (data/)")
    parser.add_argument("--model", type=Path, default=None, help="checkpoint (default: the shipped model)")
    parser.add_argument("--num", type=int, default=None, help="the first N videos only")
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
    good, bad = [], []
    for seq in tqdm(sequences, unit="seq", leave=False):
        for _, _, like, present, j, on in record_sequence(predictor, seq):
            if not present:
                continue  # the rule's other bounds empty it already
            if j >= 0.5:
                good.append(like)
            elif on < 0.1:
                bad.append(like)
    print(f"{len(sequences)} videos: {len(good)} good masks, {len(bad)} masks elsewhere (present by the rule)")
    auc, rows = separation(np.array(good), np.array(bad))
    print(f"AUC {auc:.3f}")
    for q, threshold, share in rows:
        below = f"{share * 100:5.1f} % of those elsewhere below"
        print(f"  likeness {threshold:6.3f} (the good masks' {q:g} % quantile): {below}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
