"""Static-image pseudo-videos for pre-training (SPEC §4, paper §4.1).

From one image + mask: frame 0 is a random resized crop that keeps the target object; every later
frame applies its own random affine (±20°, translate 0.1, scale 0.9–1.1, shear 10°) to that view
(warping the source image directly, so context outside the crop fills the frame instead of black).
Every frame draws its own horizontal flip and colour jitter. The objects of a second image, scaled
down and moving with their own per-frame affine, are pasted on top (they occlude the target where
they overlap). One object of the first image is the target.

Folder layout (COCO / VOC / ECSSD / MSRA10K / PASCAL-S after conversion): ``images/<stem>.jpg``
(or .png) and ``masks/<stem>.png``, same stems; images without a mask are left out. Masks:

* ``mask_mode="auto"`` (default): a mask whose values are only 0 and 255 is a binary saliency mask
  (255 = the object); otherwise it is an index mask (0 = background, 255 = void as in VOC,
  other values = object ids);
* ``"binary"``: values > 127 are the object (anti-aliased saliency masks);
* ``"index"``: always an index mask.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from tamvt.data.images import list_frame_files, read_image
from tamvt.data.palette import read_index_png
from tamvt.data.training.batch import TrainingSample
from tamvt.data.training.transforms import (
    Jitter,
    apply_jitter,
    crop_matrix,
    hflip_matrix,
    normalize,
    random_affine_matrix,
    sample_jitter,
    to3x3,
    warp,
)
from tamvt.errors import InputError

MaskMode = Literal["auto", "binary", "index"]
VOID = 255


def read_object_mask(path: Path, mode: MaskMode = "auto") -> np.ndarray:
    """``(H, W)`` uint8 ids (0 background, 255 void) of a binary or index mask file."""
    mask, _ = read_index_png(path)
    if mode == "binary" or (mode == "auto" and np.isin(mask, (0, 255)).all()):
        return (mask > 127).astype(np.uint8)
    return mask


def object_ids(labels: np.ndarray) -> list[int]:
    return [int(i) for i in np.unique(labels) if i not in (0, VOID)]


class StaticPseudoVideoDataset(Dataset):
    """Pseudo-video training samples from an image folder and a mask folder.

    Args:
        image_dir, mask_dir: the folders (see the module docstring).
        out_size: output ``(H, W)``.
        num_frames, num_memory: frames per pseudo-video and leading memory frames (authors: 6, 2;
            the trainer runs the query frames in clips of 3).
        seed: base seed; a sample depends on ``(seed, epoch, index)`` only.
        crop_scale, crop_ratio: frame-0 random resized crop: area fraction of the image and aspect
            ratio relative to ``out_size`` (log-uniform), as torchvision ``RandomResizedCrop``.
        degrees, translate, scale, shear: per-frame random affine ranges.
        hflip_prob: per-frame horizontal flip probability.
        jitter: per-frame colour jitter strengths ``(brightness, contrast, saturation, hue)``.
        paste_prob: probability of pasting a second image's objects.
        paste_scale: size of the pasted view relative to the output.
        mask_mode: ``auto`` | ``binary`` | ``index``.
    """

    def __init__(
        self,
        image_dir: str | Path,
        mask_dir: str | Path,
        out_size: tuple[int, int] = (384, 384),
        num_frames: int = 6,
        num_memory: int = 2,
        seed: int = 0,
        crop_scale: tuple[float, float] = (0.3, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        degrees: float = 20.0,
        translate: float = 0.1,
        scale: tuple[float, float] = (0.9, 1.1),
        shear: float = 10.0,
        hflip_prob: float = 0.5,
        jitter: tuple[float, float, float, float] = (0.1, 0.1, 0.1, 0.03),
        paste_prob: float = 1.0,
        paste_scale: tuple[float, float] = (0.3, 0.7),
        mask_mode: MaskMode = "auto",
    ) -> None:
        if not 1 <= num_memory < num_frames:
            raise ValueError(f"num_memory must be in [1, num_frames - 1], got {num_memory} for {num_frames} frames")
        image_dir, mask_dir = Path(image_dir), Path(mask_dir)
        if not mask_dir.is_dir():
            raise InputError(mask_dir, "mask folder not found")
        self.pairs = [(p, mask_dir / f"{p.stem}.png") for p in list_frame_files(image_dir)]
        self.pairs = [(img, m) for img, m in self.pairs if m.is_file()]
        if not self.pairs:
            raise InputError(image_dir, f"no image with a mask of the same name in {mask_dir}")
        self.out_size = out_size
        self.num_frames = num_frames
        self.num_memory = num_memory
        self.seed = seed
        self.epoch = 0
        self.crop_scale, self.crop_ratio = crop_scale, crop_ratio
        self.affine: dict[str, Any] = dict(degrees=degrees, translate=translate, scale=scale, shear=shear)
        self.hflip_prob = hflip_prob
        self.jitter = jitter
        self.paste_prob = paste_prob
        self.paste_scale = paste_scale
        self.mask_mode = mask_mode

    @classmethod
    def from_root(cls, root: str | Path, **kwargs) -> StaticPseudoVideoDataset:
        """``root/images`` + ``root/masks``."""
        return cls(Path(root) / "images", Path(root) / "masks", **kwargs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``(H, W, 3)`` uint8 and ids ``(H, W)`` uint8 of pair ``index``."""
        img_path, mask_path = self.pairs[index]
        labels = read_object_mask(mask_path, self.mask_mode)
        image = read_image(img_path)
        if image.shape[:2] != labels.shape:
            raise InputError(
                mask_path,
                f"mask size {labels.shape[1]}x{labels.shape[0]} != image size {image.shape[1]}x{image.shape[0]}",
            )
        return image, labels

    def _crop(self, rng: np.random.Generator, keep: np.ndarray) -> np.ndarray:
        """Frame-0 random resized crop (2×3) keeping at least half of ``keep (H, W) bool``."""
        h, w = keep.shape
        oh, ow = self.out_size
        total = int(keep.sum())
        for _ in range(10):
            area = h * w * rng.uniform(*self.crop_scale)
            ratio = (ow / oh) * math.exp(rng.uniform(math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1])))
            cw, ch = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
            if not (0 < cw <= w and 0 < ch <= h):
                continue
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            if 2 * int(keep[top : top + ch, left : left + cw].sum()) >= total:
                return crop_matrix(top, left, ch, cw, self.out_size)
        return crop_matrix(0, 0, h, w, self.out_size)  # fallback: the whole image

    def _frame_matrices(self, rng: np.random.Generator, base: np.ndarray) -> list[np.ndarray]:
        """Per-frame 2×3 maps: frame 0 = ``base``, later frames = random affine ∘ ``base``; each
        frame then mirrored with ``hflip_prob``."""
        out = []
        for t in range(self.num_frames):
            m = to3x3(base) if t == 0 else to3x3(random_affine_matrix(rng, self.out_size, **self.affine)) @ to3x3(base)
            if rng.random() < self.hflip_prob:
                m = to3x3(hflip_matrix(self.out_size[1])) @ m
            out.append(m[:2])
        return out

    def _paste_matrices(self, rng: np.random.Generator, fg: np.ndarray) -> list[np.ndarray]:
        """Per-frame maps of the pasted image: a crop keeping its objects, shrunk by ``paste_scale``
        to a random place, then the per-frame affine / flip."""
        oh, ow = self.out_size
        s = rng.uniform(*self.paste_scale)
        cy, cx = rng.uniform(0, oh - 1), rng.uniform(0, ow - 1)
        shrink = np.array([[s, 0.0, cx - s * (ow - 1) / 2], [0.0, s, cy - s * (oh - 1) / 2]])
        return self._frame_matrices(rng, (to3x3(shrink) @ to3x3(self._crop(rng, fg)))[:2])

    def __getitem__(self, index: int) -> TrainingSample:
        rng = np.random.default_rng([self.seed, self.epoch, index, 0])
        paste_rng = np.random.default_rng([self.seed, self.epoch, index, 1])  # paste draws apart
        image, labels, index = self._load_with_object(index, rng)
        target = object_ids(labels)[int(rng.integers(len(object_ids(labels))))]
        mats = self._frame_matrices(rng, self._crop(rng, labels == target))
        frames = [warp(image, m, self.out_size, False) for m in mats]
        out_labels = [warp(labels, m, self.out_size, True) for m in mats]
        if len(self) > 1 and paste_rng.random() < self.paste_prob:
            other = (index + 1 + int(paste_rng.integers(len(self) - 1))) % len(self)
            p_image, p_labels = self.load(other)
            p_fg = ((p_labels != 0) & (p_labels != VOID)).astype(np.uint8)
            if p_fg.any():
                for _ in range(5):  # the target must stay visible in frame 0 (its memory frame)
                    p_mats = self._paste_matrices(paste_rng, p_fg.astype(bool))
                    over = [warp(p_fg, m, self.out_size, True).astype(bool) for m in p_mats]
                    if ((out_labels[0] == target) & ~over[0]).any():
                        for t, m in enumerate(p_mats):
                            frames[t][over[t]] = warp(p_image, m, self.out_size, False)[over[t]]
                            out_labels[t][over[t]] = 0
                        break
        frames = [apply_jitter(f, sample_jitter(rng, self.jitter) if any(self.jitter) else Jitter()) for f in frames]
        lab = np.stack(out_labels)
        return TrainingSample(
            frames=normalize(np.stack(frames)),
            masks=torch.from_numpy((lab == target).astype(np.uint8)),
            void=torch.from_numpy(lab == VOID),
            num_memory=self.num_memory,
            video=self.pairs[index][0].stem,
            object_id=target,
            frame_indices=(index,) * self.num_frames,
        )

    def _load_with_object(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        """Pair ``index``, or (if its mask has no object) other random pairs, up to 10 tries."""
        for _ in range(10):
            image, labels = self.load(index)
            if object_ids(labels):
                return image, labels, index
            index = int(rng.integers(len(self)))
        raise InputError(self.pairs[index][1], "no object in this mask nor in 9 other random masks")
