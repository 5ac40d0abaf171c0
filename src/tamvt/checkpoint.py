"""tamvt checkpoints: one ``.safetensors`` file = float32 weights + the JSON config in its header.

Header metadata (all strings): ``format = "tamvt-checkpoint"``, ``version = "1"``, ``config`` (JSON of
:class:`~tamvt.config.TamvtConfig`), ``meta`` (JSON, free-form: source, training step, ...).
Loading is strict: missing or unexpected weights and shape mismatches are errors that name them;
nothing is pickled, so loading never executes code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tamvt.atomic import atomic_path
from tamvt.config import ModelConfig, TamvtConfig, from_dict, load_preset, to_dict
from tamvt.errors import InputError, TamvtError

SHIPPED_MODEL = "tamvt-mini-synthetic.safetensors"
FORMAT = "tamvt-checkpoint"
VERSION = "1"


def save_checkpoint(
    path: str | Path, model: nn.Module, cfg: TamvtConfig | ModelConfig, meta: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model``'s state dict (float32, contiguous) and ``cfg`` to ``path`` atomically."""
    from safetensors.torch import save_file

    if isinstance(cfg, ModelConfig):
        cfg = TamvtConfig(model=cfg)
    path = Path(path)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    header = {
        "format": FORMAT,
        "version": VERSION,
        "config": json.dumps(to_dict(cfg)),
        "meta": json.dumps(dict(meta or {}), default=str),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], TamvtConfig, dict[str, Any]]:
    """Weights, config and meta of a tamvt checkpoint; any problem is an :class:`InputError` naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(path, f"not a readable tamvt checkpoint ({str(err).splitlines()[0]})") from None
    if header.get("format") != FORMAT:
        raise InputError(
            path,
            "not a tamvt checkpoint (no 'format: tamvt-checkpoint' in the header); "
            "convert the authors' .pth files with 'tamvt convert-official'",
        )
    if header.get("version") != VERSION:
        raise InputError(path, f"unsupported checkpoint version {header.get('version')!r} (expected {VERSION})")
    try:
        cfg = from_dict(TamvtConfig, json.loads(header["config"]))
        meta = json.loads(header.get("meta", "{}"))
    except (KeyError, json.JSONDecodeError, TamvtError) as err:
        raise InputError(path, f"bad config in checkpoint header: {err}") from None
    return tensors, cfg, meta


def load_checkpoint(
    path: str | Path,
    cfg: TamvtConfig | str | None = None,
    *,
    bank_size: int | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, TamvtConfig]:
    """Build the model stored in ``path`` and load its weights strictly.

    Args:
        path: a ``.safetensors`` file written by :func:`save_checkpoint`.
        cfg: expected preset (name, YAML path or config); its model section must equal the stored
            one (else a clear error: wrong preset for this checkpoint). ``None``: use the stored config.
        bank_size: run with this memory capacity; above the trained one the RTE table is resampled
            (RTE interpolation, SPEC §1.5).
        device: where to put the model.
    Returns:
        ``(model in eval mode, config)``; ``config.model.bank_size`` is the capacity the model covers.
    """
    from tamvt.models.tamvt import build_tamvt

    tensors, stored, _ = read_checkpoint(path)
    if cfg is not None:
        expected = load_preset(cfg) if isinstance(cfg, (str, Path)) else cfg
        diff = _diff(to_dict(expected.model), to_dict(stored.model))
        if diff:
            raise InputError(path, f"checkpoint is for a different model ({diff})")
        stored = TamvtConfig(model=stored.model, inference=expected.inference)
    model = build_tamvt(stored.model)
    try:
        load_state_dict_strict(model, tensors, source="checkpoint")
    except TamvtError as err:
        raise InputError(path, str(err)) from None
    if bank_size is not None and bank_size > model.bank_size:
        model.expand_bank(bank_size)
        from dataclasses import replace

        stored = replace(stored, model=replace(stored.model, bank_size=bank_size))
    return model.to(device).eval(), stored


def load_state_dict_strict(model: nn.Module, sd: Mapping[str, Tensor], source: str = "state dict") -> None:
    """Copy ``sd`` into ``model`` strictly (values reshaped when only the layout differs, e.g. ``(45, 1)``
    -> ``(45,)``, and cast to the model's dtype).

    Raises:
        TamvtError: listing the missing / unexpected names, or the first mis-shaped entry.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {', '.join(unexpected)}")
        raise TamvtError(f"{source} does not fit the model: " + "; ".join(parts))
    fixed = {}
    for name, value in sd.items():
        target = own[name]
        if value.numel() != target.numel() or (value.shape != target.shape and value.dim() == target.dim()):
            raise TamvtError(
                f"{source} does not fit the model: {name} has shape {tuple(value.shape)}, "
                f"the model expects {tuple(target.shape)}"
            )
        fixed[name] = value.reshape(target.shape).to(target.dtype)
    model.load_state_dict(fixed, strict=True)


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    return ", ".join(f"{k}: expected {a[k]!r}, checkpoint has {b.get(k)!r}" for k in a if a[k] != b.get(k))


def shipped_model_path() -> Path:
    """Path of the default model shipped in ``tamvt/weights`` (TamvtError if this install lacks it)."""
    path = Path(str(resources.files("tamvt") / "weights" / SHIPPED_MODEL))
    if not path.is_file():
        raise TamvtError(
            f"no shipped model at {path}; pass --checkpoint or train one with "
            "`tamvt train synthetic-small` and `tamvt export`"
        )
    return path
