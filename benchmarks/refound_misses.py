"""What the prediction does after a reappearance it did not re-find: nothing, something else, or part of
the object. Read from the predictions ``benchmarks/accuracy.py`` left in its work folder, no model run.

    python benchmarks/refound_misses.py --work runs/accuracy-second --pred shipped [--pred ...]

For every reappearance not re-found (tamvt.evaluation.refound: J < 0.5 on every scored frame of its
10-frame window), each frame of the window where the object is in the ground truth is ``0`` (the
object's predicted mask is empty), ``x`` (a mask with under 10 % of its pixels on the object:
somewhere else) or ``p`` (on the object, J < 0.5: partial, or spread over more than the object). A miss
is counted under the kind most of its frames have (ties: empty, elsewhere, partial, in that order).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

KINDS = {"0": "empty", "x": "elsewhere", "p": "partial"}


def frame_kind(truth: np.ndarray, mask: np.ndarray) -> str:
    """``0``, ``x`` or ``p`` (module docstring) for one frame's bool ground truth and predicted mask."""
    if not mask.any():
        return "0"
    return "x" if (mask & truth).sum() < 0.1 * mask.sum() else "p"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="accuracy.py's work folder (data/, pred/)")
    parser.add_argument("--pred", action="append", required=True, help="prediction names in WORK/pred")
    args = parser.parse_args(argv)

    from tamvt.errors import TamvtError

    try:
        for name in args.pred:
            report(args.work, name)
    except TamvtError as err:  # a missing or unreadable mask: say which, no traceback
        print(f"refound_misses: {err}", file=sys.stderr)
        return 1
    return 0


def report(work: Path, name: str) -> None:
    """Print every reappearance prediction ``name`` did not re-find and the counts by kind."""
    from tamvt.data.palette import read_index_png
    from tamvt.data.registry import read_dataset
    from tamvt.evaluation.metrics import region_similarity
    from tamvt.evaluation.refound import REFOUND_WINDOW, refound_events

    counts = dict.fromkeys(KINDS.values(), 0)
    found = total = 0
    for seq in read_dataset("davis", work / "data", "val"):
        truth = [seq.read_mask(t) for t in range(len(seq))]
        pred = [read_index_png(work / "pred" / name / seq.name / f"{f}.png")[0] for f in seq.frame_names]
        for obj in seq.objects:
            gt = [m == obj for m in truth]
            pr = [m == obj for m in pred]
            j = np.array([region_similarity(g, p) for g, p in zip(gt, pr, strict=True)], dtype=np.float64)
            j[[0, -1]] = np.nan  # not scored by the DAVIS protocol
            present = np.array([g.any() for g in gt])
            for e in refound_events(j, present):
                total += 1
                found += e.found
                if e.found:
                    continue
                window = range(e.frame, min(e.frame + REFOUND_WINDOW, len(seq)))
                frames = "".join(frame_kind(gt[t], pr[t]) for t in window if present[t])
                kind = KINDS[max("0xp", key=frames.count)]
                counts[kind] += 1
                print(f"{name} {seq.name}:{obj} frame {e.frame} (absent {e.absent}): {frames} -> {kind}")
    missed = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"{name}: {found} of {total} re-found; missed {total - found}: {missed}")


if __name__ == "__main__":
    sys.exit(main())
