"""How many training windows show their target go away and come back: a training preset's synthetic
windows counted as the trainer draws them (``data.*`` of the preset and overrides), no model run.

    python benchmarks/window_returns.py synthetic-lost [--num 400] [data.synthetic_lost_focus=1 ...]

A window has a return when a query frame without the target is followed by one with it. For those, the
absence's length in video frames (from the last frame seen before it to the first seen after it) and how
far the target comes back from where it was (its mask's centre, in frame sizes: x / W and y / H).
Windows are read without their augmentation (whole frames, no crop).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def returns(masks: np.ndarray, frame_indices: tuple[int, ...], num_memory: int) -> tuple[int, float] | None:
    """``(absence length in video frames, displacement)`` of the window's first return, or None.
    ``masks (T, H, W)``: the target's masks in the order the model sees them."""
    masks = np.asarray(masks, bool)
    shown = masks.reshape(len(masks), -1).any(1)
    gone = np.flatnonzero(~shown[num_memory:]) + num_memory
    if not len(gone) or not shown[gone[0] :].any():
        return None
    seen_before = np.flatnonzero(shown[: gone[0]])  # the first frame shows it: never empty
    before, back = int(seen_before[-1]), gone[0] + int(np.flatnonzero(shown[gone[0] :])[0])
    size = np.array(masks.shape[1:], np.float64)
    shift = np.argwhere(masks[back]).mean(0) / size - np.argwhere(masks[before]).mean(0) / size
    return abs(frame_indices[back] - frame_indices[before]) - 1, float(np.linalg.norm(shift))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", help="training preset or YAML (source: synthetic)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, as for tamvt train")
    parser.add_argument("--num", type=int, default=400, help="windows to draw (items 0..NUM-1 of epoch 0)")
    parser.add_argument("--seed", type=int, default=0, help="run.seed")
    args = parser.parse_intermixed_args(argv)

    from tamvt.errors import TamvtError
    from tamvt.train.config import load_train_config
    from tamvt.train.data import build_train_dataset

    try:
        cfg = load_train_config(args.preset, args.overrides)
        if cfg.data.source != "synthetic":
            raise TamvtError(f"{args.preset}: data.source is {cfg.data.source}, not synthetic")
        ds = build_train_dataset(cfg.data, seed=args.seed)
        ds.augment = None  # whole frames: a crop could hide the target and count as an absence
    except TamvtError as err:
        print(f"window_returns: {err}", file=sys.stderr)
        return 1
    found = []
    for i in range(args.num):
        s = ds[i]
        r = returns(s.masks.numpy(), s.frame_indices, s.num_memory)
        if r is not None:
            found.append(r)
    gaps = np.array([g for g, _ in found])
    far = np.array([d for _, d in found])
    print(f"{args.preset} {' '.join(args.overrides)}: {len(found)} of {args.num} windows show a return")
    print(f"  absent >= 12 frames: {(gaps >= 12).sum()}, >= 20: {(gaps >= 20).sum()}")
    print(f"  back > 0.25 of the frame away: {(far > 0.25).sum()}, > 0.5: {(far > 0.5).sum()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
