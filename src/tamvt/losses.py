"""Training objective: per-frame sigmoid focal + dice loss with transformation-aware frame weights.

Follows the authors' ``SetCriterion.loss_masks_detr`` (SPEC §3, official vector B):

* logits at stride 4 are bilinearly upsampled (``align_corners=False``) to the target size;
* focal loss (α, γ) is averaged over the pixels of a frame, dice (smooth 1) is per frame;
* both are summed over frames and divided by the number of query frames — frames whose mask is
  empty count too (official quirk 7);
* the same terms are computed for every decoder output: the last one gives ``loss_mask`` /
  ``loss_dice``, decoder layer ``i`` before it gives ``loss_mask_i`` / ``loss_dice_i``;
* ``total`` = Σ weight · term in the official key order.

Transformation-aware re-weighting (paper §3.5, official quirk 8): from the ground truth only, a
per-transition change Δ_t (t = 1..T−1, between query frames t−1 and t) is turned into weights
``δ = Δ / mean(Δ)``, ``w = exp(δ/τ) / mean(exp(δ/τ))``; the first query frame gets weight 1.
Void pixels (255) are background, exactly as in the authors' code.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tamvt.config import ApplyTo, LossConfig, Reweighting
from tamvt.errors import TamvtError

VOID = 255


def binary_targets(targets: Tensor) -> Tensor:
    """Object/background of a target mask as float 0./1.; void (255) and 0 are background.

    Accepts bool, integer (0 / 1 / 255) or float (0. / 1. / 255.) masks of any shape.
    """
    if targets.dtype == torch.bool:
        return targets.float()
    if targets.is_floating_point():
        return ((targets > 0.5) & (targets != VOID)).float()
    return ((targets != 0) & (targets != VOID)).float()


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Element-wise sigmoid focal loss (RetinaNet / DETR form).

    Args:
        logits: any shape, float.
        targets: same shape, float 0./1.
    Returns: same shape; ``alpha < 0`` disables the class balancing as in DETR.
    """
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return loss


