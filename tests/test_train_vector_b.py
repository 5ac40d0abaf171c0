"""The training unroll reproduces the authors' training forward + loss (official vector B).

Vector B (tests/fixtures/official/README.md): 12 frames at 96x128, frames 0-1 are memory with ground
truth, frames 2-11 are predicted in 5 clips of 2 with the memory updated by detached soft
predictions; train mode with every dropout off. We compare every decoder layer's logits, every loss
term and the weighted total (the frame weights alone are checked in tests/test_losses.py).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tamvt.train.unroll import UnrollOutput, unroll_window


def window_loss(
    model: torch.nn.Module,
    criterion: torch.nn.Module,
    frames: torch.Tensor,
    masks: torch.Tensor,
    num_memory: int,
    clip_length: int,
) -> tuple[dict[str, torch.Tensor], UnrollOutput]:
    """Unroll one single-object window (``frames`` (T, 3, H, W), ``masks`` (T, H, W) 0/1) with ground-truth
    memory masks, and apply the criterion to every decoder layer's logits of the query frames."""
    target = masks.float()
    out = unroll_window(model, frames, target[None, :num_memory], num_memory, clip_length)
    return criterion(out.layer_logits, target[None, num_memory:]), out


@pytest.fixture(scope="module")
def model(official_vectors):
    from tamvt.checkpoint import load_state_dict_strict
    from tamvt.models.tamvt import build_tamvt
    from tamvt.official import convert_official, convert_official_state_dict

    official = {k: v.float() for k, v in official_vectors.items() if not k.startswith(("A.", "B.", "C."))}
    _, cfg = convert_official(official)
    # the vector was made in train mode with every dropout set to 0
    net = build_tamvt(dataclasses.replace(cfg.model, dropout=0.0, matching_dropout=0.0))
    load_state_dict_strict(net, convert_official_state_dict(official))
    assert cfg.model.clip_length == 2
    return net.train()


@pytest.fixture(scope="module")
def result(model, official_vectors):
    from tamvt.config import LossConfig
    from tamvt.losses import build_criterion

    torch.manual_seed(0)
    crit = build_criterion(LossConfig())  # authors' defaults: area re-weighting on focal, weights 5/5
    frames = official_vectors["B.frames"]
    masks = official_vectors["B.gt_masks"]
    assert torch.equal(official_vectors["B.memory_masks"][:, 0], masks[:2].float())
    losses, out = window_loss(model, crit, frames, masks, num_memory=2, clip_length=2)
    return losses, out, crit


def test_memory_evolution(result, official_vectors):
    _, out, _ = result
    expected = [len(official_vectors[f"B.clip{c}.memory_keys"]) for c in range(5)]
    assert out.memory_sizes == expected == [2, 3, 4, 5, 6]


def test_per_layer_logits(result, official_vectors):
    _, out, _ = result
    assert len(out.layer_logits) == 6
    for layer, got in enumerate(out.layer_logits):
        want = official_vectors[f"B.pred_masks.layer{layer}"][:, 0]  # (10, 24, 32)
        assert got.shape == (1, 10, 24, 32)
        diff = (got[0].detach() - want).abs().max().item()
        assert diff <= 1e-3, f"layer {layer}: max |diff| {diff}"


def test_loss_terms(result, official_vectors):
    losses, _, _ = result
    keys = ["loss_mask", "loss_dice"] + [f"loss_{k}_{i}" for i in range(5) for k in ("mask", "dice")]
    for key in keys:
        got, want = losses[key].item(), official_vectors[f"B.loss.{key}"].item()
        assert abs(got - want) <= 1e-5 * abs(want), f"{key}: {got} vs {want}"
    got, want = losses["total"].item(), official_vectors["B.loss.total"].item()
    assert abs(got - want) <= 1e-5 * abs(want)
    assert abs(want - 53.569759) < 1e-5


def test_backward_reaches_trainable_parameters(model, result):
    losses, _, _ = result
    model.zero_grad(set_to_none=True)
    losses["total"].backward()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert any(n.startswith("backbone.conv1") for n in frozen)  # stem frozen [code]
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing[:5]  # every trainable parameter (RTE included) gets a gradient
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
