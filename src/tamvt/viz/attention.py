"""Matching attention of a query frame over the memory (paper Fig. 4b), per scale and memory entry.

The engine itself is run: :class:`~tamvt.inference.predictor.Predictor` segments frames ``ref..K`` of
the video from the object's mask in frame ``ref``, while :meth:`tamvt.models.matching.Matching.hook_attention`
hands out the softmax weights matching computes (RTE included). The last matching call is the clip
that ends with frame ``K`` (the video is cut after ``K``), so its last frame's query rows are frame
``K``'s attention. The maps are averaged over heads and over the query tokens the object covers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tamvt.data.sequence import VideoSequence
from tamvt.errors import TamvtError

STRIDES = {"res5": 32, "res4": 16, "res3": 8}
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the original frame (edges)


@dataclass(frozen=True)
class AttentionCapture:
    """Frame ``frame``'s attention over the memory it was matched against.

    Attributes:
        frame: the query frame K; ref_frame: the frame of the given mask; object_id: the object.
        memory_frames: frame index of every memory entry, memory order ``[reference, oldest, ..., newest]``.
        strides: stride of every matching scale (coarse to fine).
        maps: per scale ``(n, h, w)`` float64: attention mass on every memory token, averaged over the
            heads and the query tokens (weights ``query_weights``); it sums to 1 over all entries.
        query_weights: per scale ``(h, w)``: weight of each query token in that average (sums to 1):
            the fraction of the token cell covered by the object's predicted mask in frame K (all
            tokens alike when the object is not predicted there: ``on_object`` False).
        query_box: the object's box in frame K (predicted mask), None if absent.
        memory_boxes: the object's box in each memory entry's mask (given / predicted), None if empty.
        images: frame index -> ``(H, W, 3)`` uint8 of frame K and the memory frames.
    """

    frame: int
    ref_frame: int
    object_id: int
    memory_frames: tuple[int, ...]
    strides: tuple[int, ...]
    maps: tuple[np.ndarray, ...]
    query_weights: tuple[np.ndarray, ...]
    on_object: bool
    query_box: Box | None
    memory_boxes: tuple[Box | None, ...]
    images: dict[int, np.ndarray]

    def entry_mass(self, scale: int) -> np.ndarray:
        """``(n,)`` share of the attention on each memory entry at ``scale``."""
        return self.maps[scale].sum(axis=(1, 2))


def mask_box(mask: np.ndarray) -> Box | None:
    """Bounding box of a bool ``(H, W)`` mask in pixel-edge coordinates, or None when empty."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def token_coverage(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Fraction of each cell of a ``grid (h, w)`` over the frame covered by a bool ``mask (H, W)``."""
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    return F.adaptive_avg_pool2d(m, grid)[0, 0].double().numpy()


def first_frames(seq: VideoSequence, count: int) -> VideoSequence:
    """``seq`` cut after its first ``count`` frames (frames and annotations)."""
    return dataclasses.replace(
        seq,
        frame_names=seq.frame_names[:count],
        frame_paths=None if seq.frame_paths is None else seq.frame_paths[:count],
        mask_paths={i: p for i, p in seq.mask_paths.items() if i < count},
        objects={k: f for k, f in seq.objects.items() if f < count},
    )


