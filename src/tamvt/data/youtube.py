"""YouTube-VOS reader.

Layout::

    <root>/<split>/JPEGImages/<vid>/<fid>.jpg
    <root>/<split>/Annotations/<vid>/<fid>.png
    <root>/<split>/meta.json   {"videos": {vid: {"objects": {"1": {"category": .., "frames": [fid, ..]}}}}}
    <root>/<split>_all_frames/JPEGImages/<vid>/<fid>.jpg   (optional, every frame)

Unlike DAVIS, objects may first appear mid-video and ids need not be contiguous. Annotations
are sparse: every 5th frame in ``train``, only each object's first appearance in ``valid``.
``objects[id]`` is the index of the object's first listed frame, which must have a mask.
There is no void id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tamvt.data.davis import check_mask_matches_frame, check_root, match_masks
from tamvt.data.images import list_frame_files, list_mask_files, natural_key
from tamvt.data.palette import read_index_png
from tamvt.data.sequence import VideoSequence
from tamvt.errors import InputError


def _split_dir(root: Path, split: str) -> Path:
    # The official archives name the validation split "valid"; accept "val" for it.
    if split == "val" and not (root / "val").is_dir() and (root / "valid").is_dir():
        split = "valid"
    path = root / split
    if not path.is_dir():
        raise InputError(path, "split folder not found")
    return path


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(path, "meta.json not found")
    try:
        videos = json.loads(path.read_text())["videos"]
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(path, f"not valid JSON ({err})") from None
    except (KeyError, TypeError):
        raise InputError(path, 'no "videos" object') from None
    if not isinstance(videos, dict) or not videos:
        raise InputError(path, "lists no videos")
    return videos


def _objects(
    meta_path: Path, vid: str, entry: Any, frame_index: dict[str, int], masks: dict[int, Path], ann_dir: Path
) -> tuple[dict[int, int], dict[int, Any]]:
    """``({object id: first frame index}, {object id: category})`` of one meta.json video entry."""
    try:
        items = entry["objects"].items()
    except (KeyError, TypeError, AttributeError):
        raise InputError(meta_path, f'video {vid}: no "objects"') from None
    objects: dict[int, int] = {}
    categories: dict[int, Any] = {}
    for key, obj in items:
        if not str(key).isdigit() or not 1 <= int(key) <= 254:
            raise InputError(meta_path, f"video {vid}: object id {key!r} is not an integer in 1..254")
        fids = obj.get("frames") if isinstance(obj, dict) else None
        if not fids:
            raise InputError(meta_path, f"video {vid}: object {key} lists no frames")
        first = min((str(f) for f in fids), key=natural_key)
        if first not in frame_index:
            raise InputError(meta_path, f"video {vid}: object {key} starts at frame {first}, which has no image")
        if frame_index[first] not in masks:
            raise InputError(ann_dir / f"{first}.png", f"first annotation of object {key} not found")
        objects[int(key)] = frame_index[first]
        categories[int(key)] = obj.get("category")
    if not objects:
        raise InputError(meta_path, f"video {vid} has no objects")
    order = sorted(objects)
    return {k: objects[k] for k in order}, {k: categories[k] for k in order}


def read_youtube(
    root: str | Path, split: str = "val", all_frames: bool = False, sequences: list[str] | None = None
) -> list[VideoSequence]:
    """Read the videos of a YouTube-VOS split (``train``, ``valid``/``val``, ``test``), sorted by id.

    ``all_frames``: take frames from ``<split>_all_frames/JPEGImages`` (every frame; the masks
    stay the sparse ones). ``sequences``: read only these video ids.
    ``extra["categories"]`` maps object id -> category name from meta.json.
    """
    root = check_root(root)
    split_dir = _split_dir(root, split)
    meta_path = split_dir / "meta.json"
    videos = _read_meta(meta_path)
    frames_root = root / f"{split_dir.name}_all_frames" / "JPEGImages" if all_frames else split_dir / "JPEGImages"
    if not frames_root.is_dir():
        raise InputError(frames_root, "frame folder not found")
    out = []
    for vid in sequences if sequences is not None else sorted(videos):
        if vid not in videos:
            raise InputError(meta_path, f"video {vid} is not listed")
        frames = list_frame_files(frames_root / vid)
        if not frames:
            raise InputError(frames_root / vid, "no frames (jpg/png) in the video folder")
        ann_dir = split_dir / "Annotations" / vid
        if not ann_dir.is_dir():
            raise InputError(ann_dir, "annotation folder not found")
        masks = match_masks(frames, list_mask_files(ann_dir))
        frame_index = {p.stem: i for i, p in enumerate(frames)}
        objects, categories = _objects(meta_path, vid, videos[vid], frame_index, masks, ann_dir)
        first = min(objects.values())
        mask, _ = read_index_png(masks[first])
        check_mask_matches_frame(masks[first], mask.shape, frames[first])
        out.append(
            VideoSequence(
                name=vid,
                frame_names=tuple(p.stem for p in frames),
                frame_paths=tuple(frames),
                video_path=None,
                mask_paths=masks,
                objects=objects,
                size=(int(mask.shape[0]), int(mask.shape[1])),
                void_id=None,
                extra={"categories": categories},
            )
        )
    return out
