"""Reports of an :class:`EvalResult`: subset breakdowns, console table, per-object CSV, JSON.

Subsets (each a set of objects; a subset with no object is left out):

- ``length<100``, ``length100-299``, ``length>=300``: frames in the video (annotated or not);
  ``LNG`` (the VOST paper's long videos): longer than 20 s, when the length in seconds is known
  (the reader's ``extra["fps"]``, VOST's 5 fps annotations, or ``attributes.json``'s fps).
- ``size<1%``, ``size<0.5%`` (the paper's SM), ``size<0.3%``, ``size<0.05%``: mean ground-truth
  area over the annotated frames where the object is present, in % of the frame area.
- ``multi_instance`` (the paper's MI): ``attributes.json`` says >= 2 instances of the object's
  kind (or, without per-object data, the video is tagged ``multi_instance``).
- ``tag:<t>``: objects of the videos that ``attributes.json`` tags with ``t`` (cut, peel, ...).
- ``visor:seen`` / ``visor:unseen``: from the VISOR reader's ``extra["visor_split"]``.

JSON values are fractions in [0, 1] (decays may be negative) as plain floats at full precision;
NaN (an object with no evaluated frame) is written as ``null``. ``per_frame`` (one entry per
``per_object`` entry, same order) holds the evaluated frame names and their J and F.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tamvt.atomic import write_text_atomic
from tamvt.errors import InputError
from tamvt.evaluation.evaluate import SCORE_KEYS, EvalResult, mean_scores

LENGTH_BUCKETS: tuple[tuple[str, int, float], ...] = (
    ("length<100", 0, 100),
    ("length100-299", 100, 300),
    ("length>=300", 300, math.inf),
)
LONG_SECONDS = 20.0
SIZE_THRESHOLDS: tuple[tuple[str, float], ...] = (
    ("size<1%", 1.0), ("size<0.5%", 0.5), ("size<0.3%", 0.3), ("size<0.05%", 0.05),
)  # fmt: skip


# what tamvt's synthetic generator writes (tamvt.data.synthetic.dataset.write_dataset)
ATTRIBUTES_GENERATOR, ATTRIBUTES_VERSION = "tamvt.synthetic", 1


def load_attributes(gt_root: str | Path, warn: Callable[[str], None] | None = None) -> dict[str, Any] | None:
    """``<gt_root>/attributes.json`` as written by ``tamvt synth``, or None when absent.

    A file tamvt did not write (another tool's: no ``"generator": "tamvt.synthetic"``, or a newer
    ``format_version``) is not read: ``warn`` (default :func:`warnings.warn`) is called once and the
    result is None. A file of ours that is broken is an :class:`InputError`."""
    path = Path(gt_root) / "attributes.json"
    if not path.is_file():
        return None
    why: str | None
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        data, why = None, f"not JSON: {err}"
    else:
        why = _foreign(data)
    if why is not None:
        message = (
            f"{path} was not written by tamvt's synthetic generator ({why}); ignored: no subsets "
            "from it (tags, multi-instance, fps)"
        )
        if warn is None:
            warnings.warn(message, stacklevel=2)
        else:
            warn(message)
        return None
    try:
        videos = data["videos"]
        if not isinstance(videos, dict):
            raise TypeError("'videos' is not an object")
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(path, f"not a valid attributes file ({err})") from None
    return data


def _foreign(data: Any) -> str | None:
    """Why ``data`` is not an attributes file this tamvt wrote; None when it is."""
    if not isinstance(data, dict) or data.get("generator") != ATTRIBUTES_GENERATOR:
        return f'no "generator": "{ATTRIBUTES_GENERATOR}"'
    if data.get("format_version") != ATTRIBUTES_VERSION:
        return f"format_version {data.get('format_version')!r}; this tamvt reads {ATTRIBUTES_VERSION}"
    return None


def subsets(result: EvalResult, attributes: Mapping[str, Any] | None = None) -> dict[str, list[int]]:
    """Subset name -> indices into ``result.objects`` (only non-empty subsets)."""
    videos = (attributes or {}).get("videos", {})
    members: dict[str, list[int]] = {}

    def add(name: str, idx: int) -> None:
        members.setdefault(name, []).append(idx)

    idx = 0
    for seq in result.sequences:
        video = videos.get(seq.name, {})
        duration = seq.duration_s
        if duration is None and video.get("fps"):
            duration = seq.num_frames / float(video["fps"])
        for obj in seq.objects:
            for name, lo, hi in LENGTH_BUCKETS:
                if lo <= seq.num_frames < hi:
                    add(name, idx)
            if duration is not None and duration > LONG_SECONDS:
                add("LNG", idx)
            pct = 100.0 * obj.area_frac
            for name, thr in SIZE_THRESHOLDS:
                if pct < thr:  # NaN (never present) is in no size subset
                    add(name, idx)
            info = video.get("objects", {}).get(str(obj.object))
            if info is not None and "instances_of_kind" in info:
                if int(info["instances_of_kind"]) >= 2:
                    add("multi_instance", idx)
            elif "multi_instance" in video.get("tags", ()):
                add("multi_instance", idx)
            for tag in video.get("tags", ()):
                add(f"tag:{tag}", idx)
            split = seq.extra.get("visor_split")
            if split:
                add(f"visor:{split}", idx)
            idx += 1
    fixed = [n for n, _, _ in LENGTH_BUCKETS] + ["LNG"] + [n for n, _ in SIZE_THRESHOLDS] + ["multi_instance"]
    rank = {n: i for i, n in enumerate(fixed)}
    return dict(sorted(members.items(), key=lambda kv: (rank.get(kv[0], len(fixed)), kv[0])))


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def to_json(result: EvalResult, attributes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"protocol", "global", "per_object": [...], "subsets": {name: {"num_objects", ...}}, "warnings",
    "per_frame": [{"sequence", "object", "frames": [names], "J": [...], "F": [...]}]}``."""
    scores = result.object_scores
    per_object = [
        {"sequence": o.sequence, "object": o.object, "num_frames": len(o.frames), **{k: _num(s[k]) for k in SCORE_KEYS}}
        for o, s in zip(result.objects, scores, strict=True)
    ]
    subs = {
        name: {"num_objects": len(ids), **{k: _num(v) for k, v in mean_scores([scores[i] for i in ids]).items()}}
        for name, ids in subsets(result, attributes).items()
    }
    return {
        "protocol": result.protocol,
        "global": {k: _num(v) for k, v in result.global_scores().items()},
        "per_object": per_object,
        "subsets": subs,
        "warnings": list(result.warnings),
        "per_frame": [
            {
                "sequence": o.sequence,
                "object": o.object,
                "frames": list(o.frames),
                "J": [_num(v) for v in o.j.tolist()],
                "F": [_num(v) for v in o.f.tolist()],
            }
            for o in result.objects
        ],
    }


