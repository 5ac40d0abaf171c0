"""Mask head (SPEC §1.8): shared LayerNorm -> 3-layer MLP -> dot product with ``mask_features``."""

from __future__ import annotations

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

    def forward(self, hidden: Tensor, mask_features: Tensor) -> Tensor:
        """
        Args:
            hidden: ``(B, T, d)`` decoder queries.
            mask_features: ``(B*T, d, H/4, W/4)``.
        Returns:
            logits ``(B, T, H/4, W/4)``.
        """
        b, t, d = hidden.shape
        x = self.norm(hidden)
        for i, layer in enumerate(self.mlp):
            x = layer(x)
            if i < len(self.mlp) - 1:
                x = F.relu(x)
        feats = mask_features.reshape(b, t, d, *mask_features.shape[-2:])
        return torch.einsum("btc,btchw->bthw", x, feats)
