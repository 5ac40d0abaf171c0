"""Would "drop the part of a mask that stays still" tell a look-alike from the object? Read from the
predictions ``benchmarks/accuracy.py`` left in its work folder, without running a model.

    python benchmarks/part_stillness.py --work runs/accuracy-lost60 --pred pk20max3 [--min-part 0.25]

For every object and frame (from the 9th on) whose predicted mask has two or more connected parts
(8-connectivity) each at least ``--min-part`` of the object's first ground-truth area, each such part is
*false* (under 10 % of its pixels on the object's ground truth) or *true* (at least half), and its
*stillness* for a look-back k is the share of its pixels that were in the object's predicted mask k
frames earlier. Printed: the quantiles of stillness of false and true parts for k = 1, 2, 3, 4, 8, and,
over the frames that hold both a false and a true part, how often the false part is the stiller one.
A rule could only use stillness if false parts were clearly stiller.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

LOOK_BACK = (1, 2, 3, 4, 8)


def kind(truth_share: float) -> str | None:
    """A part's kind from the share of its pixels on the object's ground truth: ``false`` under 10 %,
    ``true`` from half on, else neither."""
    return "false" if truth_share < 0.1 else "true" if truth_share >= 0.5 else None


def parts(mask: np.ndarray, min_pixels: float) -> list[np.ndarray]:
    """The connected parts (8-connectivity) of a bool mask with at least ``min_pixels`` pixels."""
    import cv2

    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    found = [labels == c for c in range(1, count)]
    return [m for m in found if m.sum() >= min_pixels]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="accuracy.py's work folder (data/, pred/)")
    parser.add_argument("--pred", required=True, help="a prediction name in WORK/pred")
    parser.add_argument("--min-part", type=float, default=0.25, help="a part's least size, x the first area")
    args = parser.parse_args(argv)

    from tamvt.data.palette import read_index_png
    from tamvt.data.registry import read_dataset

    rows = []  # (video, object, frame, kind, stillness per look-back)
    for seq in read_dataset("davis", args.work / "data", "val"):
        truth = [seq.read_mask(t) for t in range(len(seq))]
        pred_dir = args.work / "pred" / args.pred / seq.name
        pred = [read_index_png(pred_dir / f"{seq.frame_names[t]}.png")[0] for t in range(len(seq))]
        for obj in seq.objects:
            first = next((int((m == obj).sum()) for m in truth if (m == obj).any()), 0)
            if first == 0:
                continue
            mine = [p == obj for p in pred]
            for t in range(max(LOOK_BACK), len(seq)):
                found = parts(mine[t], args.min_part * first)
                if len(found) < 2:
                    continue
                gt = truth[t] == obj
                for m in found:
                    size = m.sum()
                    still = [float((m & mine[t - k]).sum() / size) for k in LOOK_BACK]
                    rows.append((seq.name, obj, t, kind(float((m & gt).sum() / size)), still))
    false = [r for r in rows if r[3] == "false"]
    true = [r for r in rows if r[3] == "true"]
    print(f"{len(rows)} parts in frames with two or more: {len(false)} false, {len(true)} true")
    for label, group in (("false", false), ("true", true)):
        if not group:
            continue
        still = np.array([r[4] for r in group])
        for j, k in enumerate(LOOK_BACK):
            q = np.quantile(still[:, j], [0.1, 0.25, 0.5, 0.75, 0.9])
            print(f"{label:5s} k={k}: stillness quantiles 10/25/50/75/90 %: " + " ".join(f"{v:.2f}" for v in q))
    by_frame = collections.defaultdict(list)
    for r in rows:
        by_frame[r[:3]].append(r)
    for j, k in enumerate(LOOK_BACK):
        stiller = both = 0
        for group in by_frame.values():
            f = [r[4][j] for r in group if r[3] == "false"]
            t = [r[4][j] for r in group if r[3] == "true"]
            if f and t:
                both += 1
                stiller += max(f) > max(t)
        print(f"k={k}: the false part is the stiller one in {stiller} of {both} frames with a false and a true part")
    return 0


if __name__ == "__main__":
    sys.exit(main())
