"""Hand-checked numbers for the model parts: position encodings, pixel decoder, space-time decoder,
mask head. Weights are set to identities / zeros so that each output can be worked out on paper
(the values in the comments) or by a few lines of numpy written from the SPEC formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tamvt.models.decoder import DecoderLayer, SpaceTimeDecoder
from tamvt.models.mask_head import MaskHead
from tamvt.models.pixel_decoder import TOP_DOWN, PixelDecoder
from tamvt.models.position_encoding import sine_position_encoding, sine_time_table

LN_EPS = 1e-5  # nn.LayerNorm and nn.GroupNorm default
# LayerNorm of [1, 2, 3, 4]: mean 2.5, variance 1.25 -> [-1.5, -0.5, 0.5, 1.5] / sqrt(1.25)
A, B = 1.5 / math.sqrt(1.25 + LN_EPS), 0.5 / math.sqrt(1.25 + LN_EPS)  # 1.341635, 0.447212


def ln(x: np.ndarray) -> np.ndarray:
    """LayerNorm over the last axis, unit weight, zero bias."""
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + LN_EPS)


# ------------------------------------------------------------------------------ position encodings


def test_sine_position_encoding_hand_values():
    pe = sine_position_encoding(2, 3, 8)  # rows y in channels 0-3, columns x in 4-7
    assert pe.shape == (1, 8, 2, 3) and pe.dtype == torch.float32
    # row 0 of 2: pos = 1/2 * 2pi = pi; channel 0 sin(pi) = 0, channel 1 cos(pi) = -1,
    # channels 2/3 divide by 10000^(2/4) = 100: sin(pi/100) = 0.0314108, cos(pi/100) = 0.9995066
    assert pe[0, :4, 0, 0].tolist() == pytest.approx([0.0, -1.0, 0.0314108, 0.9995066], abs=1e-5)
    # row 1 of 2: pos = 2pi
    assert pe[0, :4, 1, 2].tolist() == pytest.approx([0.0, 1.0, 0.0627905, 0.9980267], abs=1e-5)
    # column 0 of 3: pos = 2pi/3 -> sin = sqrt(3)/2, cos = -1/2
    assert pe[0, 4:, 1, 0].tolist() == pytest.approx([math.sqrt(3) / 2, -0.5, 0.0209424, 0.9997807], abs=1e-5)
    assert torch.equal(pe[0, :4, :, 0], pe[0, :4, :, 2])  # the row half is constant along a row
    assert torch.equal(pe[0, 4:, 0], pe[0, 4:, 1])  # the column half is constant down a column


def test_sine_position_encoding_every_entry():
    """All entries of a 3x5, 16-channel map against the docstring's formula evaluated with math.sin."""
    h, w, dim = 3, 5, 16
    pe = sine_position_encoding(h, w, dim, temperature=20.0)
    half = dim // 2
    for c in range(dim):
        axis, k = divmod(c, half)  # axis 0: row, 1: column
        freq = 20.0 ** (2 * (k // 2) / half)
        for i in range(h):
            for j in range(w):
                index, size = (i, h) if axis == 0 else (j, w)
                pos = (index + 1) / (size + 1e-6) * 2 * math.pi
                want = math.sin(pos / freq) if k % 2 == 0 else math.cos(pos / freq)
                assert pe[0, c, i, j].item() == pytest.approx(want, abs=2e-6), (c, i, j)


def test_sine_time_table_hand_values():
    te = sine_time_table(3, 4)  # frequencies 1 and 10000^(-2/4) = 0.01
    expected = [
        [0, 1, 0, 1],
        [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
        [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)],
    ]
    assert te.shape == (3, 4)
    torch.testing.assert_close(te, torch.tensor(expected, dtype=torch.float32), rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------ pixel decoder


def identity_pixel_decoder(dim: int, bias: torch.Tensor | None = None) -> PixelDecoder:
    """Every convolution an identity (1x1, or the centre tap of a 3x3); GroupNorm(32) over 32 channels
    then standardises each channel over its own map. ``bias``: the mask-feature conv's bias."""
    dec = PixelDecoder(dict.fromkeys(TOP_DOWN, dim), dim)
    eye = torch.eye(dim)
    with torch.no_grad():
        for conv in (
            [m.conv for m in dec.lateral.values()] + [m.conv for m in dec.output.values()] + [dec.mask_features]
        ):
            conv.weight.zero_()
            k = conv.weight.shape[-1] // 2
            conv.weight[:, :, k, k] = eye
        dec.mask_features.bias.copy_(torch.zeros(dim) if bias is None else bias)
    return dec


def test_pixel_decoder_hand_values():
    """res5 holds [0, 2] in every channel (a 1x2 map), everything else is 0: standardised twice it is
    [-1, 1] -> ReLU [0, 1]; upsampled (nearest) and standardised again at each level the right half
    stays 1 and the left half 0, down to stride 4, where the mask-feature conv adds its bias."""
    dim, t = 32, 1
    bias = torch.linspace(-1, 1, dim)
    dec = identity_pixel_decoder(dim, bias).eval()
    feats = {
        "res5": torch.zeros(t, dim, 1, 2),
        "res4": torch.zeros(t, dim, 2, 4),
        "res3": torch.zeros(t, dim, 4, 8),
        "res2": torch.zeros(t, dim, 8, 16),
    }
    feats["res5"][..., 1] = 2.0
    z = {"res5": torch.zeros(t, dim, 1, 2)}
    with torch.no_grad():
        mask_features, (y32, y16, y8) = dec(feats, z)
    assert mask_features.shape == (1, dim, 8, 16)
    assert y32.shape == (1, dim, 1, 2) and y16.shape == (1, dim, 2, 4) and y8.shape == (1, dim, 4, 8)
    for y in (y32, y16, y8):
        w = y.shape[-1]
        torch.testing.assert_close(y[..., : w // 2], torch.zeros_like(y[..., : w // 2]), rtol=0, atol=1e-4)
        torch.testing.assert_close(y[..., w // 2 :], torch.ones_like(y[..., w // 2 :]), rtol=0, atol=1e-4)
    right = torch.ones(dim, 8, 8) + bias[:, None, None]
    torch.testing.assert_close(mask_features[0, :, :, 8:], right, rtol=0, atol=1e-4)
    torch.testing.assert_close(mask_features[0, :, :, :8], bias[:, None, None].expand(dim, 8, 8), rtol=0, atol=1e-4)


@pytest.mark.parametrize("num_z", [1, 2, 3])
def test_pixel_decoder_equals_the_fpn_formula(num_z):
    """SPEC §1.6 in numpy for identity convolutions: y = relu(std(std(res_l) + up(y_coarser) + Z_l)),
    ``std`` = standardise each channel over its map (GroupNorm(32) of 32 channels), ``up`` = nearest x2,
    Z at the first ``num_z`` levels only; two objects share the frames' lateral features."""
    dim, t, b = 32, 2, 2
    g = torch.Generator().manual_seed(0)
    sizes = {"res5": 2, "res4": 4, "res3": 8, "res2": 16}
    feats = {k: torch.randn(t, dim, s, s, generator=g) for k, s in sizes.items()}
    z = {k: torch.randn(b * t, dim, sizes[k], sizes[k], generator=g) for k in TOP_DOWN[:num_z]}
    bias = torch.randn(dim, generator=g)
    with torch.no_grad():
        mask_features, multi_scale = identity_pixel_decoder(dim, bias)(feats, z)

    def std(x):
        return (x - x.mean((-2, -1), keepdims=True)) / np.sqrt(x.var((-2, -1), keepdims=True) + LN_EPS)

    y = None
    expected_levels = []
    for name in TOP_DOWN:
        x = np.broadcast_to(std(feats[name].double().numpy())[None], (b, t, dim, sizes[name], sizes[name]))
        if y is not None:
            x = x + y.repeat(2, axis=-2).repeat(2, axis=-1)
        if name in z:
            x = x + z[name].double().numpy().reshape(b, t, dim, sizes[name], sizes[name])
        y = np.maximum(std(x), 0)
        expected_levels.append(y)
    expected_mask = y + bias.double().numpy()[:, None, None]
    np.testing.assert_allclose(mask_features.numpy(), expected_mask.reshape(b * t, dim, 16, 16), atol=1e-4)
    assert len(multi_scale) == 3
    for got, want in zip(multi_scale, expected_levels[:3], strict=True):
        np.testing.assert_allclose(got.numpy(), want.reshape(got.shape), atol=1e-4)


# ------------------------------------------------------------------------------ space-time decoder


def zero_layer(layer: DecoderLayer) -> DecoderLayer:
    """All weights and biases 0, LayerNorms the identity affine: every branch adds 0."""
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        for norm in (layer.norm1, layer.norm2, layer.norm3):
            norm.weight.fill_(1.0)
    return layer


def mean_attention(attn: torch.nn.MultiheadAttention) -> None:
    """Query and key projections 0 (every logit 0: uniform attention), value and output projections the
    identity: the attention returns the plain mean of its values."""
    d = attn.embed_dim
    with torch.no_grad():
        attn.in_proj_weight.zero_()
        attn.in_proj_weight[2 * d :] = torch.eye(d)
        attn.in_proj_bias.zero_()
        attn.out_proj.weight.copy_(torch.eye(d))
        attn.out_proj.bias.zero_()


def test_decoder_layer_with_zero_branches_is_layer_norm():
    layer = zero_layer(DecoderLayer(4, 2, 8, dropout=0.0)).eval()
    tgt = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])  # (B=1, T=1, d=4)
    memory = torch.randn(1, 6, 4)
    with torch.no_grad():
        out = layer(tgt, torch.randn(1, 4), memory, torch.randn(1, 6, 4))
    assert out[0, 0].tolist() == pytest.approx([-A, -B, B, A], abs=1e-4)


def test_decoder_self_attention_mixes_the_frames_of_one_object():
    """Mean self-attention: frame t of object b gets mean over t' of tgt[b, t'] -- the other object's
    frames do not enter, and the value is tgt itself (the query position only enters q and k)."""
    layer = zero_layer(DecoderLayer(4, 2, 8, dropout=0.0))
    mean_attention(layer.self_attn)
    layer.eval()
    tgt = torch.tensor(
        [
            [[1.0, 0, 0, 0], [0, 1.0, 0, 0]],  # object 0: mean [0.5, 0.5, 0, 0]
            [[0, 0, 3.0, 0], [0, 0, 0, 1.0]],
        ]
    )  # object 1: mean [0, 0, 1.5, 0.5]
    with torch.no_grad():
        out = layer(tgt, 10 * torch.randn(2, 4), torch.randn(4, 5, 4), torch.randn(1, 5, 4))
    # object 0, frame 0: [1.5, 0.5, 0, 0] -> mean 0.5, variance 0.375 -> [1, 0, -0.5, -0.5] / sqrt(0.375)
    assert out[0, 0].tolist() == pytest.approx(
        [1 / math.sqrt(0.375), 0, -0.5 / math.sqrt(0.375), -0.5 / math.sqrt(0.375)], abs=1e-4
    )
    x = tgt.double().numpy()
    expected = ln(ln(ln(x + x.mean(1, keepdims=True))))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-4)


def test_decoder_cross_attention_reads_only_its_own_frame():
    """Mean cross-attention: query (b, t) gets the mean of memory row b*T + t (its own frame's
    tokens); the position encoding goes into the keys only, not the values."""
    b, t, d, hw = 2, 3, 4, 5
    layer = zero_layer(DecoderLayer(d, 2, 8, dropout=0.0))
    mean_attention(layer.cross_attn)
    layer.eval()
    g = torch.Generator().manual_seed(0)
    tgt = torch.randn(b, t, d, generator=g)
    memory = torch.randn(b * t, hw, d, generator=g)
    with torch.no_grad():
        out = layer(tgt, torch.randn(t, d, generator=g), memory, 100 * torch.randn(1, hw, d, generator=g))
    means = memory.double().numpy().mean(1).reshape(b, t, d)
    expected = ln(ln(ln(tgt.double().numpy()) + means))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-4)


def test_decoder_ffn_is_relu_and_residual():
    layer = zero_layer(DecoderLayer(4, 2, 4, dropout=0.0))
    with torch.no_grad():
        layer.linear1.weight.copy_(torch.eye(4))
        layer.linear2.weight.copy_(torch.eye(4))
    layer.eval()
    with torch.no_grad():
        out = layer(
            torch.tensor([[[1.0, 2.0, 3.0, 4.0]]]), torch.zeros(1, 4), torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)
        )
    # x = LN([1, 2, 3, 4]) = [-A, -B, B, A]; x + relu(x) = [-A, -B, 2B, 2A]: mean (B + A) / 4
    v = np.array([-A, -B, 2 * B, 2 * A])
    assert out[0, 0].tolist() == pytest.approx(ln(v).tolist(), abs=1e-4)
    assert out[0, 0].tolist() != pytest.approx([-A, -B, B, A], abs=1e-2)  # the FFN changed something


def test_space_time_decoder_cycles_levels_and_returns_every_layer():
    """Layer i reads level i mod 3 (+ its level embedding); each layer's state is returned."""
    b, t, d, layers = 1, 2, 4, 4
    dec = SpaceTimeDecoder(d, 2, 8, dropout=0.0, num_layers=layers, time_embed_len=3)
    for layer in dec.layers:
        zero_layer(layer)
        mean_attention(layer.cross_attn)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        dec.level_embed.copy_(torch.randn(3, d, generator=g))
    dec.eval()
    sizes = [(2, 2), (4, 4), (8, 8)]
    features = [torch.randn(b * t, d, h, w, generator=g) + 3 * i for i, (h, w) in enumerate(sizes)]
    pos = [torch.randn(1, d, h, w, generator=g) for h, w in sizes]
    with torch.no_grad():
        hidden = dec(features, pos, num_objects=b)
    assert len(hidden) == layers and all(h.shape == (b, t, d) for h in hidden)
    state = np.zeros((b, t, d))  # the decoder starts from zero queries
    for i in range(layers):
        level = i % 3
        embed = dec.level_embed[level].detach().double().numpy()
        read = features[level].double().numpy().mean((2, 3)).reshape(b, t, d) + embed
        state = ln(ln(ln(state) + read))
        np.testing.assert_allclose(hidden[i].numpy(), state, atol=1e-4, err_msg=f"layer {i}")
    with pytest.raises(ValueError, match="time embedding"):
        dec([f.repeat(2, 1, 1, 1) for f in features], pos, num_objects=1)  # T = 4 > 3 rows


# ------------------------------------------------------------------------------ mask head


def identity_mask_head(d: int) -> MaskHead:
    head = MaskHead(d)
    with torch.no_grad():
        for layer in head.mlp:
            layer.weight.copy_(torch.eye(d))
            layer.bias.zero_()
    return head.eval()


def test_mask_head_hand_values():
    """Identity MLP: the query is relu(LN(h)) = [0, 0, B, A] for h = [1, 2, 3, 4]; the logit at a pixel
    is its dot product with that pixel's mask features, and query (b, t) meets feature row b*T + t."""
    b, t, d = 2, 2, 4
    head = identity_mask_head(d)
    hidden = torch.tensor([1.0, 2.0, 3.0, 4.0]).expand(b, t, d)
    feats = torch.zeros(b * t, d, 1, 2)
    for row in range(b * t):
        feats[row, 3, 0, 0] = row + 1  # pixel (0, 0): channel 3 scaled by the row number
    feats[:, 2, 0, 1] = 2.0  # pixel (0, 1): 2 x channel 2
    feats[:, 0, 0, 1] = 5.0  # channel 0 of the query is 0 after the ReLU: no effect
    with torch.no_grad():
        logits = head(hidden, feats)
    assert logits.shape == (b, t, 1, 2)
    assert logits[:, :, 0, 0].flatten().tolist() == pytest.approx([A, 2 * A, 3 * A, 4 * A], abs=1e-4)
    assert logits[:, :, 0, 1].flatten().tolist() == pytest.approx([2 * B] * 4, abs=1e-4)


def test_mask_head_has_no_relu_after_the_last_layer():
    head = identity_mask_head(4)
    with torch.no_grad():
        head.mlp[-1].weight.copy_(-torch.eye(4))  # query -[0, 0, B, A]: negative logits survive
        logits = head(torch.tensor([[[1.0, 2.0, 3.0, 4.0]]]), torch.eye(4).reshape(1, 4, 2, 2))
    assert logits.flatten().tolist() == pytest.approx([0, 0, -B, -A], abs=1e-4)
