"""Score a prediction folder against a dataset's ground truth, one process per sequence.

The prediction folder holds ``<pred>/<sequence>/<frame name>.png`` index PNGs (a YouTube-VOS
submission layout ``<pred>/Annotations/<sequence>/...`` is accepted too). Each ground-truth and
prediction PNG is decoded once; every object of the frame is scored from that decode.

Prediction ids that are not ground-truth objects (e.g. id 3 when the first frame has objects
1..2, or 255) are ignored with a warning naming the sequence, frame and id, like the VOST
toolkit (the DAVIS toolkit aborts instead).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tamvt.data.palette import read_index_png
from tamvt.data.sequence import VideoSequence
from tamvt.errors import InputError
from tamvt.evaluation.metrics import bound_pix, boundary_f, db_statistics, j_tr_values, region_similarity
from tamvt.evaluation.protocols import check_protocol, frames_needed, make_plan, to_labels

VOST_ANNOTATION_FPS = 5.0

# Keys of every score dict, in report order. J_tr-Recall / J_tr-Decay are VOST's extras.
SCORE_KEYS: tuple[str, ...] = (
    "J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay",
    "J_tr-Mean", "J_tr-Recall", "J_tr-Decay",
)  # fmt: skip


@dataclass(frozen=True)
class ObjectResult:
    """Per-frame scores of one object.

    Attributes:
        sequence: sequence name.
        object: object id.
        frames: names of the evaluated frames, ``(N,)``.
        j: per-frame J, float64 ``(N,)``; f: per-frame F, float64 ``(N,)``.
        area_frac: mean ground-truth area / frame area over the annotated frames where the object
            is present (all annotated frames, evaluated or not); NaN if it never is.
    """

    sequence: str
    object: int
    frames: tuple[str, ...]
    j: np.ndarray
    f: np.ndarray
    area_frac: float

    def scores(self) -> dict[str, float]:
        """Mean / recall / decay of J, F and J_tr, and J&F-Mean = (J-Mean + F-Mean) / 2."""
        jm, jr, jd = db_statistics(self.j)
        fm, fr, fd = db_statistics(self.f)
        tm, tr, td = db_statistics(j_tr_values(self.j))
        return {
            "J&F-Mean": (jm + fm) / 2, "J-Mean": jm, "J-Recall": jr, "J-Decay": jd,
            "F-Mean": fm, "F-Recall": fr, "F-Decay": fd,
            "J_tr-Mean": tm, "J_tr-Recall": tr, "J_tr-Decay": td,
        }  # fmt: skip


@dataclass(frozen=True)
class SequenceResult:
    """All objects of one sequence, plus what the subset breakdowns need.

    Attributes:
        name: sequence name; num_frames: frames in the video (annotated or not);
        size: ``(H, W)``; duration_s: video length in seconds when known (the reader's
        ``extra["fps"]``; for VOST, annotated frames / 5 fps); extra: the reader's metadata;
        objects: one result per scored object; warnings: one line each (unknown prediction ids).
    """

    name: str
    num_frames: int
    size: tuple[int, int]
    duration_s: float | None
    extra: Mapping[str, Any]
    objects: tuple[ObjectResult, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalResult:
    """The evaluation of a whole prediction folder, sequences in dataset order."""

    protocol: str
    sequences: tuple[SequenceResult, ...]
    object_scores: tuple[dict[str, float], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "object_scores", tuple(o.scores() for o in self.objects))

    @property
    def objects(self) -> tuple[ObjectResult, ...]:
        return tuple(o for s in self.sequences for o in s.objects)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for s in self.sequences for w in s.warnings)

    def global_scores(self) -> dict[str, float]:
        """Means over all objects (every object weighs the same, whatever its sequence)."""
        return mean_scores(self.object_scores)


def mean_scores(scores: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean of each key over objects (NaN-skipping: an object with no evaluated frame is left out).

    J&F-Mean is (mean J-Mean + mean F-Mean) / 2, the toolkit's formula.
    """
    out: dict[str, float] = {}
    for key in SCORE_KEYS:
        vals = np.array([s[key] for s in scores], dtype=np.float64)
        vals = vals[~np.isnan(vals)]
        out[key] = float(np.mean(vals)) if vals.size else math.nan
    out["J&F-Mean"] = (out["J-Mean"] + out["F-Mean"]) / 2
    return out


def prediction_dir(pred_root: Path, name: str) -> Path:
    """``<pred>/<name>``, or ``<pred>/Annotations/<name>`` (YouTube-VOS submission layout)."""
    direct = pred_root / name
    if not direct.is_dir() and (pred_root / "Annotations" / name).is_dir():
        return pred_root / "Annotations" / name
    return direct


def check_predictions(sequences: Iterable[VideoSequence], pred_root: Path, protocol: str) -> None:
    """Fail early, naming the path, when a sequence folder or a needed frame PNG is missing."""
    if not pred_root.is_dir():
        raise InputError(pred_root, "prediction folder not found")
    for seq in sequences:
        folder = prediction_dir(pred_root, seq.name)
        if not folder.is_dir():
            raise InputError(folder, f"no prediction folder for sequence {seq.name!r}")
        present = set(os.listdir(folder))
        missing = [
            seq.frame_names[i] for i in frames_needed(protocol, seq) if f"{seq.frame_names[i]}.png" not in present
        ]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise InputError(folder / f"{missing[0]}.png", f"prediction frame missing{more}")


