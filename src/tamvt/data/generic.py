"""The user's own video: a folder of frames or a video file, plus one index-PNG mask.

Every non-zero id of the mask is an object (no void id by default: a 0/255 binary mask means
one object with id 255). The mask's palette is kept in ``extra["palette"]`` so outputs can
reuse it (``None`` for a gray mask: outputs then use the DAVIS palette).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tamvt.data.images import read_image_size
from tamvt.data.palette import read_index_png
from tamvt.data.sequence import VideoSequence
from tamvt.data.video import open_frames
from tamvt.errors import InputError


def read_generic(
    input: str | Path, mask: str | Path, frame: int = 0, name: str | None = None, void_id: int | None = None
) -> VideoSequence:
    """Describe ``input`` (frame folder or video file) with ``mask`` annotating frame ``frame``.

    Frame names are the file stems for a folder and ``00000, 00001, ...`` for a video file.
    ``objects`` maps every id of the mask (except 0 and ``void_id``) to ``frame``.
    """
    input, mask = Path(input), Path(mask)
    frames = open_frames(input)
    if frames.frame_paths is not None:
        stems = list(frames.names)
        if len(set(stems)) != len(stems):
            dup = next(s for s in stems if stems.count(s) > 1)
            raise InputError(input, f"two frames named {dup} (e.g. .jpg and .png)")
    n = len(frames)
    if not 0 <= frame < n:
        raise InputError(input, f"mask frame {frame} out of range: the input has {n} frames (0..{n - 1})")
    # a folder's frames are checked against the size of the annotated one
    size = read_image_size(frames.frame_paths[frame]) if frames.frame_paths is not None else frames.size
    ids, palette = read_index_png(mask)
    if ids.shape != size:
        raise InputError(
            mask, f"mask size {ids.shape[1]}x{ids.shape[0]} != frame size {size[1]}x{size[0]} of {input.name}"
        )
    present = [int(k) for k in np.unique(ids) if k != 0 and k != void_id]
    if not present:
        raise InputError(mask, "mask is empty (no object id > 0)")
    return VideoSequence(
        name=name or input.stem,
        frame_names=frames.names,
        frame_paths=frames.frame_paths,
        video_path=frames.video_path,
        mask_paths={frame: mask},
        objects={k: frame for k in present},
        size=(int(size[0]), int(size[1])),
        void_id=void_id,
        extra={"palette": palette, "fps": frames.fps},
    )
