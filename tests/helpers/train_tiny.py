"""Shared tiny training config for the trainer tests (a few hundred ms per step on one CPU thread)."""

from __future__ import annotations

from pathlib import Path

import yaml

TINY = {
    "name": "tiny",
    "model_preset": "tamvt-small",
    "model": {
        "hidden_dim": 32,
        "pixel_decoder_dim": 32,
        "decoder_layers": 2,
        "decoder_heads": 4,
        "decoder_ffn": 64,
        "bank_size": 4,
    },
    "inference": {"short_side": None},
    "data": {
        "source": "synthetic",
        "synthetic_preset": "tiny",
        "synthetic_size": [64, 64],
        "window_length": 4,
        "num_memory": 2,
        "crop_size": [64, 64],
        "epoch_size": 5,
    },
    "val": {"source": "none"},
    "optim": {
        "lr": 1e-4,
        "lr_backbone": 1e-5,
        "steps": 12,
        "schedule": "authors",
        "milestones": [6, 9],
        "final_drop": 2,
        "warmup_fraction": 0.2,
        "grad_clip": 0.1,
        "ema_decay": 0.9,
    },
    "run": {
        "checkpoint_every": 4,
        "validate_every": 0,
        "log_every": 2,
        "num_workers": 0,
        "threads": 1,
        "progress": False,
    },
}


def write_tiny(path: Path, **sections: dict) -> Path:
    """Write the tiny config with ``sections`` merged in (``optim={"steps": 6}``) to ``path``."""
    cfg = {k: dict(v) if isinstance(v, dict) else v for k, v in TINY.items()}
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(cfg))
    return path