def write_json(path: str | Path, result: EvalResult, attributes: Mapping[str, Any] | None = None) -> None:
    write_text_atomic(path, json.dumps(to_json(result, attributes), indent=2) + "\n", make_parents=False)


def write_csv(path: str | Path, result: EvalResult) -> None:
    """One row per object: sequence, object, evaluated frames, mean area %, then every score."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["sequence", "object", "num_frames", "area_pct", *SCORE_KEYS])
    for o, s in zip(result.objects, result.object_scores, strict=True):
        area = "" if math.isnan(o.area_frac) else repr(100.0 * o.area_frac)
        w.writerow(
            [o.sequence, o.object, len(o.frames), area, *("" if math.isnan(s[k]) else repr(s[k]) for k in SCORE_KEYS)]
        )
    write_text_atomic(path, buf.getvalue(), make_parents=False)


TABLE_KEYS: tuple[str, ...] = (
    "J&F-Mean",
    "J-Mean",
    "J-Recall",
    "J-Decay",
    "F-Mean",
    "F-Recall",
    "F-Decay",
    "J_tr-Mean",
)


TableRow = tuple[str, int, Mapping[str, float]]  # name, number of objects, scores


def table_rows(
    result: EvalResult, attributes: Mapping[str, Any] | None = None
) -> tuple[TableRow, list[TableRow], list[TableRow]]:
    """The global row, one row per sequence (mean of its objects) and one per subset."""
    scores = result.object_scores
    start = 0
    seq_rows: list[TableRow] = []
    for seq in result.sequences:
        n = len(seq.objects)
        seq_rows.append((seq.name, n, mean_scores(scores[start : start + n])))
        start += n
    sub_rows: list[TableRow] = [
        (name, len(ids), mean_scores([scores[i] for i in ids])) for name, ids in subsets(result, attributes).items()
    ]
    return ("GLOBAL", len(scores), result.global_scores()), seq_rows, sub_rows


def format_table(result: EvalResult, attributes: Mapping[str, Any] | None = None) -> str:
    """Console table in %: the global row, one row per sequence (mean of its objects), the subsets."""
    heads = [k.replace("-Mean", "").replace("-Recall", "-R").replace("-Decay", "-D") for k in TABLE_KEYS]
    global_row, seq_rows, sub_rows = table_rows(result, attributes)
    rows: list[TableRow] = [global_row]
    width = max([len(r[0]) for r in rows + seq_rows + sub_rows] + [8])

    def fmt(row: tuple[str, int, Mapping[str, float]]) -> str:
        vals = ("   -  " if math.isnan(row[2][k]) else f"{100 * row[2][k]:6.1f}" for k in TABLE_KEYS)
        return f"{row[0]:<{width}} {row[1]:>4} " + " ".join(f"{v:>7}" for v in vals)

    header = f"{'(%)':<{width}} {'objs':>4} " + " ".join(f"{h:>7}" for h in heads)
    lines = [f"protocol: {result.protocol}", header, fmt(rows[0]), "-" * len(header)]
    lines += [fmt(r) for r in seq_rows]
    if sub_rows:
        lines += ["-" * len(header), *(fmt(r) for r in sub_rows)]
    return "\n".join(lines)
