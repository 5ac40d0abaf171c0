"""ResNet backbone with frozen BatchNorm, shared by query frames, memory frames and memory masks."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn
from torchvision.ops import FrozenBatchNorm2d

from tamvt.errors import InputError

LEVELS = ("res2", "res3", "res4", "res5")  # strides 4, 8, 16, 32
STRIDES = {"res2": 4, "res3": 8, "res4": 16, "res5": 32}

_CHANNELS = {
    "resnet18": (64, 128, 256, 512),
    "resnet34": (64, 128, 256, 512),
    "resnet50": (256, 512, 1024, 2048),
}


class Backbone(nn.Module):
    """torchvision ResNet (no dilation) returning the outputs of layer1..layer4 as res2..res5.

    BatchNorm is ``FrozenBatchNorm2d`` (``y = x * w / sqrt(rv + 1e-5) + (b - rm * w / sqrt(rv + 1e-5))``,
    statistics and affine terms are buffers). The stem (conv1) and layer1 are frozen as in the
    authors' code; layer2..layer4 are trainable.

    Args:
        name: ``resnet18`` / ``resnet34`` / ``resnet50``. Weights are randomly initialised (load a
            checkpoint for trained ones; nothing is downloaded).
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in _CHANNELS:
            raise ValueError(f"unknown backbone {name!r} (known: {', '.join(_CHANNELS)})")
        net = getattr(torchvision.models, name)(weights=None, norm_layer=FrozenBatchNorm2d)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.channels: dict[str, int] = dict(zip(LEVELS, _CHANNELS[name]))
        for module in (self.conv1, self.layer1):
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
            parts = [f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
                     for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                     if names]
            raise InputError(path, "not weights of this ResNet (" + "; ".join(parts) + ")")
        self.load_state_dict(sd)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``x`` ``(N, 3, H, W)`` -> ``{"res2": (N, C2, H/4, W/4), ..., "res5": (N, C5, H/32, W/32)}``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        res2 = self.layer1(x)
        res3 = self.layer2(res2)
        res4 = self.layer3(res3)
        res5 = self.layer4(res4)
        return {"res2": res2, "res3": res3, "res4": res4, "res5": res5}