def capture_attention(
    predictor: Any, video: VideoSequence, mask: np.ndarray, ref_frame: int, frame: int, object_id: int = 1
) -> AttentionCapture:
    """Run ``predictor`` over frames ``ref_frame..frame`` of ``video`` with the object's ``mask (H, W)``
    (bool) given in ``ref_frame`` and return frame ``frame``'s matching attention."""
    if not ref_frame < frame < len(video):
        raise TamvtError(
            f"--frame must be after the mask's frame {ref_frame} and inside the video "
            f"({len(video)} frames), got {frame}"
        )
    model = predictor.model
    strides = tuple(STRIDES[name] for name in model.matching_levels)
    latest: dict[int, torch.Tensor] = {}
    shapes: dict[int, tuple[int, int, int]] = {}  # scale -> (T, h, w) of the latest call

    def keep(scale: int, weights: torch.Tensor) -> None:  # (H, T*h*w, n*h*w) -> mean over heads, on CPU
        latest[scale] = weights.float().mean(0).cpu()

    def shapes_of(module: Any, args: tuple) -> None:
        for s, q in enumerate(args[0]):
            shapes[s] = (q.shape[0], q.shape[2], q.shape[3])

    clip = first_frames(video, frame + 1)
    session = predictor.start(clip, keep_results=False)
    predictor.add_mask(session, ref_frame, object_id, mask)
    boxes: dict[int, Box | None] = {ref_frame: mask_box(mask)}  # of the frames that may be in memory
    query_mask = None
    handle = model.matching.register_forward_pre_hook(shapes_of)
    try:
        with model.matching.hook_attention(keep):
            for idx, result in predictor.propagate(session):
                if idx == frame:
                    query_mask = result.binary(object_id)
                    boxes[idx] = mask_box(query_mask)
                    break
                boxes[idx] = mask_box(result.binary(object_id))  # 4 numbers per frame: the memory's
    finally:
        handle.remove()
    memory_frames = session.memory_frames().get(object_id, ())
    if not memory_frames or query_mask is None or frame not in boxes:
        raise TamvtError(f"the engine did not record the memory of frame {frame} (memory frames: {memory_frames})")
    maps, query_weights = [], []
    for s in range(len(strides)):
        t, h, w = shapes[s]
        attn = latest[s].double()[(t - 1) * h * w :]  # frame K = the clip's last frame: (h*w, n*h*w)
        cover = token_coverage(query_mask, (h, w))  # the grid covers the resized frame: approximately aligned
        if not query_mask.any():
            cover = np.ones((h, w))
        cover = cover / cover.sum()
        mass = torch.from_numpy(cover.reshape(-1)) @ attn  # (n*h*w,)
        maps.append(mass.numpy().reshape(len(memory_frames), h, w))
        query_weights.append(cover)
    images = dict(_read_frames(video, {frame, *memory_frames}))
    return AttentionCapture(
        frame,
        ref_frame,
        object_id,
        memory_frames,
        strides,
        tuple(maps),
        tuple(query_weights),
        bool(query_mask.any()),
        boxes[frame],
        tuple(boxes[f] for f in memory_frames),
        images,
    )


def _read_frames(video: VideoSequence, wanted: set[int]):
    last = max(wanted)
    for idx, image in video.iter_frames(start=min(wanted)):
        if idx in wanted:
            yield idx, image
        if idx >= last:
            return


def plot_attention(cap: AttentionCapture, cell: float = 1.6) -> Any:
    """Rows: matching scales; columns: frame K (query tokens averaged, object box) and every memory
    entry (attention mass on its tokens over the frame, the object's box, its share of the attention).
    Colours are shared within a row; low attention is transparent. ``cell``: inches per panel."""
    from tamvt.viz.figure import new_figure

    n = len(cap.memory_frames)
    rows = len(cap.strides)
    height, width = cap.images[cap.frame].shape[:2]
    fig = new_figure(cell * (n + 1) * max(width / height, 0.6) + 0.6, cell * rows + 0.5)
    heat_cmap = _fading("inferno")
    axes = np.atleast_2d(fig.subplots(rows, n + 1, squeeze=False))
    extent = (0, width, height, 0)
    for s in range(rows):
        share = cap.entry_mass(s)
        vmax = float(cap.maps[s].max()) or 1.0
        ax = axes[s, 0]
        ax.imshow(_gray(cap.images[cap.frame]), cmap="gray", vmin=0, vmax=255, extent=extent)
        ax.imshow(cap.query_weights[s], cmap="Blues", alpha=0.55, extent=extent, interpolation="nearest")
        _box(ax, cap.query_box, "tab:red")
        ax.set_title(f"query: frame {cap.frame}" + ("" if cap.on_object else " (object lost: all tokens)"), fontsize=8)
        peak = vmax * cap.maps[s].size  # the largest token mass relative to uniform attention
        ax.set_ylabel(f"stride {cap.strides[s]}\npeak {peak:.1f}× uniform", fontsize=8)
        for i, f in enumerate(cap.memory_frames):
            ax = axes[s, i + 1]
            ax.imshow(_gray(cap.images[f]), cmap="gray", vmin=0, vmax=255, extent=extent)
            heat = ax.imshow(cap.maps[s][i], cmap=heat_cmap, vmin=0, vmax=vmax, extent=extent, interpolation="nearest")
            heat.set_gid(f"attention-s{s}-e{i}")
            _box(ax, cap.memory_boxes[i], "tab:cyan")
            role = " (ref)" if i == 0 else (" (newest)" if i == n - 1 else "")
            ax.set_title(f"frame {f}{role} {100 * share[i]:.1f}%", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"matching attention of frame {cap.frame} (object {cap.object_id}, mask in frame {cap.ref_frame}): "
        "mean over heads and the object's query tokens; % = share per memory entry",
        fontsize=9,
    )
    return fig


def _fading(name: str) -> Any:
    """Colormap ``name`` whose alpha rises from 0.1 (no attention) to 0.9 (the row's maximum)."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    colors = colormaps[name](np.linspace(0, 1, 256))
    colors[:, 3] = np.linspace(0.1, 0.9, 256)
    return ListedColormap(colors)


def _gray(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _box(ax: Any, box: Box | None, color: str) -> None:
    if box is None:
        return
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = box
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=color, lw=1.2))
