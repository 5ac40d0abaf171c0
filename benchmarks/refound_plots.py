"""What a failed re-find looks like: per frame J and where the mask sits, for objects that vanished from the
ground truth and came back, from predictions ``benchmarks/accuracy.py`` left in its work folder.

    python benchmarks/refound_plots.py [--work runs/accuracy-second] [--pred shipped ...]
        [--cases s2-000:1,s2-003:1 | --auto 3] --out PNG

Per case two panels: J per frame of each ``--pred`` (grey: the object is absent from the ground truth;
yellow: the suite's events; a marker at each reappearance, filled when re-found) and the horizontal
position of the object's centre in the ground truth (black) and in each prediction (coloured; a flat
line after a reappearance while the ground truth moves on is the mask left behind). ``--auto N`` picks
the first N reappearances the first ``--pred`` did not re-find (tamvt.evaluation.refound).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np


def object_track(seq, pred_dir: Path | None, obj: int) -> dict[str, np.ndarray]:
    """Per frame: J, ground-truth area, and the x of the centre of the ground truth (``pred_dir`` None) or of
    the prediction (NaN where empty)."""
    from tamvt.data.palette import read_index_png
    from tamvt.evaluation.metrics import region_similarity

    n = len(seq)
    j, area, x = np.full(n, np.nan), np.zeros(n), np.full(n, np.nan)
    for t in range(n):
        gt = seq.read_mask(t) == obj
        m = gt if pred_dir is None else read_index_png(pred_dir / f"{seq.frame_names[t]}.png")[0] == obj
        j[t] = region_similarity(gt, m)
        area[t] = gt.sum()
        if m.any():
            x[t] = np.nonzero(m)[1].mean()
    j[[0, -1]] = np.nan  # not scored by the DAVIS protocol
    return {"J": j, "gt_area": area, "x": x}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("runs/accuracy-second"))
    parser.add_argument("--pred", action="append", default=[], help="prediction names in WORK/pred (default shipped)")
    parser.add_argument("--cases", default=None, help="VIDEO:OBJECT,... (default: --auto)")
    parser.add_argument("--auto", type=int, default=3, help="the first N reappearances not re-found")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    preds = args.pred or ["shipped"]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tamvt.data.registry import read_dataset
    from tamvt.evaluation.refound import refound_events

    data = args.work / "data"
    seqs = {s.name: s for s in read_dataset("davis", data, "val")}
    attrs = json.loads((data / "attributes.json").read_text())["videos"] if (data / "attributes.json").is_file() else {}
    cases: list[tuple[str, int]] = []
    if args.cases:
        for item in args.cases.split(","):
            name, _, obj = item.partition(":")
            cases.append((name, int(obj)))
    else:
        for name, seq in seqs.items():
            for obj in seq.objects:
                tr = object_track(seq, args.work / "pred" / preds[0] / name, obj)
                if any(not e.found for e in refound_events(tr["J"], tr["gt_area"] > 0)):
                    cases.append((name, obj))
                if len(cases) >= args.auto:
                    break
            if len(cases) >= args.auto:
                break
    if not cases:
        print("no reappearance left un-found")
        return 0
    colors = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
    fig, axes = plt.subplots(2 * len(cases), 1, figsize=(8, 1.5 * 2 * len(cases) + 0.3), squeeze=False)
    for c, (name, obj) in enumerate(cases):
        seq = seqs[name]
        gt = object_track(seq, None, obj)
        ax_j, ax_x = axes[2 * c, 0], axes[2 * c + 1, 0]
        for ax in (ax_j, ax_x):
            for t in np.flatnonzero(gt["gt_area"] == 0):
                ax.axvspan(t - 0.5, t + 0.5, color="0.85", lw=0)
            for e in attrs.get(name, {}).get("events", []):
                if e["object"] in (0, obj):
                    ax.axvspan(e["start"], e["end"], color="gold", alpha=0.2, lw=0)
                    if ax is ax_j:
                        ax.text(e["start"], 1.03, e["type"], fontsize=6, va="bottom")
            ax.tick_params(labelsize=6)
            ax.set_xlim(0, len(seq) - 1)
        ax_x.plot(gt["x"], color="black", lw=1.2, label="ground truth")
        for k, p in enumerate(preds):
            tr = object_track(seq, args.work / "pred" / p / name, obj)
            col = colors[k % len(colors)]
            ev = refound_events(tr["J"], tr["gt_area"] > 0)
            ax_j.plot(tr["J"], color=col, lw=0.9, label=f"{p} (re-found {sum(e.found for e in ev)}/{len(ev)})")
            for e in ev:
                ax_j.plot([e.frame], [-0.08 - 0.06 * k], marker="o", ms=4, color=col, mfc=col if e.found else "white")
            ax_x.plot(tr["x"], color=col, lw=0.9, label=p)
        ax_j.set_ylim(-0.1 - 0.06 * len(preds), 1.15)
        ax_j.set_ylabel("J", fontsize=7)
        ax_x.set_ylabel("centre x\n(px)", fontsize=7)
        ax_j.set_title(f"{name} object {obj}", fontsize=7, loc="left", pad=2)
        ax_j.legend(fontsize=6, loc="lower right", bbox_to_anchor=(1.0, 0.98), ncol=len(preds), frameon=False)
        ax_x.legend(fontsize=6, loc="best", ncol=len(preds) + 1, frameon=False)
    axes[-1, 0].set_xlabel(
        "frame.  grey: absent from the ground truth; yellow: events; o: reappearance (filled: re-found)", fontsize=7
    )
    fig.tight_layout(h_pad=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=80)
    plt.close(fig)
    from PIL import Image

    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.open(buf).convert("RGB").quantize(256).save(args.out, optimize=True)
    print(f"{args.out}: {', '.join(f'{n}:{o}' for n, o in cases)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
