"""The list ``tamvt batch`` segments: a CSV manifest (``video``, ``mask`` or ``box``, optional ``frame``
and ``name``; paths relative to its folder) or a folder of videos with same-named masks, read into
:class:`Entry` records. Everything wrong with the list itself is an :class:`InputError` raised before
any work."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from tamvt.errors import InputError


@dataclass(frozen=True)
class Entry:
    """One video to segment. ``where``: the manifest line (or file) it comes from, for messages."""

    name: str
    video: Path
    mask: Path | None
    boxes: tuple[tuple[float, float, float, float], ...]
    frame: int
    where: str


def read_manifest(path: Path) -> list[Entry]:
    """The entries of a CSV manifest or a folder; :class:`InputError` for a manifest that is wrong in
    itself (missing, no ``video`` column, a bad row, two entries with one name)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "manifest not found")
    entries = read_folder(path) if path.is_dir() else read_csv(path)
    if not entries:
        raise InputError(path, "manifest lists no video")
    seen: dict[str, Entry] = {}
    for e in entries:
        if e.name in seen:
            raise InputError(path, f"two entries named {e.name!r}: {seen[e.name].where} and {e.where}")
        seen[e.name] = e
    return entries


def read_csv(path: Path) -> list[Entry]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot read the manifest: {err}") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    if "video" not in columns:
        raise InputError(path, f"the header has no 'video' column (got: {', '.join(columns) or 'nothing'})")
    if "mask" not in columns and "box" not in columns:
        raise InputError(path, "the header needs a 'mask' or a 'box' column")
    base = path.parent
    entries = []
    for row in reader:
        where = f"{path.name} line {reader.line_num}"
        cells = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        if not any(cells.values()):
            continue  # a blank line
        video = cells.get("video", "")
        if not video:
            raise InputError(path, f"{where}: no video")
        mask, box = cells.get("mask", ""), cells.get("box", "")
        if bool(mask) == bool(box):
            raise InputError(path, f"{where}: give a mask or a box (one of them)")
        frame_text = cells.get("frame", "") or "0"
        try:
            frame = int(frame_text)
        except ValueError:
            raise InputError(path, f"{where}: frame must be an integer, got {frame_text!r}") from None
        if frame < 0:
            raise InputError(path, f"{where}: frame must be >= 0, got {frame}")
        video_path = base / video
        name = cells.get("name", "") or video_path.stem
        check_name(path, where, name)
        boxes = parse_boxes(path, where, box) if box else ()
        entries.append(Entry(name, video_path, base / mask if mask else None, boxes, frame, where))
    return entries


def read_folder(folder: Path) -> list[Entry]:
    """Every video file (a suffix of ``VIDEO_SUFFIXES``) or sub-folder that has a mask ``<stem>.png``
    beside it; a video file without one is an error (a sub-folder without one is not a video)."""
    from tamvt.data.video import VIDEO_SUFFIXES

    entries = []
    for item in sorted(folder.iterdir()):
        if item.name.startswith("."):
            continue
        mask = item.parent / f"{item.stem if item.is_file() else item.name}.png"
        if item.is_file() and item.suffix.lower() in VIDEO_SUFFIXES:
            if not mask.is_file():
                raise InputError(item, f"has no mask {mask.name} beside it")
        elif not (item.is_dir() and mask.is_file()):
            continue
        name = item.stem if item.is_file() else item.name
        check_name(folder, item.name, name)
        entries.append(Entry(name, item, mask, (), 0, item.name))
    return entries


def check_name(manifest: Path, where: str, name: str) -> None:
    """An entry's name becomes a folder of OUT: one plain, visible folder name."""
    if name in ("", ".", "..") or name.startswith(".") or any(c in name for c in "/\\\0") or name == "summary.csv":
        raise InputError(manifest, f"{where}: {name!r} cannot name an output folder")


def parse_boxes(manifest: Path, where: str, text: str) -> tuple[tuple[float, float, float, float], ...]:
    """``"X0,Y0,X1,Y1; X0,Y0,X1,Y1"`` -> the boxes (ids 1, 2, ... in this order)."""
    boxes = []
    for part in text.split(";"):
        try:
            values = tuple(float(v) for v in part.split(","))
        except ValueError:
            values = ()
        if len(values) != 4:
            raise InputError(manifest, f"{where}: a box is X0,Y0,X1,Y1 (several separated by ';'), got {part!r}")
        boxes.append(values)
    if len(boxes) > 255:
        raise InputError(manifest, f"{where}: {len(boxes)} boxes; at most 255 objects")
    return tuple(boxes)