def dice_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-row dice loss with smoothing 1: ``1 − (2Σpt + 1) / (Σp + Σt + 1)``.

    Args:
        logits: (N, P) float — N frames, P pixels.
        targets: (N, P) float 0./1.
    Returns: (N,) float.
    """
    prob = logits.sigmoid()
    numerator = 2 * (prob * targets).sum(1)
    denominator = prob.sum(-1) + targets.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


# --------------------------------------------------------------------------------------------
# transformation measures (ground truth only, no gradient)


def area_changes(masks: Tensor) -> Tensor:
    """Δ_t = |A_t − A_{t−1}| + 1 for t = 1..T−1 (the official +1 keeps mean(Δ) > 0).

    Args: masks (T, H, W) float 0./1. Returns: (T−1,) float32.
    """
    area = masks.flatten(1).float().sum(1)  # (T,) exact integer counts in float32 below 2**24
    return (area[1:] - area[:-1]).abs() + 1


def centroid_changes(masks: Tensor) -> Tensor:
    """Δ_t = ‖c_t − c_{t−1}‖₂ + 1 (centre of mass in pixels), t = 1..T−1.

    Empty masks: two consecutive empty frames move 0; an object that appears or disappears counts
    as the largest possible move, the image diagonal — like the area measure, where an
    (dis)appearance is a change of the whole object.

    Args: masks (T, H, W) float 0./1. Returns: (T−1,) float32.
    """
    t, h, w = masks.shape
    m = masks.float()
    area = m.flatten(1).sum(1)  # (T,)
    ys = torch.arange(h, dtype=torch.float32, device=m.device)
    xs = torch.arange(w, dtype=torch.float32, device=m.device)
    safe = area.clamp(min=1)
    cy = (m.sum(2) * ys).sum(1) / safe  # (T,)
    cx = (m.sum(1) * xs).sum(1) / safe
    shift = torch.hypot(cy[1:] - cy[:-1], cx[1:] - cx[:-1])
    present = area > 0
    both = present[1:] & present[:-1]
    one = present[1:] ^ present[:-1]
    diagonal = math.hypot(h, w)
    shift = torch.where(both, shift, torch.where(one, torch.full_like(shift, diagonal), torch.zeros_like(shift)))
    return shift + 1


def count_components(mask: np.ndarray) -> int:
    """Number of 8-connected foreground components of a (H, W) binary mask."""
    n, _ = cv2.connectedComponents(np.ascontiguousarray(mask, dtype=np.uint8), connectivity=8)
    return int(n) - 1  # label 0 is the background


def component_changes(masks: Tensor) -> Tensor:
    """Δ_t = |C_t − C_{t−1}| + 1 with C = number of 8-connected components, t = 1..T−1.

    Args: masks (T, H, W) float 0./1. Returns: (T−1,) float32 on the masks' device.
    """
    arr = (masks > 0.5).cpu().numpy()
    counts = torch.tensor([count_components(f) for f in arr], dtype=torch.float32, device=masks.device)
    return (counts[1:] - counts[:-1]).abs() + 1


_MEASURES = {"area": area_changes, "centroid": centroid_changes, "components": component_changes}


def frame_weights(masks: Tensor, kind: Reweighting = "area", tau: float = 1.0) -> Tensor:
    """Transformation-aware weights of the query frames of one object.

    Args:
        masks: (T, H, W) ground truth of the query frames (any dtype; void = background).
        kind: ``area`` | ``centroid`` | ``components`` | ``none``.
        tau: softmax temperature.
    Returns: (T,) float32 ``[1, w_1, …, w_{T−1}]`` with ``w = exp(δ/τ)/mean(exp(δ/τ))``,
    ``δ = Δ/mean(Δ)``; all ones for ``none`` or T == 1.
    """
    t = masks.shape[0]
    ones = torch.ones(t, dtype=torch.float32, device=masks.device)
    if kind == "none" or t < 2:
        return ones
    if kind not in _MEASURES:
        raise TamvtError(f"loss.reweighting: unknown type {kind!r} (area, centroid, components, none)")
    with torch.no_grad():
        delta = _MEASURES[kind](binary_targets(masks))
        ratio = delta / delta.mean()
        e = torch.exp(ratio / tau)
        w = e / e.mean()
        return torch.cat([ones[:1], w])


# --------------------------------------------------------------------------------------------


class MaskCriterion(nn.Module):
    """Focal + dice loss over all decoder outputs, with transformation-aware frame weights.

    Args:
        focal_weight, dice_weight: multipliers of the focal / dice terms in ``total``.
        alpha, gamma: focal-loss parameters.
        reweighting: ``area`` | ``centroid`` | ``components`` | ``none``.
        tau: re-weighting temperature.
        apply_to: which term the frame weights multiply: ``focal`` | ``dice`` | ``both``.
    """

    def __init__(
        self,
        focal_weight: float = 5.0,
        dice_weight: float = 5.0,
        alpha: float = 0.25,
        gamma: float = 2.0,
        reweighting: Reweighting = "area",
        tau: float = 1.0,
        apply_to: ApplyTo = "focal",
    ) -> None:
        super().__init__()
        if reweighting not in ("area", "centroid", "components", "none"):
            raise TamvtError(f"loss.reweighting: unknown type {reweighting!r} (area, centroid, components, none)")
        if apply_to not in ("focal", "dice", "both"):
            raise TamvtError(f"loss.apply_to: unknown value {apply_to!r} (focal, dice, both)")
        if tau <= 0:
            raise TamvtError(f"loss.tau must be > 0, got {tau}")
        self.focal_weight = focal_weight
        self.dice_weight = dice_weight
        self.alpha = alpha
        self.gamma = gamma
        self.reweighting = reweighting
        self.tau = tau
        self.apply_to = apply_to

    def frame_weights(self, targets: Tensor) -> Tensor:
        """(B, T) weights for (B, T, H, W) targets (one weight sequence per object)."""
        return torch.stack([frame_weights(t, self.reweighting, self.tau) for t in targets])

    def forward(self, layer_logits: list[Tensor], targets: Tensor) -> dict[str, Tensor]:
        """Loss terms of one window.

        Args:
            layer_logits: one tensor per decoder layer, in layer order (the last = the prediction),
                each (T, 1, h, w) for one object or (B, T, h, w) for B objects.
            targets: (T, H, W) or (B, T, H, W), bool / uint8 (0, 1, 255 = void) / float.
        Returns: ``{"loss_mask", "loss_dice", "loss_mask_0", "loss_dice_0", …, "total"}``,
        0-d float32 tensors; the per-layer terms are unweighted, ``total`` is weighted.
        """
        if not layer_logits:
            raise ValueError("layer_logits is empty")
        tgt = targets if targets.dim() == 4 else targets[None]  # (B, T, H, W)
        b, t, h, w = tgt.shape
        tgt = binary_targets(tgt).flatten(2)  # (B, T, H*W)
        weights = self.frame_weights(tgt.view(b, t, h, w))  # (B, T)
        wf = weights if self.apply_to in ("focal", "both") else None
        wd = weights if self.apply_to in ("dice", "both") else None
        num_frames = float(max(b * t, 1))  # official num_boxes: every query frame counts

        def terms(logits: Tensor) -> tuple[Tensor, Tensor]:
            x = logits.float()
            if x.dim() != 4 or (targets.dim() == 3 and x.shape[1] != 1):
                raise ValueError(f"logits must be (T, 1, h, w) or (B, T, h, w), got {tuple(x.shape)}")
            x = x.reshape(b, t, *x.shape[-2:]) if targets.dim() == 3 else x
            if x.shape[:2] != (b, t):
                raise ValueError(f"logits {tuple(x.shape)} do not match targets {tuple(targets.shape)}")
            if x.shape[-2:] != (h, w):
                x = F.interpolate(x.flatten(0, 1)[:, None], size=(h, w), mode="bilinear", align_corners=False)
            x = x.reshape(b, t, h * w)
            focal = sigmoid_focal_loss(x, tgt, self.alpha, self.gamma)  # (B, T, P)
            if wf is not None:
                focal = focal * wf[..., None]
            focal = focal.mean(2).sum() / num_frames
            dice = dice_loss(x.flatten(0, 1), tgt.flatten(0, 1)).view(b, t)
            if wd is not None:
                dice = dice * wd
            return focal, dice.sum() / num_frames

        out: dict[str, Tensor] = {}
        out["loss_mask"], out["loss_dice"] = terms(layer_logits[-1])
        for i, logits in enumerate(layer_logits[:-1]):
            out[f"loss_mask_{i}"], out[f"loss_dice_{i}"] = terms(logits)
        out["total"] = sum(  # type: ignore[assignment]  # a sum of tensors is a tensor
            value * (self.focal_weight if key.startswith("loss_mask") else self.dice_weight)
            for key, value in out.items()
        )
        return out


def build_criterion(cfg: LossConfig) -> MaskCriterion:
    """The training criterion described by ``cfg``."""
    return MaskCriterion(
        focal_weight=cfg.focal_weight,
        dice_weight=cfg.dice_weight,
        alpha=cfg.alpha,
        gamma=cfg.gamma,
        reweighting=cfg.reweighting,
        tau=cfg.tau,
        apply_to=cfg.apply_to,
    )
