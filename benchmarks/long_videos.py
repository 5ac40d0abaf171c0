"""Why long videos and small objects fail: per frame and object, J, where the prediction sits, and what
the memory held, for the accuracy suite's long (>= 300 frames) and small-object (< 1 % of the frame)
videos, under one or more inference settings.

    python benchmarks/long_videos.py [--suite first|second] [--work runs/accuracy] [--seed 20261125] [--num N]
        [--checkpoint CKPT] [--run NAME[:KEY=VALUE,...] ...] [--plots DIR] [--json FILE] [--videos val-027,val-028]

``--run fifo`` (default) uses the checkpoint's settings; ``--run spread:memory=spread,memory_gate=0.3``
changes ``inference.*`` fields; the setting ``oracle_memory=true`` (not an inference field) writes the
ground-truth mask instead of the prediction into every memory entry (the model's best case when its
memory is never wrong: what is lost without it is error accumulation), and ``checkpoint=PATH`` runs
another checkpoint. The suite (same seed and folder as ``benchmarks/accuracy.py``) is
generated if missing. For each object the script finds the *losses*: runs of >= 4 frames where the
object is visible and J < 0.2; for each it prints the frame, what the prediction covered (nothing, the
background, another object), the events and occlusions around it, the memory the clip was matched
against (frame indices and how good the masks written there were) and whether the object came back
(J >= 0.5 on 2 frames in a row). Per object it also splits the J lost, ``1 - J = (FP near + FP far
+ FN) / union``, into false positives within 4 px (frame pixels) of the object (boundary), false
positives farther away (a separate blob: background, a look-alike, the place the object left) and
missed object pixels. ``--plots`` writes one PNG per video: J per frame per object and run,
losses marked, ground-truth absence and the generator's events shaded, and the frames the memory held
at every clip. The summary's ``RF`` is re-found (``tamvt.evaluation.refound``: J >= 0.5 within 10 frames
of a reappearance after a full absence; ``reapp`` of them). ``--suite second`` reads the second suite
(``benchmarks/second_suite.py``, in ``runs/accuracy-second`` as ``accuracy.py --suite second``), where long
means >= 144 frames and the default videos are the long ones, the small-object ones and those whose
objects disappear fully.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LOST_J, LOST_RUN = 0.2, 4  # lost: J below LOST_J on LOST_RUN visible frames in a row
BACK_J, BACK_RUN = 0.5, 2  # came back: J at least BACK_J on BACK_RUN visible frames in a row
NEAR_PX = 4  # false positives within this distance of the object are boundary errors


@dataclass
class ObjectTrace:
    """Per-frame records of one object (index = frame)."""

    j: list[float] = field(default_factory=list)
    gt_area: list[int] = field(default_factory=list)
    pred_area: list[int] = field(default_factory=list)
    on_bg: list[int] = field(default_factory=list)  # predicted pixels on the background
    on_other: list[int] = field(default_factory=list)  # predicted pixels on another object
    union: list[int] = field(default_factory=list)
    fp_far: list[int] = field(default_factory=list)  # false positives farther than NEAR_PX from the object
    fn: list[int] = field(default_factory=list)  # object pixels missed
    conf: list[float] = field(default_factory=list)  # tamvt.memory.mask_confidence of the probabilities


def trace_video(predictor, seq, oracle_memory: bool = False) -> tuple[dict[int, ObjectTrace], list[dict]]:
    """Segment ``seq`` (objects from their first annotation) and record every object's frames and, per
    clip, the frames its group's memory held (the engine's ``on_clip``). With ``oracle_memory`` every
    memory entry is encoded from the ground truth instead of the prediction."""
    import cv2

    from tamvt.memory import mask_confidence

    clips: list[dict] = []

    def record(clip) -> None:
        clips.append(
            {
                "group": list(clip.object_ids),
                "frames": list(clip.frames),
                "memory": list(clip.memory),
                "written": clip.written,
            }
        )

    near = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * NEAR_PX + 1, 2 * NEAR_PX + 1))
    session = predictor.start(
        seq, keep_results=False, on_clip=record, oracle_memory=seq.read_mask if oracle_memory else None
    )
    first = {}
    for obj, ref in sorted(seq.objects.items()):
        gt = seq.read_mask(ref)
        predictor.add_mask(session, ref, obj, gt == obj)
        first[obj] = ref
    traces = {obj: ObjectTrace() for obj in first}
    for idx, result in predictor.propagate(session, start=0):
        gt = seq.read_mask(idx)
        for obj, tr in traces.items():
            g = gt == obj
            p = result.mask == obj  # the merged mask, as the evaluation scores it
            inter, union = int((g & p).sum()), int((g | p).sum())
            tr.j.append(1.0 if union == 0 else inter / union)
            tr.gt_area.append(int(g.sum()))
            tr.pred_area.append(int(p.sum()))
            tr.on_bg.append(int((p & (gt == 0)).sum()))
            tr.on_other.append(int((p & (gt != 0) & ~g).sum()))
            tr.union.append(union)
            tr.fp_far.append(int((p & ~cv2.dilate(g.astype(np.uint8), near).astype(bool)).sum()))
            tr.fn.append(int((g & ~p).sum()))
            k = result.object_ids.index(obj) if obj in result.object_ids else None
            tr.conf.append(float(mask_confidence(result.probs[k][None, None])[0]) if k is not None else 0.0)
    return traces, clips


def runs_where(flags: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """``[start, end)`` of the runs of True at least ``min_len`` long."""
    out, start = [], None
    for i, f in enumerate([*flags, False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            if i - start >= min_len:
                out.append((start, i))
            start = None
    return out


def losses(tr: ObjectTrace, ref: int, events: list[dict], memory_at: dict[int, list], obj: int) -> list[dict]:
    """The loss events of one object (see the module docstring) with their context."""
    j, gt, pred = np.array(tr.j), np.array(tr.gt_area), np.array(tr.pred_area)
    visible = gt > 0
    lost_runs = runs_where(visible & (j < LOST_J), LOST_RUN)
    back = runs_where(visible & (j >= BACK_J), BACK_RUN)
    out = []
    for start, end in lost_runs:
        if out and (out[-1]["back_at"] is None or out[-1]["back_at"] > start):
            continue  # still the previous loss: the object had not come back in between
        w = slice(start, min(start + LOST_RUN, len(j)))
        area_ratio = float(pred[w].sum() / max(gt[w].sum(), 1))
        bg, other = float(np.sum(tr.on_bg[w])), float(np.sum(tr.on_other[w]))
        if area_ratio < 0.2:
            where = "vanished"
        elif other > bg:
            where = "other object"
        else:
            where = "background"
        came_back = next((b for b, _ in back if b > start), None)
        absent_before = [t for t in range(max(0, start - 10), start) if gt[t] == 0]
        near = [
            f"{e['type']} {e['start']}-{e['end']}"
            for e in events
            if e["object"] == obj and e["start"] - 5 <= start <= e["end"] + 10
        ]
        mem = [f for f in memory_at.get(start, []) if f is not None]
        recent = [f for f in mem if f != ref]
        mem_j = {f: (1.0 if f == ref else round(float(j[f]), 2)) for f in mem}
        out.append(
            {
                "frame": start,
                "until": end,
                "back_at": came_back,
                "where": where,
                "pred/gt area": round(area_ratio, 2),
                "gt area vs ref": round(float(gt[start] / max(gt[ref], 1)), 2),
                "after occlusion": bool(absent_before),
                "events": near,
                "memory": mem,
                "memory J": mem_j,
                "bad memory": sum(1 for f in recent if j[f] < BACK_J),
                "recent memory": len(recent),
                "memory span": (start - min(recent)) if recent else 0,
                "ref distance": start - ref,
            }
        )
    return out


def error_split(tr: ObjectTrace, memory_at: dict[int, list], ref: int) -> dict:
    """Means over the evaluated frames where the object is visible: ``1 - J`` split into boundary false
    positives, far false positives and misses (fractions of the union); the share of frames with
    J < 0.5; and the mean J of the masks the memory held (written by the model; reference excluded)."""
    j, union = np.array(tr.j), np.maximum(np.array(tr.union), 1)
    fp_far, fn = np.array(tr.fp_far) / union, np.array(tr.fn) / union
    fp = (np.array(tr.pred_area) - (np.array(tr.gt_area) - np.array(tr.fn))) / union
    vis = np.zeros(len(j), bool)
    vis[1:-1] = np.array(tr.gt_area[1:-1]) > 0
    mem = [
        np.mean([j[f] for f in memory_at.get(t, []) if f is not None and f != ref] or [1.0])
        for t in np.flatnonzero(vis)
    ]
    fp_other = np.array(tr.on_other) / union
    return {
        "J_visible": float(j[vis].mean()),
        "fp_near": float((fp - fp_far)[vis].mean()),
        "fp_far": float(fp_far[vis].mean()),
        "fp_other": float(fp_other[vis].mean()),
        "fn": float(fn[vis].mean()),
        "below_half": float((j[vis] < BACK_J).mean()),
        "memory_J": float(np.mean(mem)),
    }


def print_summary(report: dict, videos: dict, min_length: int, max_size: float) -> None:
    """Per run, for the long-video and the small-object objects: J, J_tr, the split of 1 - J (FPoth: the
    false positives on another target, near or far), the share of frames below 0.5, the memory's J
    (its masks' J when the model wrote them), and the losses."""
    runs = list(next(iter(report.values())))
    head = (
        f"{'run':<10}{'subset':<12}{'objs':>5}{'J':>7}{'J_tr':>7}{'1-J:':>7}{'FPnear':>7}{'FPfar':>7}{'FN':>7}"
        f"{'FPoth':>7}{'J<.5':>7}{'memJ':>7}{'reapp':>6}{'RF':>6}  losses (never back)"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for run in runs:
        for label, keep in (
            (f"len>={min_length}", lambda v, o: v["length"] >= min_length),
            (f"size<{max_size:g}%", lambda v, o: 0 < v["objects"][o]["area_pct_mean"] < max_size),
            ("disappears", lambda v, o: bool(v["objects"][o].get("invisible"))),  # the second suite's
        ):
            objs = [
                res[run]["objects"][o]
                for name, res in report.items()
                for o in res[run]["objects"]
                if keep(videos[name], o)
            ]
            if not objs:
                continue
            mean = {
                k: 100 * np.mean([o[k] for o in objs])
                for k in (
                    "J_mean",
                    "J_tr",
                    "J_visible",
                    "fp_near",
                    "fp_far",
                    "fn",
                    "fp_other",
                    "below_half",
                    "memory_J",
                )
            }
            reapp = [e for o in objs for e in o.get("refound", [])]
            rf = f"{100 * sum(e['found'] for e in reapp) / len(reapp):6.1f}" if reapp else f"{'-':>6}"
            lost = sum(len(o["losses"]) for o in objs)
            never = sum(1 for o in objs for ev in o["losses"] if ev["back_at"] is None)
            print(
                f"{run:<10}{label:<12}{len(objs):>5}{mean['J_mean']:7.1f}{mean['J_tr']:7.1f}"
                f"{100 - mean['J_visible']:7.1f}{mean['fp_near']:7.1f}{mean['fp_far']:7.1f}{mean['fn']:7.1f}"
                f"{mean['fp_other']:7.1f}{mean['below_half']:7.1f}{mean['memory_J']:7.1f}{len(reapp):>6}{rf}"
                f"  {lost} ({never})"
            )
    print("per object:")
    for name, res in report.items():
        for o in res[runs[0]]["objects"]:
            cells = "  ".join(
                f"{run} J_tr {100 * res[run]['objects'][o]['J_tr']:5.1f} "
                f"FPfar {100 * res[run]['objects'][o]['fp_far']:4.1f} "
                f"FN {100 * res[run]['objects'][o]['fn']:4.1f}"
                for run in runs
            )
            print(f"  {name} obj {o} ({res[runs[0]]['objects'][o]['size_pct']:.2f} %): {cells}")


def scored_j(j: list[float]) -> np.ndarray:
    """``j`` with the frames the DAVIS protocol does not score (the first and the last) set to NaN."""
    out = np.array(j, dtype=np.float64)
    out[[0, -1]] = np.nan
    return out


def j_tr(j: list[float]) -> float:
    """J over the last quarter of the evaluated frames (first and last frame excluded), as accuracy.py."""
    ev = j[1:-1]
    return float(np.mean(ev[int(np.floor(0.75 * len(ev))) :]))


def plot_video(path: Path, name: str, results: dict[str, dict], events: list[dict]) -> None:
    """One PNG: a J-per-frame panel per object (one line per run) and a memory panel per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(results)
    objs = sorted(results[runs[0]]["objects"], key=int)
    memory_runs: list[str] = []  # one memory row per distinct memory history (an oracle's is FIFO's)
    for r in runs:
        held = [c["memory"] for c in results[r]["clips"]]
        if all(held != [c["memory"] for c in results[m]["clips"]] for m in memory_runs):
            memory_runs.append(r)
    rows = len(objs) + len(memory_runs)
    fig, axes = plt.subplots(rows, 1, figsize=(9, 1.35 * rows + 0.4), sharex=True, squeeze=False)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for r, obj in enumerate(objs):
        ax = axes[r, 0]
        first = results[runs[0]]["objects"][obj]
        gt = np.array(first["gt_area"])
        for t in np.flatnonzero(gt == 0):
            ax.axvspan(t - 0.5, t + 0.5, color="0.85", lw=0)
        for e in events:
            if str(e["object"]) in (obj, "0"):  # 0: the whole frame (the second suite's zoom, blur)
                ax.axvspan(e["start"], e["end"], color="gold", alpha=0.25, lw=0)
                ax.text(e["start"], 1.02, e["type"], fontsize=6, va="bottom")
        for k, run in enumerate(runs):
            o = results[run]["objects"][obj]
            ax.plot(o["J"], color=colors[k % len(colors)], lw=0.8, label=f"{run} (J_tr {100 * o['J_tr']:.0f})")
            for ev in o["losses"]:
                ax.plot(
                    [ev["frame"]],
                    [-0.06 - 0.05 * k],
                    marker="v" if ev["back_at"] is None else "^",
                    color=colors[k % len(colors)],
                    ms=5,
                )
        size = 100 * gt[gt > 0].mean() / results[runs[0]]["pixels"] if (gt > 0).any() else 0.0
        ax.set_ylim(-0.08 - 0.05 * len(runs), 1.12)
        ax.set_ylabel(f"obj {obj}\nJ", fontsize=7)
        ax.set_title(f"{name} object {obj} ({size:.2f} % of frame)", fontsize=7, loc="left", pad=2)
        ax.legend(
            fontsize=6,
            loc="lower right",
            bbox_to_anchor=(1.0, 0.98),
            ncol=len(runs),
            frameon=False,
            borderaxespad=0.0,
            handlelength=1.5,
        )
        ax.tick_params(labelsize=6)
    for k, run in enumerate(memory_runs):
        ax = axes[len(objs) + k, 0]
        clips = results[run]["clips"]
        xs, ys = [], []
        for c in clips:
            for f in c["memory"]:
                if f is not None:
                    xs.append(c["frames"][0])
                    ys.append(f)
        ax.scatter(xs, ys, s=0.6, color=colors[runs.index(run) % len(colors)], lw=0)
        ax.set_ylabel(f"{run}\nmemory\nframe", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[-1, 0].set_xlabel(
        "frame.  J rows: grey = object absent, yellow = event, \u25bc lost for good, "
        "\u25b2 lost and back.  Memory rows: the frames held when that clip was segmented",
        fontsize=7,
    )
    fig.tight_layout(h_pad=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=80)
    plt.close(fig)
    from PIL import Image  # a 256-colour palette: a third of the size, the same look

    Image.open(buf).convert("RGB").quantize(256).save(path, optimize=True)


def parse_run(text: str) -> tuple[str, dict]:
    name, _, settings = text.partition(":")
    return name, dict(item.split("=", 1) for item in settings.split(",") if item)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=("first", "second"), default="first", help="as accuracy.py's --suite")
    parser.add_argument(
        "--work", type=Path, default=None, help="folder of accuracy.py's data (runs/accuracy, runs/accuracy-second)"
    )
    parser.add_argument("--seed", type=int, default=None, help="default 20261125; second suite 20261204")
    parser.add_argument("--num", type=int, default=None, help="first N videos of the suite only (quick runs)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped model")
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="NAME[:KEY=VALUE,...]",
        help="inference settings to trace (repeat to compare); default: fifo",
    )
    parser.add_argument("--videos", default=None, help="comma-separated names (default: long + small-object)")
    parser.add_argument("--min-length", type=int, default=None, help="long videos (default 300; second suite 144)")
    parser.add_argument("--max-size", type=float, default=1.0, help="small objects: mean area below this %%")
    parser.add_argument("--plots", type=Path, default=None, help="write <video>.png here")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from tamvt.commands.synth import write_dataset
    from tamvt.data.registry import read_dataset
    from tamvt.data.synthetic import preset_suite
    from tamvt.evaluation.refound import refound_events
    from tamvt.evaluation.report import load_attributes
    from tamvt.inference.predictor import Predictor

    second = args.suite == "second"
    args.work = args.work or Path("runs/accuracy-second" if second else "runs/accuracy")
    args.min_length = args.min_length or (144 if second else 300)
    data = args.work / "data"
    if second:
        import importlib.util

        spec = importlib.util.spec_from_file_location(
            "second_suite", Path(__file__).resolve().parent / "second_suite.py"
        )
        suite2 = sys.modules["second_suite"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(suite2)
        args.seed = suite2.DEFAULT_SEED if args.seed is None else args.seed
        attributes = suite2.load_suite_attributes(data)
        if attributes is None or attributes.get("seed") != args.seed:
            attributes = suite2.write_suite(data, seed=args.seed, num=args.num, overwrite=True)
        videos = attributes["videos"]
    else:
        args.seed = 20261125 if args.seed is None else args.seed
        if not (data / "attributes.json").is_file():
            write_dataset(data, preset_suite("val", seed=args.seed, num=args.num), overwrite=True)
        videos = load_attributes(data)["videos"]
    if args.videos:
        names = args.videos.split(",")
    else:
        names = [
            n
            for n, v in videos.items()
            if v["length"] >= args.min_length
            or any(0 < o["area_pct_mean"] < args.max_size for o in v["objects"].values())
            or any(o.get("invisible") for o in v["objects"].values())
        ]
    sequences = [s for s in read_dataset("davis", data, "val") if s.name in names]
    if args.checkpoint is None:
        from tamvt.checkpoint import shipped_model_path

        args.checkpoint = shipped_model_path()
    runs = [parse_run(r) for r in args.run] or [("fifo", {})]

    report: dict[str, dict] = {}
    for run, settings in runs:
        oracle = str(settings.pop("oracle_memory", "false")).lower() in ("1", "true", "yes")
        checkpoint = settings.pop("checkpoint", args.checkpoint)
        predictor = Predictor.from_checkpoint(
            checkpoint, config_overrides=[f"inference.{k}={v}" for k, v in settings.items()]
        )
        for seq in sequences:
            traces, clips = trace_video(predictor, seq, oracle)
            memory_at = {f: c["memory"] for c in clips for f in c["frames"]}
            meta = videos[seq.name]
            objs = {}
            for obj, tr in traces.items():
                ref = seq.objects[obj]
                objs[str(obj)] = {
                    "J": tr.j,
                    "J_tr": j_tr(tr.j),
                    "J_mean": float(np.mean(tr.j[1:-1])),
                    "gt_area": tr.gt_area,
                    "pred_area": tr.pred_area,
                    "conf": tr.conf,
                    "size_pct": meta["objects"][str(obj)]["area_pct_mean"],
                    "losses": losses(tr, ref, meta["events"], memory_at, obj),
                    "refound": [
                        {"frame": e.frame, "absent": e.absent, "found": e.found, "delay": e.delay}
                        for e in refound_events(scored_j(tr.j), np.array(tr.gt_area) > 0)
                    ],
                    **error_split(tr, memory_at, ref),
                }
                if oracle:  # the memory held ground truth, not the predictions scored here
                    objs[str(obj)]["memory_J"] = 1.0
            report.setdefault(seq.name, {})[run] = {
                "objects": objs,
                "clips": clips,
                "oracle": oracle,
                "pixels": seq.size[0] * seq.size[1],
            }
            print(
                f"[{run}] {seq.name} ({len(seq)} frames): "
                + ", ".join(f"obj {o} J_tr {100 * v['J_tr']:.1f}" for o, v in objs.items()),
                flush=True,
            )

    print_summary(report, videos, args.min_length, args.max_size)
    print(f"\nlosses: visible and J < {LOST_J} on >= {LOST_RUN} frames; back: J >= {BACK_J} on {BACK_RUN} frames")
    for name, by_run in report.items():
        for run, res in by_run.items():
            for obj, o in res["objects"].items():
                for ev in o["losses"]:
                    back = f"back at {ev['back_at']}" if ev["back_at"] is not None else "never back"
                    print(
                        f"[{run}] {name} obj {obj} ({o['size_pct']:.2f} %): lost at {ev['frame']} ({back}); "
                        f"pred on {ev['where']} (pred/gt area {ev['pred/gt area']}), gt area vs ref "
                        f"{ev['gt area vs ref']}, after occlusion {ev['after occlusion']}, events {ev['events']}; "
                        f"memory {ev['memory']} ({ev['bad memory']}/{ev['recent memory']} recent with J<{BACK_J}, "
                        f"span {ev['memory span']} frames, ref {ev['ref distance']} frames back)"
                    )
    if args.plots:
        args.plots.mkdir(parents=True, exist_ok=True)
        for name, by_run in report.items():
            plot_video(args.plots / f"{name}.png", name, by_run, videos[name]["events"])
        print(f"plots in {args.plots}")
    if args.json:
        args.json.write_text(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
