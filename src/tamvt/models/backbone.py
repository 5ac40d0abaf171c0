"""ResNet backbone shared by query frames, memory frames and memory masks.

The authors' backbone is an ImageNet ResNet with frozen BatchNorm and a frozen stem + layer1. For
training from scratch (the CPU model trained on synthetic videos) the same architecture can be
narrower (``width``), use trainable GroupNorm and train every layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tamvt.errors import InputError

LEVELS = ("res2", "res3", "res4", "res5")  # strides 4, 8, 16, 32
STRIDES = {"res2": 4, "res3": 8, "res4": 16, "res5": 32}

NORMS = ("frozen_bn", "group")


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine terms (buffers), as torchvision's / the authors'.

    ``y = x * scale + shift`` with ``scale = w * rsqrt(rv + eps)``, ``shift = b - rm * scale``.
    """

    weight: Tensor  # the four buffers, each (C,)
    bias: Tensor
    running_mean: Tensor
    running_var: Tensor

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((num_features,), value))

    def scale_shift(self) -> tuple[Tensor, Tensor]:
        """``(scale, shift)``, each ``(C,)``."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: Tensor) -> Tensor:
        scale, shift = self.scale_shift()
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)


def conv_norm(conv: nn.Conv2d, norm: nn.Module, x: Tensor) -> Tensor:
    """``norm(conv(x))``. Without autograd a :class:`FrozenBatchNorm2d` is folded into the convolution
    (weight ``w * scale``, bias ``shift``) where that is cheaper: the convolution then writes the
    normalised output directly instead of two more passes over it. The weights are folded at every
    call rather than cached (a cache would hold a second copy of them), so folding pays only where the
    output is larger than the weights: at 480p the early layers, not layer4. Outputs differ from the
    unfolded order by float rounding (~1e-7 relative)."""
    if (
        isinstance(norm, FrozenBatchNorm2d)
        and not torch.is_grad_enabled()
        and _output_size(conv, x) > conv.weight.numel()
    ):
        scale, shift = norm.scale_shift()
        weight = conv.weight * scale.reshape(-1, 1, 1, 1)  # keeps the weight's memory format
        return F.conv2d(x, weight, shift, conv.stride, conv.padding, conv.dilation, conv.groups)
    return norm(conv(x))


def _output_size(conv: nn.Conv2d, x: Tensor) -> int:
    """Number of elements of ``conv(x)``."""
    # padding is a pair here: every convolution of the backbone is built with int padding
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    ph, pw = cast(tuple[int, int], conv.padding)
    h = (x.shape[-2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w = (x.shape[-1] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return x.shape[0] * conv.out_channels * h * w


def _norm(kind: str, channels: int) -> nn.Module:
    """``frozen_bn``: the authors' FrozenBatchNorm2d; ``group``: trainable GroupNorm, 8 groups."""
    return FrozenBatchNorm2d(channels) if kind == "frozen_bn" else nn.GroupNorm(8, channels)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


class BasicBlock(nn.Module):
    """ResNet-18/34 block (torchvision layout and parameter names)."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, norm: str = "frozen_bn") -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, width, 3, stride), _norm(norm, width)
        self.conv2, self.bn2 = _conv(width, width, 3), _norm(norm, width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, width, stride, norm)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(conv_norm(self.conv1, self.bn1, x))
        out = conv_norm(self.conv2, self.bn2, out)
        return self.relu(_add_residual(out, _shortcut(self.downsample, x)))


class Bottleneck(nn.Module):
    """ResNet-50 block, stride on the 3x3 conv (torchvision "ResNet v1.5" layout and names)."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, norm: str = "frozen_bn") -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, width, 1), _norm(norm, width)
        self.conv2, self.bn2 = _conv(width, width, 3, stride), _norm(norm, width)
        self.conv3, self.bn3 = _conv(width, width * 4, 1), _norm(norm, width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, width * 4, stride, norm)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(conv_norm(self.conv1, self.bn1, x))
        out = self.relu(conv_norm(self.conv2, self.bn2, out))
        out = conv_norm(self.conv3, self.bn3, out)
        return self.relu(_add_residual(out, _shortcut(self.downsample, x)))


def _shortcut(downsample: nn.Sequential | None, x: Tensor) -> Tensor:
    """The residual branch: ``x`` or ``downsample(x)`` (conv + norm, folded like the others)."""
    return x if downsample is None else conv_norm(cast(nn.Conv2d, downsample[0]), downsample[1], x)


def _add_residual(out: Tensor, shortcut: Tensor) -> Tensor:
    """``out + shortcut``; in place without autograd (``out`` is the block's own fresh tensor), which
    spares a new activation-sized buffer per block."""
    return out.add_(shortcut) if not torch.is_grad_enabled() else out + shortcut


