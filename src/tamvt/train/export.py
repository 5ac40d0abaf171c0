"""``tamvt export RUN_DIR OUT``: a training run's EMA weights (raw weights when EMA is off) as a tamvt
checkpoint (``.safetensors`` + JSON config, see :mod:`tamvt.checkpoint`) usable by ``tamvt segment``.

With ``--summary`` it also writes ``OUT`` with the suffix ``.json``: the run's model, inference and
training configs and a short training summary from ``metrics.jsonl`` (steps, training time,
validation history, the command that reproduces the run)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tamvt.errors import InputError


def training_summary(run: str | Path) -> dict[str, Any]:
    """Steps, training seconds and validation scores of a run folder, from its ``metrics.jsonl``.

    Training seconds add up each logged window (steps / steps_per_s), so validation, checkpoint
    writing and the time lost to a crash are not counted. A resumed run logs some steps twice (those
    after the checkpoint it resumed from); the later record of a step wins.
    """
    from tamvt.train.metrics_log import read_metrics

    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        raise InputError(path, "no metrics.jsonl in the run folder")
    records = read_metrics(path)
    train = {r["step"]: r for r in records if r.get("event") == "train"}
    val = {r["step"]: r for r in records if r.get("event") == "val"}
    seconds, prev = 0.0, 0
    for step in sorted(train):
        rate = train[step].get("steps_per_s") or 0.0
        if rate > 0:
            seconds += (step - prev) / rate
        prev = step
    starts = [r for r in records if r.get("event") == "start"]
    keys = ("J", "J&F", "J_tr")
    return {
        "steps": max(train, default=0),
        "train_seconds": round(seconds, 1),
        "resumes": max(len(starts) - 1, 0),
        "final_loss": train[max(train)].get("total") if train else None,
        "val": [{"step": s, **{k: val[s][k] for k in keys if k in val[s]}} for s in sorted(val)],
    }


def _read_run(run: str | Path) -> tuple[Path, dict[str, Any], Any]:
    """(checkpoint path, training checkpoint, its TrainConfig) of a run folder or its ``last.pt``."""
    from tamvt.train.config import train_config_from_dict
    from tamvt.train.state import load_run_state

    run = Path(run)
    path = run / "last.pt" if run.is_dir() else run
    ckpt = load_run_state(path)
    try:
        cfg = train_config_from_dict(ckpt["config"])
    except Exception as err:
        raise InputError(path, f"bad config in training checkpoint: {err}") from None
    return path, ckpt, cfg


def export_run(
    run: str | Path, out: str | Path, raw: bool = False, summary: bool = False, inference: Sequence[str] = ()
) -> list[Path]:
    """Write the weights of ``run`` (a run folder or its ``last.pt``) to ``out``, and with ``summary``
    also ``out``'s ``.json`` (see :func:`summary_document`); returns the paths written.

    ``inference``: ``["inference.short_side=192", ...]``, the default inference settings the checkpoint
    carries, changed from the run's (the weights do not change)."""
    from tamvt.atomic import write_text_atomic
    from tamvt.checkpoint import load_state_dict_strict, save_checkpoint
    from tamvt.config import TamvtConfig, apply_inference_overrides
    from tamvt.models.tamvt import build_tamvt

    run = Path(run)
    if summary and not run.is_dir():
        raise InputError(run, "--summary needs the run folder (it reads metrics.jsonl)")
    path, ckpt, cfg = _read_run(run)
    carried = apply_inference_overrides(TamvtConfig(model=cfg.model, inference=cfg.inference), list(inference))
    document = summary_document(run, ckpt, cfg, carried.inference) if summary else None  # before writing anything
    use_ema = ckpt.get("ema") is not None and not raw
    weights = ckpt["ema"] if use_ema else ckpt["model"]
    model = build_tamvt(cfg.model)
    load_state_dict_strict(model, weights, source=str(path))
    meta = {
        "source": "tamvt train",
        "run": cfg.name,
        "step": ckpt["step"],
        "epoch": ckpt["epoch"],
        "weights": "ema" if use_ema else "raw",
        "val": ckpt.get("extra", {}).get("last_val", {}),
    }
    written = [save_checkpoint(out, model, carried, meta)]
    if document is not None:
        written.append(Path(out).with_suffix(".json"))
        write_text_atomic(written[-1], json.dumps(document, indent=2, default=str) + "\n")
    return written


def summary_document(run: Path, ckpt: dict[str, Any], cfg: Any, inference: Any = None) -> dict[str, Any]:
    """Configs + :func:`training_summary` of the run folder ``run`` whose checkpoint is ``ckpt``;
    ``inference``: the exported checkpoint's inference settings (default: the run's)."""
    from tamvt.config import to_dict

    return {
        "run": cfg.name,
        "command": reproducing_command(run, cfg),
        "model_preset": cfg.model_preset,
        **training_summary(run),
        "model": to_dict(cfg.model),
        "inference": to_dict(inference if inference is not None else cfg.inference),
        "train": ckpt["config"],
    }


def reproducing_command(run: Path, cfg: Any) -> str:
    """``tamvt train PRESET --out RUN key=value ...``: the shipped training preset the run is named after
    with the overrides that turn it into the run's config (none if it is the preset as shipped; where
    and whether progress bars were drawn do not count), or ``tamvt train RUN/config.yaml`` when no
    preset plus overrides gives back the run's config."""
    from tamvt.errors import TamvtError
    from tamvt.train.config import config_to_dict, load_train_config

    fixed = [f"run.out_dir={cfg.run.out_dir}", f"run.progress={cfg.run.progress}"]
    target = config_to_dict(cfg)
    try:
        base = _flat(config_to_dict(load_train_config(cfg.name, fixed)))
        overrides = [f"{key}={_scalar(value)}" for key, value in _flat(target).items() if base.get(key, ...) != value]
        if config_to_dict(load_train_config(cfg.name, [*fixed, *overrides])) == target:
            return " ".join(["tamvt", "train", cfg.name, "--out", str(run), *map(shlex.quote, overrides)])
    except TamvtError:  # not a shipped preset, or a value that does not survive the round trip
        pass
    return f"tamvt train {run / 'config.yaml'}"


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1e-4}}`` -> ``{"optim.lr": 1e-4}`` (lists are values)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _scalar(value: Any) -> str:
    """A value as the command line writes it (a YAML scalar; floats keep a dot, YAML 1.1 needs it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text
    return json.dumps(value, separators=(",", ":"))
