"""Mask head (SPEC §1.8): shared LayerNorm -> 3-layer MLP -> dot product with ``mask_features``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MaskHead(nn.Module):
    """Turns decoder queries into stride-4 mask logits; applied after every decoder block.

    Args:
        dim: width d (query width = mask-feature width).
        num_layers: MLP depth (3, ReLU between layers).
    """

    def __init__(self, dim: int, num_layers: int = 3) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.ModuleList(nn.Linear(dim, dim) for _ in range(num_layers))

    def embed(self, hidden: Tensor) -> Tensor:
        """``(..., d)`` decoder queries -> ``(..., d)`` mask embeddings (LayerNorm + MLP)."""
        x = self.norm(hidden)
        for i, layer in enumerate(self.mlp):
            x = layer(x)
            if i < len(self.mlp) - 1:
                x = F.relu(x)
        return x

    def forward(self, hidden: Tensor, mask_features: Tensor) -> Tensor:
        """
        Args:
            hidden: ``(B, T, d)`` decoder queries.
            mask_features: ``(B*T, d, H/4, W/4)``.
        Returns:
            logits ``(B, T, H/4, W/4)``.
        """
        b, t, d = hidden.shape
        feats = mask_features.reshape(b, t, d, *mask_features.shape[-2:])
        return torch.einsum("btc,btchw->bthw", self.embed(hidden), feats)

    def project(self, hidden: Sequence[Tensor], y4: Tensor, conv: nn.Conv2d) -> list[Tensor]:
        """The logits of every decoder layer, ``forward(h, conv(y4))`` for each ``h`` in ``hidden``,
        without computing ``conv(y4)``.

        The logit is linear in the mask features, so the query is contracted with the convolution's
        weights first: ``<q, W * y + b> = (q . W) * y + q . b``, one convolution with one output channel
        per layer instead of d (at stride 4 the d-channel convolution costs about a quarter of a
        ResNet-50 pass per object and frame). Float rounding differs from ``forward`` (~1e-7 relative).

        Args:
            hidden: per decoder layer ``(B, T, d)`` queries.
            y4: ``(B*T, d, H/4, W/4)`` the pixel decoder's stride-4 map before its mask-feature conv.
            conv: that convolution (``d -> d``, odd kernel, stride 1, "same" padding, with bias).
        Returns:
            per layer, logits ``(B, T, H/4, W/4)``.
        """
        layers = len(hidden)
        b, t, d = hidden[0].shape
        q = self.embed(torch.stack(list(hidden), dim=2)).reshape(b * t, layers, d)  # (B*T, L, d)
        weight = torch.einsum("nlc,cikj->nlikj", q, conv.weight)  # (B*T, L, d, k, k)
        bias = q @ conv.bias if conv.bias is not None else None  # (B*T, L)
        fmt = torch.channels_last if y4.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        out = torch.cat(
            [
                F.conv2d(
                    y4[n : n + 1],
                    weight[n].contiguous(memory_format=fmt),
                    None if bias is None else bias[n],
                    padding=conv.padding,
                )
                for n in range(b * t)
            ]
        )  # (B*T, L, H/4, W/4)
        out = out.transpose(0, 1).contiguous().reshape(layers, b, t, *out.shape[-2:])
        return list(out.unbind(0))