def _downsample(cin: int, cout: int, stride: int, norm: str) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(_conv(cin, cout, 1, stride), _norm(norm, cout))


_BLOCKS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def _layer(
    block: type[BasicBlock] | type[Bottleneck], cin: int, width: int, blocks: int, stride: int, norm: str
) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    cout = width * block.expansion
    for i in range(blocks):
        layers.append(block(cin if i == 0 else cout, width, stride if i == 0 else 1, norm))
    return nn.Sequential(*layers), cout


class Backbone(nn.Module):
    """ResNet (torchvision's architecture and parameter names, no dilation) returning the outputs of
    layer1..layer4 as res2..res5.

    By default as the authors': BatchNorm is ``FrozenBatchNorm2d`` (``y = x * w / sqrt(rv + 1e-5) +
    (b - rm * w / sqrt(rv + 1e-5))``, statistics and affine terms are buffers), the stem (conv1) and
    layer1 are frozen, layer2..layer4 are trainable.

    Args:
        name: ``resnet18`` / ``resnet34`` / ``resnet50``. Weights are randomly initialised (load a
            checkpoint for trained ones; nothing is downloaded).
        width: channels of the stem and layer1 (torchvision: 64); layer k has ``width * 2**(k-1)``
            (times 4 for ResNet-50). ImageNet weights exist only for 64.
        norm: ``frozen_bn`` (authors) or ``group`` (trainable GroupNorm with 8 groups, for training
            from scratch with batch size 1).
        freeze_stem: keep conv1 + layer1 frozen (authors); ``False`` trains every layer.
    """

    layer1: nn.Sequential  # registered by name in __init__ (torchvision's parameter names)
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, name: str, width: int = 64, norm: str = "frozen_bn", freeze_stem: bool = True) -> None:
        super().__init__()
        if name not in _BLOCKS:
            raise ValueError(f"unknown backbone {name!r} (known: {', '.join(_BLOCKS)})")
        if norm not in NORMS:
            raise ValueError(f"unknown backbone norm {norm!r} (known: {', '.join(NORMS)})")
        if width < 8 or width % 8:
            raise ValueError(f"backbone width must be a positive multiple of 8, got {width}")
        # our own copy of torchvision's ResNet (same names, same arithmetic): importing torchvision
        # costs ~0.17 GB of resident memory that inference does not otherwise need
        block, depths = _BLOCKS[name]
        self.conv1, self.bn1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False), _norm(norm, width)
        self.relu, self.maxpool = nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)
        c, out = width, []
        for k, blocks in enumerate(depths):  # layer1..layer4: width * 2**k channels, stride 2 from layer2
            layer, c = _layer(block, c, width * 2**k, blocks, 1 if k == 0 else 2, norm)
            self.add_module(f"layer{k + 1}", layer)
            out.append(c)
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.channels: dict[str, int] = dict(zip(LEVELS, out, strict=True))
        if freeze_stem:
            for module in (self.conv1, self.bn1, self.layer1):
                module.requires_grad_(False)

    def load_imagenet_weights(self, path: str | Path) -> None:
        """Load a torchvision ImageNet state dict of the same ResNet from a local file (never downloads).

        E.g. ``resnet50-0676ba61.pth`` as torchvision stores it in its cache. The classifier (``fc.*``)
        and BatchNorm ``num_batches_tracked`` counters are not part of the backbone and are skipped;
        any other missing or unexpected name, or a shape of another ResNet, is an :class:`InputError`.
        The file is read with ``weights_only=True`` (no pickled code runs).
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "ImageNet weights file not found")
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file is the user's input problem
            raise InputError(path, f"not a readable torch state dict ({err.__class__.__name__})") from None
        if isinstance(sd, dict) and "state_dict" in sd:
            sd = sd["state_dict"]
        if not isinstance(sd, dict):
            raise InputError(path, "expected a state dict (name -> tensor)")
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
        own = self.state_dict()
        missing = sorted(set(own) - set(sd))
        unexpected = sorted(set(sd) - set(own))
        wrong = sorted(k for k in set(own) & set(sd) if tuple(own[k].shape) != tuple(sd[k].shape))
        if missing or unexpected or wrong:
            parts = [
                f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
                for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                if names
            ]
            raise InputError(path, "not weights of this ResNet (" + "; ".join(parts) + ")")
        self.load_state_dict(sd)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``x`` ``(N, 3, H, W)`` -> ``{"res2": (N, C2, H/4, W/4), ..., "res5": (N, C5, H/32, W/32)}``."""
        x = self.maxpool(self.relu(conv_norm(self.conv1, self.bn1, x)))
        res2 = self.layer1(x)
        res3 = self.layer2(res2)
        res4 = self.layer3(res3)
        res5 = self.layer4(res4)
        return {"res2": res2, "res3": res3, "res4": res4, "res5": res5}
