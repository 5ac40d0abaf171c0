"""Training windows: (video, object) samples of consecutive annotated frames (SPEC §4).

:class:`WindowDataset` serves any list of :class:`~tamvt.data.sequence.VideoSequence` (every
reader's output); :class:`~tamvt.data.training.synthetic.SyntheticWindows` serves generated videos. Both
yield :class:`~tamvt.data.training.batch.TrainingSample`.

Window rule (:func:`choose_window`, the one implementation both classes use). For object ``o`` of a
video, ``available`` = the annotated frames from ``o``'s first annotated frame on, in time order
(reversed when the window is time-reversed). The window is ``length`` consecutive entries of
``available`` whose first frame contains ``o``; its first ``num_memory`` frames are memory frames with
ground truth. A forward window falls back to ``o``'s first frame, a reversed window to a forward one
when ``o`` is in none of its possible first frames. How the start is drawn among the frames that
contain ``o`` is the one thing the two classes do differently, because checking a frame costs
differently: :func:`first_present_start` (:class:`WindowDataset`, a mask read from disk per check)
tries starts in random order, at most ``max_start_tries`` for a forward window;
:func:`uniform_present_start` (synthetic videos, every mask in memory) draws uniformly among all
starts that contain ``o``.

Frame skip (``max_skip`` > 1, as in STCN / XMem): a window takes every ``s``-th entry of
``available``, with one stride ``s`` per window drawn uniformly in ``[1, max_skip]`` and lowered
until the window fits the video; it makes the motion between the frames of a window up to
``max_skip`` times larger. ``max_skip = 1`` (default) draws nothing: consecutive frames.

Short videos (``len(available) < length``): ``short_videos="pingpong"`` (default) walks the
available frames forth and back (0, 1, …, n−1, n−2, …) until the window is full, so the window
stays temporally continuous; ``"skip"`` leaves such objects out of the dataset.

Randomness comes only from ``numpy.random.default_rng([seed, epoch, index])``: a sample depends on
(seed, epoch, index) alone — not on worker count or order — so a resumed run sees the same data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from tamvt.data.sequence import VideoSequence
from tamvt.data.training.batch import TrainingSample
from tamvt.data.training.transforms import WindowAugment, normalize

ShortVideos = Literal["pingpong", "skip"]


def pingpong(n: int, length: int) -> list[int]:
    """Positions 0..n−1 walked forth and back until ``length`` long (n = 1 repeats position 0)."""
    if n <= 1:
        return [0] * length
    period = list(range(n)) + list(range(n - 2, 0, -1))
    return [period[i % len(period)] for i in range(length)]


def draw_stride(rng: np.random.Generator, max_skip: int, n: int, length: int) -> int:
    """A window's frame stride: uniform in ``[1, max_skip]``, lowered until ``length`` frames fit in
    ``n``; 1 without drawing anything when ``max_skip <= 1``."""
    if max_skip <= 1:
        return 1
    s = int(rng.integers(1, max_skip + 1))
    return max(1, min(s, (n - 1) // (length - 1)))  # length >= 2 (checked by the datasets)


# A start picker: ``(rng, num_starts, present, reverse) -> start position or None``. ``present(p)``
# says whether the object is in the frame at position ``p`` of the (possibly reversed) order; a
# forward window always gets a start (its position 0 is the object's first frame), a reversed one
# gets None when the object is in none of its possible first frames.
StartPicker = Callable[[np.random.Generator, int, Callable[[int], bool], bool], int | None]


def first_present_start(max_tries: int) -> StartPicker:
    """Starts in the order of ``rng.permutation``; the first that shows the object wins. A forward
    window tries at most ``max_tries`` and then falls back to position 0; a reversed one tries all."""

    def pick(rng: np.random.Generator, num_starts: int, present: Callable[[int], bool], reverse: bool) -> int | None:
        starts = rng.permutation(num_starts)
        for s in starts if reverse else starts[:max_tries]:
            # position 0 of a forward order is the object's first frame: present by definition
            if (s == 0 and not reverse) or present(int(s)):
                return int(s)
        return None if reverse else 0

    return pick


def uniform_present_start(
    rng: np.random.Generator, num_starts: int, present: Callable[[int], bool], reverse: bool
) -> int | None:
    """Uniform among all starts that show the object (every one is checked, then one draw)."""
    candidates = [p for p in range(num_starts) if present(p)]
    if not candidates:
        return None if reverse else 0
    return candidates[int(rng.integers(len(candidates)))]


def choose_window(
    rng: np.random.Generator,
    n: int,
    length: int,
    present: Callable[[int], bool],
    pick_start: StartPicker,
    reverse_prob: float = 0.0,
    max_skip: int = 1,
) -> tuple[list[int], bool]:
    """The training-window rule (module docstring) over an object's ``n`` available frames.

    Draws, in this order: the stride (:func:`draw_stride`, nothing when ``max_skip <= 1``), the
    reversal (always one ``rng.random()``), then the start(s) by ``pick_start`` (none for videos
    shorter than a window, which pingpong from their first position).

    Args:
        present: ``present(p)`` whether the object is in available frame ``p`` (forward positions).
        pick_start: :func:`first_present_start` or :func:`uniform_present_start`.
    Returns:
        (positions into the available frames in the order the model sees them, reversed or not).
    """
    stride = draw_stride(rng, max_skip, n, length)
    if rng.random() < reverse_prob:
        window = _window_at_a_start(rng, n, length, stride, present, pick_start, reverse=True)
        if window is not None:
            return window, True
    window = _window_at_a_start(rng, n, length, stride, present, pick_start, reverse=False)
    assert window is not None  # a forward window always has a start
    return window, False


def _window_at_a_start(
    rng: np.random.Generator,
    n: int,
    length: int,
    stride: int,
    present: Callable[[int], bool],
    pick_start: StartPicker,
    reverse: bool,
) -> list[int] | None:
    order = list(range(n))[::-1] if reverse else list(range(n))
    span = (length - 1) * stride + 1
    if n < span:  # short video (stride 1 here): pingpong from the first position
        if reverse and not present(order[0]):
            return None
        return [order[p] for p in pingpong(n, length)]
    start = pick_start(rng, n - span + 1, lambda p: present(order[p]), reverse)
    return None if start is None else order[start : start + span : stride]


def make_sample(
    frames: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    object_id: int,
    void_id: int | None,
    num_memory: int,
    augment: WindowAugment | None,
    rng: np.random.Generator,
    *,
    video: str,
    frame_indices: Sequence[int],
    reversed_: bool,
) -> TrainingSample:
    """Augment a window (frames ``(H, W, 3)`` uint8, label masks ``(H, W)`` uint8) and binarise its
    masks for ``object_id``. The crop keeps the object's pixels of the memory frames in view."""
    if augment is not None:
        focus = np.any(np.stack([lab == object_id for lab in labels[:num_memory]]), axis=0)
        out_frames, out_labels = augment(frames, labels, rng, focus)
    else:
        out_frames, out_labels = np.stack(frames), np.stack(labels)
    masks = torch.from_numpy((out_labels == object_id).astype(np.uint8))
    void = (
        torch.from_numpy(out_labels == void_id) if void_id is not None else torch.zeros(masks.shape, dtype=torch.bool)
    )
    return TrainingSample(
        frames=normalize(out_frames),
        masks=masks,
        void=void,
        num_memory=num_memory,
        video=video,
        object_id=int(object_id),
        frame_indices=tuple(int(i) for i in frame_indices),
        reversed=reversed_,
    )


