"""``tamvt export RUN_DIR OUT``: a training run's EMA weights (raw weights when EMA is off) as a tamvt
checkpoint (``.safetensors`` + JSON config, see :mod:`tamvt.checkpoint`) usable by ``tamvt segment``."""

from __future__ import annotations

import argparse
from pathlib import Path

from tamvt.errors import InputError


def export_run(run: str | Path, out: str | Path, raw: bool = False) -> Path:
    """Write the weights of ``run`` (a run folder or its ``last.pt``) to ``out``; returns ``out``."""
    from tamvt.checkpoint import load_state_dict_strict, save_checkpoint
    from tamvt.config import TamvtConfig
    from tamvt.models.tamvt import build_tamvt
    from tamvt.train.config import train_config_from_dict
    from tamvt.train.state import load_checkpoint

    run = Path(run)
    path = run / "last.pt" if run.is_dir() else run
    ckpt = load_checkpoint(path)
    try:
        cfg = train_config_from_dict(ckpt["config"])
    except Exception as err:
        raise InputError(path, f"bad config in training checkpoint: {err}") from None
    use_ema = ckpt.get("ema") is not None and not raw
    weights = ckpt["ema"] if use_ema else ckpt["model"]
    model = build_tamvt(cfg.model)
    load_state_dict_strict(model, weights, source=str(path))
    meta = {"source": "tamvt train", "run": cfg.name, "step": ckpt["step"], "epoch": ckpt["epoch"],
            "weights": "ema" if use_ema else "raw", "val": ckpt.get("extra", {}).get("last_val", {})}
    return save_checkpoint(out, model, TamvtConfig(model=cfg.model, inference=cfg.inference), meta)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="a training run folder (or its last.pt)")
    parser.add_argument("out", metavar="OUT", help="output checkpoint, e.g. model.safetensors")
    parser.add_argument("--raw", action="store_true", help="export the raw weights instead of the EMA")


def run(args: argparse.Namespace) -> int:
    out = export_run(args.run, args.out, raw=args.raw)
    print(f"wrote {out}")
    return 0
