"""Training loss: official vector B, hand-computed frame weights, apply_to variants, void pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tamvt.config import LossConfig
from tamvt.errors import TamvtError
from tamvt.losses import MaskCriterion, build_criterion, frame_weights

TERMS = ["loss_mask", "loss_dice"] + [f"loss_{k}_{i}" for i in range(5) for k in ("mask", "dice")]


@pytest.fixture(scope="module")
def vec_b(official_vectors) -> dict[str, torch.Tensor]:
    return {k: v for k, v in official_vectors.items() if k.startswith("B.")}


def _layers(vec_b):
    return [vec_b[f"B.pred_masks.layer{i}"] for i in range(6)]


def _weights_by_hand(deltas: list[float], tau: float = 1.0) -> list[float]:
    mean = sum(deltas) / len(deltas)
    e = [math.exp(d / mean / tau) for d in deltas]
    return [1.0] + [x / (sum(e) / len(e)) for x in e]


def _dice_per_frame(logits: torch.Tensor, gt: np.ndarray) -> np.ndarray:
    """Independent numpy dice (smooth 1) on bilinearly upsampled logits; gt (T, H, W) 0/1."""
    up = torch.nn.functional.interpolate(logits, size=gt.shape[1:], mode="bilinear", align_corners=False)
    p = 1 / (1 + np.exp(-up[:, 0].double().numpy()))
    t = gt.astype(np.float64)
    return 1 - (2 * (p * t).sum((1, 2)) + 1) / (p.sum((1, 2)) + t.sum((1, 2)) + 1)


# ---------------------------------------------------------------------------------- vector B


def test_vector_b_frame_weights(vec_b):
    """The default criterion's weights of the 10 query frames, through the batched (B, T, H, W) path."""
    crit = build_criterion(LossConfig())  # authors' defaults: area changes, tau 1
    w = crit.frame_weights(vec_b["B.gt_masks"][None, 2:].float())
    assert w.shape == (1, 10)
    torch.testing.assert_close(w[0], vec_b["B.frame_weights"], rtol=1e-5, atol=0)


def test_vector_b_every_term_and_total(vec_b):
    out = build_criterion(LossConfig())(_layers(vec_b), vec_b["B.gt_masks"][2:])
    assert set(out) == set(TERMS) | {"total"}
    for name in TERMS + ["total"]:
        ref = vec_b[f"B.loss.{name}"].item()
        assert out[name].item() == pytest.approx(ref, rel=1e-5), name
    assert vec_b["B.num_boxes"].item() == 10  # every query frame counts, the empty frame 6 too


def test_vector_b_batched_layout(vec_b):
    # (B, T, h, w) logits / (B, T, H, W) targets: two identical objects give the same mean terms
    layers = [torch.cat([x[:, 0][None]] * 2) for x in _layers(vec_b)]
    gt = torch.stack([vec_b["B.gt_masks"][2:]] * 2)
    out = MaskCriterion()(layers, gt)
    assert out["total"].item() == pytest.approx(vec_b["B.loss.total"].item(), rel=1e-5)


def test_apply_to_dice_and_both(vec_b):
    layers, gt = _layers(vec_b), vec_b["B.gt_masks"][2:]
    w = vec_b["B.frame_weights"].double().numpy()
    dice = _dice_per_frame(layers[-1], gt.numpy())
    plain = MaskCriterion(reweighting="none")(layers, gt)
    on_dice = MaskCriterion(apply_to="dice")(layers, gt)
    both = MaskCriterion(apply_to="both")(layers, gt)
    assert plain["loss_dice"].item() == pytest.approx(dice.sum() / 10, rel=1e-5)
    assert on_dice["loss_dice"].item() == pytest.approx((w * dice).sum() / 10, rel=1e-5)
    assert on_dice["loss_mask"].item() == pytest.approx(plain["loss_mask"].item(), rel=1e-6)
    assert both["loss_dice"].item() == pytest.approx((w * dice).sum() / 10, rel=1e-5)
    assert both["loss_mask"].item() == pytest.approx(vec_b["B.loss.loss_mask"].item(), rel=1e-5)
    # the default (focal) differs from no re-weighting: the weights really act
    assert abs(vec_b["B.loss.loss_mask"].item() - plain["loss_mask"].item()) > 1e-3


# ---------------------------------------------------------------------------------- hand numbers


def test_zero_logits_by_hand():
    # one frame of 2x2 with one object pixel, logits 0 -> p = 0.5 everywhere
    gt = torch.tensor([[[1, 0], [0, 0]]], dtype=torch.uint8)
    out = MaskCriterion(reweighting="none")([torch.zeros(1, 1, 2, 2)], gt)
    focal = math.log(2) * 0.25 * (0.25 * 1 + 0.75 * 3) / 4
    dice = 1 - (2 * 0.5 + 1) / (4 * 0.5 + 1 + 1)
    assert out["loss_mask"].item() == pytest.approx(focal, rel=1e-6)
    assert out["loss_dice"].item() == pytest.approx(dice, rel=1e-6)
    assert out["total"].item() == pytest.approx(5 * focal + 5 * dice, rel=1e-6)