def _read_frames(seq: VideoSequence, indices: Sequence[int]) -> list[np.ndarray]:
    """Frames ``indices`` of ``seq``; a video file is decoded once from the earliest index."""
    if seq.frame_paths is not None:
        cache = {i: seq.read_frame(i) for i in sorted(set(indices))}
    else:
        wanted, cache = set(indices), {}
        for i, frame in seq.iter_frames(start=min(wanted)):
            if i in wanted:
                cache[i] = frame
            if i >= max(wanted):
                break
    return [cache[i] for i in indices]


class WindowSampling(Dataset):
    """What every training set of windows holds: the window's shape, its augmentation, time reversal,
    the largest frame stride, and the (seed, epoch) its draws come from.

    Args:
        length: frames per window (memory + query frames).
        num_memory: leading frames given with ground truth.
        augment: window-consistent augmentation, or None (frames at their original size).
        reverse_prob: probability of time-reversing a window.
        seed: base seed; see :meth:`set_epoch`.
        max_skip: largest frame stride of a window (1 = consecutive frames; see the module docstring).
    """

    def __init__(
        self, length: int, num_memory: int, augment: WindowAugment | None, reverse_prob: float, seed: int, max_skip: int
    ) -> None:
        if not 1 <= num_memory < length:
            raise ValueError(f"num_memory must be in [1, length - 1], got {num_memory} for length {length}")
        self.length = length
        self.num_memory = num_memory
        self.augment = augment
        self.reverse_prob = reverse_prob
        self.seed = seed
        self.epoch = 0
        self.max_skip = max_skip

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's draws (call before iterating; with DataLoader workers, before creating
        the iterator, i.e. without ``persistent_workers``)."""
        self.epoch = int(epoch)


class WindowDataset(WindowSampling):
    """Object-wise training windows over video sequences (see the module docstring for the rule).

    Args:
        sequences: videos from any reader.
        length: frames per window (memory + query frames).
        num_memory: leading frames given with ground truth.
        augment: window-consistent augmentation, or None (frames at their original size).
        reverse_prob: probability of time-reversing a window.
        seed: base seed; see :meth:`set_epoch`.
        short_videos: ``"pingpong"`` or ``"skip"`` for objects with fewer than ``length`` frames.
        max_start_tries: random start positions tried before the fallback.
        max_skip: largest frame stride of a window (1 = consecutive frames; see the module docstring).
    """

    def __init__(
        self,
        sequences: Sequence[VideoSequence],
        length: int = 12,
        num_memory: int = 2,
        augment: WindowAugment | None = None,
        reverse_prob: float = 0.0,
        seed: int = 0,
        short_videos: ShortVideos = "pingpong",
        max_start_tries: int = 8,
        max_skip: int = 1,
    ) -> None:
        super().__init__(length, num_memory, augment, reverse_prob, seed, max_skip)
        if short_videos not in ("pingpong", "skip"):
            raise ValueError(f"short_videos must be 'pingpong' or 'skip', got {short_videos!r}")
        self.sequences = list(sequences)
        self.max_start_tries = max_start_tries
        self.items: list[tuple[int, int]] = []  # (sequence index, object id)
        for si, seq in enumerate(self.sequences):
            for obj, first in sorted(seq.objects.items()):
                n = sum(1 for i in seq.annotated if i >= first)
                if n == 0 or (short_videos == "skip" and n < length):
                    continue
                self.items.append((si, obj))

    def __len__(self) -> int:
        return len(self.items)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def window_frames(self, index: int, rng: np.random.Generator) -> tuple[list[int], bool]:
        """Frame indices of item ``index``'s window (:func:`choose_window`), in the order the model
        sees them, and whether the window is reversed."""
        si, obj = self.items[index]
        seq = self.sequences[si]
        available = [i for i in seq.annotated if i >= seq.objects[obj]]

        def present(p: int) -> bool:
            return bool((seq.read_mask(available[p]) == obj).any())

        positions, reversed_ = choose_window(
            rng,
            len(available),
            self.length,
            present,
            first_present_start(self.max_start_tries),
            self.reverse_prob,
            self.max_skip,
        )
        return [available[p] for p in positions], reversed_

    def __getitem__(self, index: int) -> TrainingSample:
        rng = self.rng(index)
        si, obj = self.items[index]
        seq = self.sequences[si]
        indices, reversed_ = self.window_frames(index, rng)
        frames = _read_frames(seq, indices)
        labels = [seq.read_mask(i) for i in indices]
        return make_sample(
            frames,
            labels,
            obj,
            seq.void_id,
            self.num_memory,
            self.augment,
            rng,
            video=seq.name,
            frame_indices=indices,
            reversed_=reversed_,
        )