def _read_prediction(path: Path, size: tuple[int, int]) -> np.ndarray:
    pred, _ = read_index_png(path)
    if pred.shape != tuple(size):
        raise InputError(
            path, f"prediction size {pred.shape[1]}x{pred.shape[0]} != ground-truth size {size[1]}x{size[0]}"
        )
    return pred


def _unknown_ids(pred: np.ndarray, objects: tuple[int, ...]) -> list[int]:
    """Ids > 0 in ``pred (H, W)`` that are not in ``objects``; fast path for ids 1..K."""
    k = len(objects)
    if objects == tuple(range(1, k + 1)) and int(pred.max(initial=0)) <= k:
        return []
    present = np.flatnonzero(np.bincount(pred.ravel(), minlength=256))
    known = set(objects)
    return [int(i) for i in present if i != 0 and i not in known]


def evaluate_sequence(seq: VideoSequence, pred_dir: Path, protocol: str) -> SequenceResult:
    """Score one sequence; ``pred_dir`` holds ``<frame name>.png``. Raises InputError on bad files."""
    annotated = seq.annotated
    duration = _duration(seq, protocol)
    if not annotated:
        return SequenceResult(seq.name, len(seq), (seq.size[0], seq.size[1]), duration, dict(seq.extra), ())
    first = to_labels(seq.read_mask(annotated[0]), seq.void_id)
    plan = make_plan(protocol, seq, first)
    objects = plan.objects
    scored = {k: set(plan.frames[k]) for k in objects}
    needed = set(plan.all_frames)
    bound = bound_pix(seq.size)
    j: dict[int, list[float]] = {k: [] for k in objects}
    f: dict[int, list[float]] = {k: [] for k in objects}
    names: dict[int, list[str]] = {k: [] for k in objects}
    area_sum = dict.fromkeys(objects, 0)
    area_n = dict.fromkeys(objects, 0)
    unknown: dict[int, list[str]] = {}  # id -> frames where the prediction has it
    for a in annotated:
        gt = first if a == annotated[0] else to_labels(seq.read_mask(a), seq.void_id)
        gt_masks = {k: gt == k for k in objects}
        for k, m in gt_masks.items():
            n = int(np.count_nonzero(m))
            if n:
                area_sum[k] += n
                area_n[k] += 1
        if a not in needed:
            continue
        name = seq.frame_names[a]
        pred = _read_prediction(pred_dir / f"{name}.png", seq.size)
        for i in _unknown_ids(pred, objects):
            unknown.setdefault(i, []).append(name)
        for k in objects:
            if a in scored[k]:
                p = pred == k
                j[k].append(region_similarity(gt_masks[k], p))
                f[k].append(boundary_f(gt_masks[k], p, bound))
                names[k].append(name)
    pixels = seq.size[0] * seq.size[1]
    results = tuple(
        ObjectResult(
            seq.name, k, tuple(names[k]), np.asarray(j[k], dtype=np.float64), np.asarray(f[k], dtype=np.float64),
            area_sum[k] / area_n[k] / pixels if area_n[k] else math.nan,
        )
        for k in objects
    )  # fmt: skip
    warns = tuple(
        f"{seq.name}: frame {frames[0]}: prediction id {i} is not a ground-truth object "
        f"(objects: {', '.join(map(str, objects)) or 'none'}); ignored"
        + (f" (also in {len(frames) - 1} more frames)" if len(frames) > 1 else "")
        for i, frames in sorted(unknown.items())
    )
    return SequenceResult(seq.name, len(seq), (seq.size[0], seq.size[1]), duration, dict(seq.extra), results, warns)


def _duration(seq: VideoSequence, protocol: str) -> float | None:
    fps = seq.extra.get("fps")
    if fps:
        return len(seq) / float(fps)
    if protocol == "vost":  # VOST annotates at 5 fps whatever frame folder was read
        return len(seq.annotated) / VOST_ANNOTATION_FPS
    return None


def _job(seq: VideoSequence, pred_dir: Path, protocol: str) -> SequenceResult | tuple[str, str]:
    """Worker entry: an InputError comes back as ``(path, problem)`` (it does not pickle)."""
    try:
        return evaluate_sequence(seq, pred_dir, protocol)
    except InputError as err:
        return (str(err.path), err.problem)


def evaluate(
    sequences: Sequence[VideoSequence], pred_root: str | Path, protocol: str, workers: int | None = None
) -> EvalResult:
    """Score every sequence of ``sequences`` against ``pred_root``.

    ``workers``: processes (default: CPU count); 1 evaluates in this process.
    """
    check_protocol(protocol)
    pred_root = Path(pred_root)
    check_predictions(sequences, pred_root, protocol)
    jobs = [(seq, prediction_dir(pred_root, seq.name), protocol) for seq in sequences]
    workers = min(workers or _cpu_count(), len(jobs))
    if workers <= 1:
        return EvalResult(protocol, tuple(evaluate_sequence(*job) for job in jobs))
    # biggest sequences first, so that no worker is left alone with a long one at the end
    order = sorted(range(len(jobs)), key=lambda i: -_cost(protocol, jobs[i][0]))
    outs: list[SequenceResult | tuple[str, str] | None] = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {i: pool.submit(_job, *jobs[i]) for i in order}
        for i in order:
            out = outs[i] = futures[i].result()
            if isinstance(out, tuple):  # bad input: stop, report it
                pool.shutdown(wait=True, cancel_futures=True)
                raise InputError(*out)
    return EvalResult(protocol, tuple(outs))  # type: ignore[arg-type]


def _cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def _cost(protocol: str, seq: VideoSequence) -> int:
    """Rough work of a sequence: scored frames x objects."""
    return len(frames_needed(protocol, seq)) * max(len(seq.objects), 1)
