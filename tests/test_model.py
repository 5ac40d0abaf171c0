"""Model-level tests: every shipped preset and every ablation runs and trains, and the fused matching
equals the explicit formulation of SPEC §1.4-1.5. Preset tests run on 64x64 inputs (the smallest
size with a 2x2 stride-32 map) so that even ResNet-50 takes a few seconds on one CPU thread."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from tamvt.config import load_preset, preset_names
from tamvt.memory import MemoryBank, step_clip
from tamvt.models.matching import Matching, rte_rows
from tamvt.models.tamvt import build_tamvt


def run_two_clips(model, frames: torch.Tensor, masks: torch.Tensor):
    """Reference frame 0 with ``masks`` (B,1,H,W), then clips [1,2] and [3,4]."""
    feats = model.encode_frames(frames)
    bank = MemoryBank(model.bank_size)
    bank.add(model.encode_memory(feats.select(0), masks))
    return [step_clip(model, bank, feats.select(slice(s, s + 2))) for s in (1, 3)], bank


PRESETS = preset_names()


def inputs(h: int = 64, w: int = 96, objects: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(5, 3, h, w, generator=g)
    masks = (torch.rand(objects, 1, h, w, generator=g) > 0.5).float()
    return frames, masks


def test_every_preset_is_tested():
    assert {"tamvt-mini", "tamvt-small", "tamvt-r50"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_forward_and_gradients(preset):
    """No NaN, the right shapes, and every trainable parameter gets a non-zero finite gradient."""
    cfg = load_preset(preset).model
    torch.manual_seed(0)
    model = build_tamvt(cfg).train()
    with torch.no_grad():  # biases / norm affines start at constants: move them so their effect is tested
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.empty_like(p).uniform_(-0.1, 0.1))
    frames, masks = inputs(h=64, w=64)
    clips, bank = run_two_clips(model, frames, masks)
    assert len(model.matching_levels) == cfg.matching_scales
    assert len(clips[0].logits) == cfg.decoder_layers
    assert clips[0].logits[-1].shape == (1, 2, 16, 16)
    assert bank.entry_ids == [0, 1, 2]
    loss = sum(layer.float().square().mean() for c in clips for layer in c.logits)
    assert torch.isfinite(loss)
    loss.backward()
    frozen_prefixes = ("backbone.conv1.", "backbone.layer1.") if cfg.backbone_freeze_stem else ()
    for name, p in model.named_parameters():
        if name.startswith(frozen_prefixes):
            assert not p.requires_grad and p.grad is None, name
            continue
        assert p.requires_grad, name
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if name != "decoder.layers.0.self_attn.in_proj_weight":
            # (exempt: the first block's queries start at 0, so all its self-attention values equal
            # the value bias; without dropout the output depends on neither q/k nor W_v -- also in
            # the authors' model)
            assert p.grad.abs().sum() > 0, name
    assert all(b.grad is None for b in model.buffers())


@pytest.mark.parametrize(
    "override",
    [
        "model.rte=none",
        "model.rte=add",
        "model.matching_scales=1",
        "model.matching_scales=3",
        "model.clip_length=3",
        "model.bank_size=2",
    ],
)
def test_ablations_run(override):
    cfg = load_preset("tamvt-small", [override]).model
    torch.manual_seed(0)
    model = build_tamvt(cfg).eval()
    frames, masks = inputs(h=64, w=64, objects=2)
    with torch.no_grad():
        feats = model.encode_frames(frames)
        bank = MemoryBank(cfg.bank_size)
        bank.add(model.encode_memory(feats.select(0), masks))
        for s in range(1, 5, cfg.clip_length):
            out = step_clip(model, bank, feats.select(slice(s, s + cfg.clip_length)))
            assert torch.isfinite(out.logits[-1]).all()
    assert len(model.matching_levels) == cfg.matching_scales
    assert len(bank) == min(cfg.bank_size, 1 + len(range(1, 5, cfg.clip_length)))


@pytest.mark.parametrize("preset", PRESETS)
def test_objects_batched_equal_separate(preset):
    """B objects in one pass (shared attention, values stacked in channels) == one pass per object."""
    torch.manual_seed(0)
    model = build_tamvt(load_preset(preset).model).eval()
    frames, masks = inputs(h=64, w=64, objects=3)
    with torch.no_grad():
        together, _ = run_two_clips(model, frames, masks)
        for b in range(3):
            alone, _ = run_two_clips(model, frames, masks[b : b + 1])
            for c in range(2):
                for layer in range(len(alone[c].logits)):
                    diff = (together[c].logits[layer][b] - alone[c].logits[layer][0]).abs().max()
                    assert diff <= 1e-4, (b, c, layer, diff)


def explicit_matching(block, q_in, keys, values, theta, mode):
    """SPEC §1.4-1.5 written out: per object and head, matmul / clip / RTE / softmax / matmul."""
    d, heads = block.dim, block.heads
    dh = d // heads
    q = block.fc_q(block.pre_ln(q_in))  # (Lq, d)
    k = torch.cat([block.fc_k(block.pre_ln(kk)) for kk in keys])  # (Lk, d)
    v = torch.cat([block.fc_v(vv) for vv in values], dim=1)  # (B, Lk, d)
    per_key = torch.cat([theta[i].expand(kk.shape[0]) for i, kk in enumerate(keys)]) if mode != "none" else None
    outs = []
    for b in range(v.shape[0]):
        o_heads = []
        for h in range(heads):
            sl = slice(h * dh, (h + 1) * dh)
            logits = (q[:, sl] @ k[:, sl].T / math.sqrt(d)).clip(-1e4, 1e4)
            if mode == "mul":
                logits = logits * per_key
            elif mode == "add":
                logits = logits + per_key
            o_heads.append(logits.softmax(dim=1) @ v[b][:, sl])
        o = block.ln(torch.cat(o_heads, dim=1))
        outs.append(o + F.gelu(block.fc_o(o)))
    return torch.stack(outs)  # (B, Lq, d)


@pytest.mark.parametrize("mode", ["mul", "add", "none"])
def test_fused_matching_equals_explicit(mode):
    torch.manual_seed(0)
    d, heads, n, hw, t, b = 64, 4, 3, 12, 2, 2
    matching = Matching(d, heads, num_scales=1, dropout=0.1, rte=mode, bank_size=4).eval()
    if mode != "none":
        with torch.no_grad():
            matching.rte.theta.uniform_(0.5, 1.5) if mode == "mul" else matching.rte.theta.uniform_(-1, 1)
    block = matching.blocks[0]
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))
    q_map = torch.randn(t, d, 3, 4)  # (T, d, h, w), h*w = 12
    mem_k = [torch.randn(hw, d) for _ in range(n)]  # memory frame tokens (before LN / fc_k)
    mem_v = [torch.randn(b, hw, d) for _ in range(n)]  # memory mask tokens (before fc_v)
    with torch.no_grad():
        fused = matching([q_map], [[block.project_keys(k) for k in mem_k]], [[block.project_values(v) for v in mem_v]])[
            0
        ]  # (B*T, d, h, w)
        theta = matching.rte.theta[rte_rows(n)] if mode != "none" else None
        q_tokens = q_map.flatten(2).transpose(1, 2).reshape(t * hw, d)
        expected = explicit_matching(block, q_tokens, mem_k, mem_v, theta, mode)  # (B, T*hw, d)
    expected = expected.reshape(b * t, 3, 4, d).permute(0, 3, 1, 2)
    assert (fused - expected).abs().max() <= 1e-5


def test_rte_changes_output_and_chunking_is_exact(monkeypatch):
    """Different theta -> different Z (the RTE is used); query chunking gives the same Z."""
    import tamvt.models.matching as matching_module

    torch.manual_seed(0)
    matching = Matching(32, 4, num_scales=1, dropout=0.0, rte="mul", bank_size=3).eval()
    block = matching.blocks[0]
    q = torch.randn(2, 32, 4, 4)
    keys = [[block.project_keys(torch.randn(16, 32)) for _ in range(3)]]
    values = [[block.project_values(torch.randn(1, 16, 32)) for _ in range(3)]]
    with torch.no_grad():
        base = matching([q], keys, values)[0]
        monkeypatch.setattr(matching_module, "MAX_ATTENTION_ELEMENTS", 4 * 48 * 5)  # chunks of 5 queries
        chunked = matching([q], keys, values)[0]
        matching.rte.theta[rte_rows(3)] = torch.tensor([2.0, 1.0, 0.5])
        changed = matching([q], keys, values)[0]
    assert (base - chunked).abs().max() <= 1e-6
    assert (base - changed).abs().max() > 1e-3


def test_encode_memory_rejects_bad_masks():
    model = build_tamvt(dataclasses.replace(load_preset("tamvt-small").model, decoder_layers=1))
    frames, _ = inputs(h=64, w=64)
    with torch.no_grad():
        feats = model.encode_frames(frames[:2])
        with pytest.raises(ValueError):
            model.encode_memory(feats, torch.zeros(1, 1, 64, 64))  # two frames
        with pytest.raises(ValueError):
            model.encode_memory(feats.select(0), torch.zeros(1, 1, 32, 64))  # wrong size


def test_backbone_loads_torchvision_imagenet_state_dict(tmp_path):
    """ImageNet weights come from a local torchvision state dict (fc and BN counters skipped); a file of
    another ResNet is refused with the file named."""
    import torchvision

    from tamvt.errors import InputError
    from tamvt.models.backbone import Backbone

    tv = torchvision.models.resnet18(weights=None)  # BatchNorm2d: has num_batches_tracked, like the real files
    with torch.no_grad():
        for p in tv.parameters():
            p.uniform_(-1, 1)
    torch.save(tv.state_dict(), tmp_path / "resnet18.pth")
    bb = Backbone("resnet18")
    bb.load_imagenet_weights(tmp_path / "resnet18.pth")
    assert torch.equal(bb.layer3[1].conv2.weight, tv.layer3[1].conv2.weight)
    assert torch.equal(bb.bn1.running_var, tv.bn1.running_var)
    with pytest.raises(InputError, match="resnet18.pth.*not weights of this ResNet"):
        Backbone("resnet50").load_imagenet_weights(tmp_path / "resnet18.pth")
    with pytest.raises(InputError, match="not found"):
        bb.load_imagenet_weights(tmp_path / "missing.pth")


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_own_resnet_equals_torchvision(name):
    """The backbone is our copy of torchvision's ResNet (to keep torchvision out of inference memory):
    same parameter names in the same order, same outputs."""
    import torchvision
    from torchvision.ops import FrozenBatchNorm2d

    from tamvt.models.backbone import Backbone

    tv = getattr(torchvision.models, name)(weights=None, norm_layer=FrozenBatchNorm2d)
    sd = {k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    ours = Backbone(name)
    assert list(sd) == list(ours.state_dict())
    g = torch.Generator().manual_seed(0)
    for k, v in sd.items():  # non-trivial BN statistics, so the frozen-BN arithmetic is exercised
        if k.endswith(("running_var", "bn1.weight", "bn2.weight", "bn3.weight")):
            v.copy_(0.8 + 0.4 * torch.rand(v.shape, generator=g))
        elif k.endswith(("running_mean", ".bias")):
            v.copy_(-0.1 + 0.2 * torch.rand(v.shape, generator=g))
    ours.load_state_dict(sd)
    x = torch.randn(1, 3, 64, 96, generator=g)
    t = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
    expected = {}
    for level, layer in zip(
        ("res2", "res3", "res4", "res5"), (tv.layer1, tv.layer2, tv.layer3, tv.layer4), strict=True
    ):
        t = layer(t)
        expected[level] = t
    got = ours(x)
    for level, value in expected.items():
        assert torch.equal(got[level], value), level


def test_backbone_from_scratch_options():
    """The from-scratch variant (GroupNorm, narrower, nothing frozen) is torchvision's ResNet with
    GroupNorm(8) layers at width 64, has width * 2**k channels otherwise, and trains every layer."""
    import torchvision
    from torch import nn

    from tamvt.models.backbone import Backbone

    tv = torchvision.models.resnet18(weights=None, norm_layer=lambda c: nn.GroupNorm(8, c))
    ours = Backbone("resnet18", norm="group", freeze_stem=False)
    sd = {k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    assert list(sd) == list(ours.state_dict())
    g = torch.Generator().manual_seed(1)
    for v in sd.values():
        v.copy_(0.5 + torch.rand(v.shape, generator=g) if v.dim() == 1 else v)
    ours.load_state_dict(sd)
    x = torch.randn(1, 3, 64, 96, generator=g)
    with torch.no_grad():
        t = tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))
        assert torch.allclose(ours(x)["res3"], t, atol=1e-5)
    assert all(p.requires_grad for p in ours.parameters())

    narrow = Backbone("resnet18", width=32, norm="group")
    assert narrow.channels == {"res2": 32, "res3": 64, "res4": 128, "res5": 256}
    out = narrow(torch.randn(1, 3, 64, 96))
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {
        "res2": (32, 16, 24),
        "res3": (64, 8, 12),
        "res4": (128, 4, 6),
        "res5": (256, 2, 3),
    }
    frozen = {n for n, p in narrow.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("conv1.", "bn1.", "layer1.")) for n in frozen)
    assert "layer1.0.bn1.weight" in frozen and "layer2.0.conv1.weight" not in frozen
    with pytest.raises(ValueError, match="norm"):
        Backbone("resnet18", norm="batch")


def test_model_config_backbone_fields_reach_the_model():
    from tamvt.config import apply_overrides, load_preset
    from tamvt.errors import TamvtError
    from tamvt.models.tamvt import build_tamvt

    cfg = load_preset("tamvt-mini")
    assert (cfg.model.backbone_width, cfg.model.backbone_norm, cfg.model.backbone_freeze_stem) == (32, "group", False)
    net = build_tamvt(cfg.model)
    assert net.backbone.channels["res5"] == 256 and isinstance(net.backbone.bn1, torch.nn.GroupNorm)
    assert net.backbone.conv1.weight.requires_grad
    with pytest.raises(TamvtError, match="backbone_width"):
        apply_overrides(cfg, ["model.backbone_width=12"])
