"""The inference fast paths compute the same numbers as the plain formulas (up to float rounding):
frozen BatchNorm folded into its convolution without autograd, and the mask-feature convolution
folded into the mask head's queries (MaskHead.project)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tamvt.models.backbone import Backbone, FrozenBatchNorm2d
from tamvt.models.mask_head import MaskHead


def randomise_frozen_bn(module: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, FrozenBatchNorm2d):
            n = m.weight.numel()
            m.weight.copy_(0.8 + 0.4 * torch.rand(n, generator=g))
            m.bias.copy_(-0.1 + 0.2 * torch.rand(n, generator=g))
            m.running_mean.copy_(-0.1 + 0.2 * torch.rand(n, generator=g))
            m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=g))


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_folded_frozen_bn_equals_the_unfolded_backbone(name, channels_last):
    torch.manual_seed(0)
    net = Backbone(name).eval()
    randomise_frozen_bn(net)
    x = torch.randn(2, 3, 64, 96)
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    reference = net(x)  # autograd on: BatchNorm applied after each convolution
    with torch.no_grad():
        folded = net(x)
    for level, ref in reference.items():
        scale = ref.abs().max().item()
        assert (folded[level] - ref).abs().max().item() <= 1e-5 * scale, level
        if channels_last:
            assert folded[level].is_contiguous(memory_format=torch.channels_last), level


@pytest.mark.parametrize("channels_last", [False, True])
def test_mask_head_project_equals_the_conv_then_dot_product(channels_last):
    torch.manual_seed(0)
    b, t, d, layers = 2, 3, 16, 4
    head = MaskHead(d)
    conv = nn.Conv2d(d, d, 3, padding=1)
    y4 = torch.randn(b * t, d, 9, 13)
    if channels_last:
        conv, y4 = conv.to(memory_format=torch.channels_last), y4.contiguous(memory_format=torch.channels_last)
    hidden = [torch.randn(b, t, d, requires_grad=True) for _ in range(layers)]
    expected = [head(h, conv(y4)) for h in hidden]
    got = head.project(hidden, y4, conv)
    assert len(got) == layers
    for e, g in zip(expected, got, strict=True):
        assert g.shape == (b, t, 9, 13)
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)
    # gradients reach the same parameters with the same values
    sum(e.square().sum() for e in expected).backward()
    ref_grads = [p.grad.clone() for p in (*head.parameters(), *conv.parameters())]
    head.zero_grad()
    conv.zero_grad()
    sum(g.square().sum() for g in head.project(hidden, y4, conv)).backward()
    for ref, p in zip(ref_grads, (*head.parameters(), *conv.parameters()), strict=True):
        torch.testing.assert_close(p.grad, ref, rtol=1e-4, atol=1e-4)


def test_single_query_attention_equals_multihead_attention():
    from tamvt.models.decoder import single_query_attention

    torch.manual_seed(0)
    s, n, d, heads = 3, 50, 32, 8
    attn = nn.MultiheadAttention(d, heads, dropout=0.1, batch_first=True).eval()
    with torch.no_grad():
        attn.in_proj_bias.uniform_(-0.5, 0.5)  # biases matter: b_k drops out of the softmax, b_v does not
        attn.out_proj.bias.uniform_(-0.5, 0.5)
    query, key, value = torch.randn(s, 1, d), torch.randn(s, n, d), torch.randn(s, n, d)
    expected = attn(query, key, value, need_weights=False)[0]
    torch.testing.assert_close(single_query_attention(attn, query, key, value), expected, rtol=1e-5, atol=1e-5)
