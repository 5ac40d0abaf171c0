"""Training checkpoints: atomic write, strict loading, RNG capture and restore.

A checkpoint ``RUN_DIR/last.pt`` holds only plain containers, numbers, strings and tensors, so it is
read back (:func:`load_run_state`) with ``torch.load(weights_only=True)`` (no pickled code runs):

    format, version, config (nested dict), model_key (fingerprint of the architecture),
    step, epoch, epoch_step (data position: batches of the current epoch already consumed),
    model, ema (state dicts; ema None when off), optimizer (AdamW state_dict),
    rng: one entry per rank {python, numpy, torch, cuda}, extra (metrics, ...).

It is written to a temporary file in the same folder and moved into place with ``os.replace``, so a
crash never leaves a half-written ``last.pt``.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from tamvt.atomic import atomic_path
from tamvt.errors import InputError

FORMAT = "tamvt-train-checkpoint"
VERSION = 1


# ----------------------------------------------------------------------------------------- RNG


def capture_rng() -> dict[str, Any]:
    """RNG states of python ``random``, numpy's legacy global generator and torch (CPU + CUDA),
    as tensors / lists / ints (loadable with ``weights_only=True``)."""
    version, state, gauss = random.getstate()
    np_state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np_state
    out: dict[str, Any] = {
        "python": {"version": int(version), "state": list(state), "gauss": gauss},
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }
    return out


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed python, numpy's global generator and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------ model fingerprint


def model_key(model_config: dict[str, Any]) -> str:
    """Short fingerprint of an architecture (the ``model`` section of a config), used to refuse
    resuming a run from a checkpoint of another model."""
    text = json.dumps(model_config, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------- write / read


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, fsync, then rename onto ``path``."""
    with atomic_path(path, fsync=True) as tmp:
        torch.save(obj, tmp)


def make_checkpoint(
    *,
    config: dict[str, Any],
    step: int,
    epoch: int,
    epoch_step: int,
    model: dict[str, torch.Tensor],
    ema: dict[str, torch.Tensor] | None,
    optimizer: dict[str, Any],
    rng: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint dict (see the module docstring). ``rng`` has one entry per rank."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": config,
        "model_key": model_key(config["model"]),
        "step": int(step),
        "epoch": int(epoch),
        "epoch_step": int(epoch_step),
        "model": model,
        "ema": ema,
        "optimizer": optimizer,
        "rng": rng,
        "extra": extra or {},
    }


def load_run_state(path: str | Path, expected_model: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a training checkpoint safely (``weights_only=True``).

    Raises :class:`InputError` (one line naming the file) for a missing / corrupt / foreign file, or
    when ``expected_model`` (the ``model`` config section of the current run) describes another
    architecture than the one the checkpoint was trained with.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, random bytes, pickled code: all mean "not ours / broken"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(path, f"not a readable tamvt training checkpoint ({first[:160]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise InputError(path, "not a tamvt training checkpoint (no 'format' marker)")
    if ckpt.get("version") != VERSION:
        raise InputError(
            path, f"training checkpoint version {ckpt.get('version')} is not supported (expected {VERSION})"
        )
    if expected_model is not None and ckpt.get("model_key") != model_key(expected_model):
        theirs = ckpt.get("config", {}).get("name", "?")
        raise InputError(
            path,
            f"checkpoint was trained with another model configuration (run {theirs!r}); "
            "use another --out folder or --resume never",
        )
    return ckpt
