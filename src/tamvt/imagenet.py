"""ImageNet normalisation, the one place both training data and inference take it from.

The authors normalise with torchvision's ``ToTensor`` + ``Normalize(mean, std)``; :func:`normalize_`
does the same float32 arithmetic, ``(x / 255 - mean) / std``, on a tensor already divided by 255.
"""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_(x: torch.Tensor) -> torch.Tensor:
    """Normalise ``x (..., 3, H, W)`` float32 in [0, 1] in place and return it."""
    shape = (3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(shape)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(shape)
    return x.sub_(mean).div_(std)
