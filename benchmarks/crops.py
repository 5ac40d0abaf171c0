"""Crops around one object, ground truth and predictions side by side: how to look at small objects.

    python benchmarks/crops.py --data runs/accuracy-s2/data --video val-022 --object 2 --frames 1,25,45 \
        --pred spread=runs/accuracy-s2/pred/shipped --pred window=runs/accuracy-s2/pred/w05 --out crops.png

Rows are frames; columns the frame, then each prediction: the object's predicted pixels tinted red, the
ground-truth outline in green. Each crop is a square of ``--size`` frame pixels centred on the ground
truth (the frame's centre when the object is not visible), scaled up ``--zoom`` times. The J of the object
in that frame is written under each prediction.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np


def crop_box(gt: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of a ``size`` square centred on the mask (clipped to the frame)."""
    h, w = gt.shape
    ys, xs = np.nonzero(gt)
    cy, cx = (int(ys.mean()), int(xs.mean())) if ys.size else (h // 2, w // 2)
    return max(0, min(cy - size // 2, h - size)), max(0, min(cx - size // 2, w - size))


def tile(
    image: np.ndarray, gt: np.ndarray, pred: np.ndarray | None, top: int, left: int, size: int, zoom: int
) -> np.ndarray:
    view = image[top : top + size, left : left + size].astype(np.float32)
    if pred is not None:
        p = pred[top : top + size, left : left + size]
        view[p] = 0.5 * view[p] + 0.5 * np.array([255.0, 0.0, 0.0])
        g = gt[top : top + size, left : left + size].astype(np.uint8)
        edge = (g - cv2.erode(g, np.ones((3, 3), np.uint8))).astype(bool)
        view[edge] = (0.0, 255.0, 0.0)
    return cv2.resize(view.astype(np.uint8), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, required=True, help="a DAVIS-layout folder (JPEGImages/480p, Annotations/480p)"
    )
    parser.add_argument("--video", required=True)
    parser.add_argument("--object", type=int, required=True)
    parser.add_argument("--frames", required=True, help="comma-separated frame numbers")
    parser.add_argument(
        "--pred",
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="a results folder (<video>/<frame>.png index masks); repeatable",
    )
    parser.add_argument("--size", type=int, default=64, help="crop side in frame pixels")
    parser.add_argument("--zoom", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    from PIL import Image

    from tamvt.data.palette import read_index_png
    from tamvt.evaluation.metrics import region_similarity

    preds = [item.partition("=")[::2] for item in args.pred]
    rows = []
    for number in (int(f) for f in args.frames.split(",")):
        name = f"{number:05d}"
        image = np.asarray(Image.open(args.data / "JPEGImages/480p" / args.video / f"{name}.jpg").convert("RGB"))
        gt = read_index_png(args.data / "Annotations/480p" / args.video / f"{name}.png")[0] == args.object
        top, left = crop_box(gt, args.size)
        cells = [tile(image, gt, None, top, left, args.size, args.zoom)]
        for label, folder in preds:
            pred = read_index_png(Path(folder) / args.video / f"{name}.png")[0] == args.object
            cell = tile(image, gt, pred, top, left, args.size, args.zoom)
            cv2.putText(
                cell,
                f"{label} J={region_similarity(gt, pred):.2f}",
                (4, cell.shape[0] - 6),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
            cells.append(cell)
        cv2.putText(
            cells[0],
            f"{args.video} frame {number}",
            (4, 14),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        rows.append(np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0))) for c in cells], axis=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
