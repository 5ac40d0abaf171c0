"""``tamvt convert-official``: the authors' ``.pth`` checkpoint -> a tamvt ``.safetensors`` checkpoint.

    tamvt convert-official checkpoint.pth model.safetensors [--no-ema] [--bank N]

The format and the name mapping are in :mod:`tamvt.official`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tamvt.errors import InputError, TamvtError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="the authors' checkpoint (.pth)")
    parser.add_argument("output", type=Path, help="tamvt checkpoint to write (.safetensors)")
    parser.add_argument("--no-ema", action="store_true", help="use 'model' instead of the EMA weights 'model_ema'")
    parser.add_argument(
        "--bank",
        type=int,
        default=None,
        metavar="N",
        help="memory capacity to run with (larger than trained: RTE interpolation)",
    )


def run(args: argparse.Namespace) -> int:
    from tamvt.checkpoint import save_checkpoint
    from tamvt.commands.output import check_output_file
    from tamvt.official import (
        convert_official,
        load_official_checkpoint,
        official_state_dict,
    )

    if args.bank is not None and args.bank < 1:
        raise TamvtError("--bank must be >= 1")
    check_output_file(args.output)  # before the (large) checkpoint is read
    checkpoint = load_official_checkpoint(args.input)
    try:
        official = official_state_dict(checkpoint, ema=not args.no_ema)
        model, cfg = convert_official(official, bank_size=args.bank)
    except TamvtError as err:
        raise InputError(args.input, str(err)) from None
    meta = {"source": str(args.input.name), "weights": "model" if args.no_ema else "model_ema"}
    save_checkpoint(args.output, model, cfg, meta)
    print(f"wrote {args.output} ({cfg.model.backbone}, bank {cfg.model.bank_size}, rte {cfg.model.rte})")
    return 0
