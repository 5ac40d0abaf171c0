"""FPN pixel decoder fed with the matching outputs (SPEC §1.6, paper eq. 4-5).

``y32 = out(lat(res5) + Z32)``, ``y16 = out(lat(res4) + up(y32) + Z16)``,
``y8 = out(lat(res3) + up(y16) [+ Z8])``, ``y4 = out(lat(res2) + up(y8))``,
``mask_features = conv3x3(y4)``; ``up`` is nearest-neighbour upsampling.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch.nn.functional as F
from torch import Tensor, nn

TOP_DOWN = ("res5", "res4", "res3", "res2")


class ConvNorm(nn.Module):
    """Conv (no bias) + GroupNorm(32) [+ ReLU]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, relu: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm = nn.GroupNorm(32, out_channels)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(self.conv(x))
        return F.relu(x) if self.relu else x


class PixelDecoder(nn.Module):
    """Top-down FPN over res5..res2 with the matching outputs added at their strides.

    Args:
        in_channels: backbone channels per level, ``{"res2": C2, ..., "res5": C5}``.
        dim: FPN width (= d).
    """

    def __init__(self, in_channels: Mapping[str, int], dim: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleDict({k: ConvNorm(in_channels[k], dim, 1, relu=False) for k in TOP_DOWN})
        self.output = nn.ModuleDict({k: ConvNorm(dim, dim, 3, relu=True) for k in TOP_DOWN})
        self.mask_features = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, feats: Mapping[str, Tensor], z: Mapping[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Decode ``B`` objects over the same ``T`` frames (arguments as :meth:`top_down`).

        Returns:
            ``mask_features`` ``(B*T, d, H/4, W/4)`` and ``[y32, y16, y8]`` (each ``(B*T, d, h, w)``).
        """
        y4, multi_scale = self.top_down(feats, z)
        return self.mask_features(y4), multi_scale

    def top_down(self, feats: Mapping[str, Tensor], z: Mapping[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        """The FPN without the final mask-feature convolution, which the model leaves to
        :meth:`tamvt.models.mask_head.MaskHead.project` (a cheaper order of the same arithmetic).

        Args:
            feats: backbone levels of the ``T`` frames, ``{"res2": (T, C2, H/4, W/4), ...}``; the
                lateral convolutions run once per frame and are shared by all objects.
            z: matching outputs by level (``"res5"``, ``"res4"``[, ``"res3"``]), ``(B*T, d, h, w)``.
        Returns:
            ``y4`` ``(B*T, d, H/4, W/4)`` and ``[y32, y16, y8]`` (each ``(B*T, d, h, w)``).
        """
        t = feats["res5"].shape[0]
        b = z["res5"].shape[0] // t
        y: Tensor | None = None
        multi_scale = []
        for name in TOP_DOWN:
            lat = self.lateral[name](feats[name])  # (T, d, h, w), object independent
            _, d, h, w = lat.shape
            x = lat.unsqueeze(0)  # (1, T, d, h, w), broadcast over objects
            if y is not None:
                x = x + F.interpolate(y, size=(h, w), mode="nearest").reshape(b, t, d, h, w)
            if name in z:
                x = x + z[name].reshape(b, t, d, h, w)
            y = self.output[name](x.expand(b, t, d, h, w).reshape(b * t, d, h, w))
            if name != "res2":
                multi_scale.append(y)
        assert y is not None
        return y, multi_scale
