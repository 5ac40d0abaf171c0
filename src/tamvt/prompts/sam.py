"""The optional SAM 2 prompt model: Meta's SAM 2.1 image predictor behind tamvt's prompt interface.

    pip install 'tamvt[sam]'              # the sam2 package
    tamvt weights fetch sam2.1-hiera-tiny # Meta's file into tamvt's cache (size + sha256 recorded)
    tamvt segment clip.mp4 --box 40,30,200,180 --prompt-model sam2.1-hiera-tiny ...

Plumbing: the frame goes to the predictor's ``set_image`` once per frame; a box or clicks to its
``predict(point_coords, point_labels, box, mask_input, multimask_output)`` in frame pixels (the
predictor rescales them itself); of the masks it returns the best-scored one is kept. One click is
ambiguous (a part or the whole), so it asks for three masks; a box or several clicks for one.
When ``previous`` is the mask this model returned last for the frame, its low-resolution logits go
back as ``mask_input`` (SAM's own refinement loop); any other ``previous`` is not used (SAM takes
no full-resolution mask).

Its quality is not measured here: the tests run the plumbing on a stub predictor, and this machine
has neither the sam2 package nor the weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from tamvt.errors import TamvtError
from tamvt.prompts.base import Box, Point, PromptModel

# tamvt's name -> the sam2 package's model config (inside the sam2 package)
CONFIGS = {"sam2.1-hiera-tiny": "configs/sam2.1/sam2.1_hiera_t.yaml"}
INSTALL_HINT = "pip install 'tamvt[sam]'"


def sam2_available() -> bool:
    """Whether the ``sam2`` package can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("sam2") is not None


class Sam2Prompts(PromptModel):
    """A prompt model over a SAM 2 image predictor (anything with ``set_image(frame)`` and
    ``predict(point_coords, point_labels, box, mask_input, multimask_output) -> (masks (C, H, W),
    scores (C,), low_res_logits (C, 256, 256))``, as ``sam2.sam2_image_predictor.SAM2ImagePredictor``)."""

    def __init__(self, predictor: Any, name: str = "sam2.1-hiera-tiny") -> None:
        self.predictor = predictor
        self.name = name
        self._image_key: tuple | None = None
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # (mask returned, its low-res logits)

    @classmethod
    def from_name(cls, name: str = "sam2.1-hiera-tiny", device: str = "cpu") -> Sam2Prompts:
        """The model called ``name`` on ``device``; its weights are fetched into the cache on first use."""
        if name not in CONFIGS:
            raise TamvtError(f"unknown SAM 2 model {name!r}; known: {', '.join(CONFIGS)}")
        if not sam2_available():
            raise TamvtError(f"--prompt-model {name} needs the sam2 package: {INSTALL_HINT}")
        from sam2.build_sam import build_sam2  # type: ignore[import-not-found]
        from sam2.sam2_image_predictor import SAM2ImagePredictor  # type: ignore[import-not-found]

        from tamvt.hub.registry import fetch

        weights = fetch(name, verify=False)
        return cls(SAM2ImagePredictor(build_sam2(CONFIGS[name], str(weights), device=device)), name)

    # ---- the interface --------------------------------------------------------------------------

    def box_to_mask(self, frame: np.ndarray, box: Box) -> np.ndarray:
        frame = self.check_frame(frame)
        x0, y0, x1, y1 = self.check_box(box, frame.shape)
        return self._predict(frame, None, None, np.array([x0, y0, x1, y1], np.float32), None, multimask=False)

    def clicks_to_mask(
        self,
        frame: np.ndarray,
        positive: Sequence[Point],
        negative: Sequence[Point] = (),
        previous: np.ndarray | None = None,
    ) -> np.ndarray:
        frame, pos, neg, prev = self.check_clicks(frame, positive, negative, previous)
        if not pos and prev is None:  # nothing says where the object is
            return np.zeros(frame.shape[:2], bool)
        coords = np.array([*pos, *neg], np.float32).reshape(-1, 2)  # (N, 2) x, y in frame pixels, as SAM takes
        labels = np.array([1] * len(pos) + [0] * len(neg), np.int32)
        logits = None
        if prev is not None and self._last is not None and np.array_equal(prev, self._last[0]):
            logits = self._last[1][None]  # (1, 256, 256): SAM's own last output for this object
        if not len(coords):
            return prev if prev is not None else np.zeros(frame.shape[:2], bool)  # nothing new to say
        return self._predict(frame, coords, labels, None, logits, multimask=len(coords) == 1 and logits is None)

    # ---- plumbing -------------------------------------------------------------------------------

    def _predict(self, frame, coords, labels, box, mask_input, multimask: bool) -> np.ndarray:
        key = (frame.shape, hashlib.blake2b(frame.tobytes(), digest_size=16).digest())
        if key != self._image_key:
            self.predictor.set_image(frame)
            self._image_key, self._last = key, None
        masks, scores, low_res = self.predictor.predict(
            point_coords=coords, point_labels=labels, box=box, mask_input=mask_input, multimask_output=multimask
        )
        masks, scores, low_res = np.asarray(masks), np.asarray(scores).reshape(-1), np.asarray(low_res)
        if masks.ndim != 3 or masks.shape[1:] != frame.shape[:2] or len(scores) != len(masks):
            raise TamvtError(f"{self.name}: the predictor returned masks {masks.shape} for a frame {frame.shape[:2]}")
        best = int(np.argmax(scores))
        mask = masks[best] > 0 if masks.dtype != bool else masks[best].copy()
        self._last = (mask, low_res[best])
        return mask