def test_logits_are_upsampled_to_target_size():
    gt = torch.zeros(3, 16, 16, dtype=torch.uint8)
    gt[:, 4:12, 4:12] = 1
    small = MaskCriterion(reweighting="none")([torch.full((3, 1, 4, 4), 0.7)], gt)
    full = MaskCriterion(reweighting="none")([torch.full((3, 1, 16, 16), 0.7)], gt)
    assert small["total"].item() == pytest.approx(full["total"].item(), rel=1e-6)


def test_area_weights_by_hand():
    masks = torch.zeros(3, 4, 4, dtype=torch.uint8)
    masks[1, 0, :2] = 1  # areas 0, 2, 2 -> deltas 3, 1
    masks[2, 3, :2] = 1
    expected = _weights_by_hand([3, 1])
    torch.testing.assert_close(frame_weights(masks, "area"), torch.tensor(expected), rtol=1e-6, atol=0)
    expected_tau = _weights_by_hand([3, 1], tau=0.5)
    torch.testing.assert_close(frame_weights(masks, "area", 0.5), torch.tensor(expected_tau), rtol=1e-6, atol=0)


def test_centroid_weights_by_hand():
    masks = torch.zeros(5, 10, 20, dtype=torch.uint8)
    masks[0, 0, 0] = 1  # centre (0, 0)
    masks[1, 3, 4] = 1  # moved by 5
    masks[2, 3, 4] = 1  # still
    masks[2, 5, 4] = 1  # second pixel: centre (4, 4), moved by 1
    # frame 3 empty: disappearance = image diagonal; frame 4 empty too: 0
    diag = math.hypot(10, 20)
    expected = _weights_by_hand([5 + 1, 1 + 1, diag + 1, 0 + 1])
    torch.testing.assert_close(
        frame_weights(masks, "centroid"), torch.tensor(expected, dtype=torch.float32), rtol=1e-5, atol=0
    )


def test_components_weights_by_hand():
    masks = torch.zeros(4, 8, 8, dtype=torch.uint8)
    masks[0, 1:3, 1:3] = 1  # 1 component
    masks[1, 0, 0] = masks[1, 0, 4] = masks[1, 4, 0] = 1  # 3 components
    masks[2, 0, 0] = masks[2, 1, 1] = masks[2, 4, 4] = 1  # diagonal neighbours join: 2 components
    # frame 3 empty: 0 components
    expected = _weights_by_hand([2 + 1, 1 + 1, 2 + 1])
    torch.testing.assert_close(frame_weights(masks, "components"), torch.tensor(expected), rtol=1e-6, atol=0)


def test_none_and_single_frame_weights():
    masks = torch.randint(0, 2, (4, 5, 5), dtype=torch.uint8)
    assert torch.equal(frame_weights(masks, "none"), torch.ones(4))
    assert torch.equal(frame_weights(masks[:1], "area"), torch.ones(1))


def test_void_is_background():
    gen = torch.Generator().manual_seed(0)
    gt = (torch.rand(4, 12, 12, generator=gen) > 0.6).to(torch.uint8)
    with_void = gt.clone()
    with_void[:, :3] = torch.where(gt[:, :3] == 0, 255, gt[:, :3]).to(torch.uint8)
    with_void[2, 5:9, 5:9] = 255  # void over object pixels too: they become background
    as_zero = torch.where(with_void == 255, 0, with_void).to(torch.uint8)
    logits = [torch.randn(4, 1, 6, 6, generator=gen) for _ in range(3)]
    a = MaskCriterion(apply_to="both")(logits, with_void)
    b = MaskCriterion(apply_to="both")(logits, as_zero)
    for k in a:
        assert a[k].item() == pytest.approx(b[k].item(), rel=1e-6), k
    torch.testing.assert_close(frame_weights(with_void), frame_weights(as_zero))


def test_gradient_flows_to_logits_not_weights():
    gt = torch.zeros(3, 8, 8, dtype=torch.uint8)
    gt[0, :4] = 1
    gt[2, :2] = 1
    logits = [torch.randn(3, 1, 4, 4, requires_grad=True) for _ in range(2)]
    out = MaskCriterion()(logits, gt)
    out["total"].backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in logits)


def test_bad_config_is_a_clear_error():
    with pytest.raises(TamvtError, match="reweighting"):
        build_criterion(LossConfig(reweighting="volume"))  # type: ignore[arg-type]
    with pytest.raises(TamvtError, match="apply_to"):
        build_criterion(LossConfig(apply_to="all"))  # type: ignore[arg-type]
