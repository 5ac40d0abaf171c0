"""Fixed sine encodings: 2-D spatial (DETR style) for feature maps, 1-D for the clip's frames.

Both follow the authors' code operation by operation (float32), so that features match their
numbers to the last bit where the arithmetic allows.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def sine_position_encoding(
    height: int,
    width: int,
    dim: int,
    *,
    temperature: float = 10000.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """DETR's normalised 2-D sine encoding of an unpadded ``height x width`` map.

    Channels ``[0, dim/2)`` encode the row (y), ``[dim/2, dim)`` the column (x); inside each half
    even channels are ``sin`` and odd channels ``cos`` of ``pos / temperature^(2*floor(i/2)/(dim/2))``,
    with ``pos = (index+1) / (size + 1e-6) * 2*pi``.

    Returns:
        ``(1, dim, height, width)``.
    """
    feats = dim // 2
    ones = torch.ones(1, height, width, dtype=torch.float32, device=device)
    y = ones.cumsum(1, dtype=torch.float32)
    x = ones.cumsum(2, dtype=torch.float32)
    eps, scale = 1e-6, 2 * math.pi
    y = y / (y[:, -1:, :] + eps) * scale
    x = x / (x[:, :, -1:] + eps) * scale
    dim_t = torch.arange(feats, dtype=torch.float32, device=device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="trunc") / feats)
    pos_x = x[:, :, :, None] / dim_t
    pos_y = y[:, :, :, None] / dim_t
    pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2).to(dtype)


def sine_time_table(length: int, dim: int) -> Tensor:
    """Transformer sine table for frame positions ``0..length-1`` (``te[t]`` = position t in the clip).

    Returns:
        ``(length, dim)``: even channels ``sin(t * w_i)``, odd channels ``cos(t * w_i)``,
        ``w_i = exp(-2i * ln(10000) / dim)``.
    """
    position = torch.arange(length).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table
