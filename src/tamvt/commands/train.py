"""``tamvt train PRESET_OR_YAML [key.sub=value ...] [--out RUN_DIR] [--resume auto|never]``.

Single process: ``tamvt train synthetic-small``. Several processes (DDP, one window each):
``torchrun --nproc_per_node 4 -m tamvt.cli train finetune-vost data.root=/data/VOST``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tamvt.train.config import train_preset_names

    parser.add_argument(
        "config", metavar="PRESET_OR_YAML", help=f"a training preset ({', '.join(train_preset_names())}) or a YAML file"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key.sub=value",
        help="config overrides, e.g. optim.lr=1e-4 data.root=/data/VOST model_preset=tamvt-small",
    )
    parser.add_argument("--out", metavar="RUN_DIR", help="run folder (default: run.out_dir of the config)")
    parser.add_argument(
        "--resume",
        choices=("auto", "never"),
        default="auto",
        help="auto: continue from RUN_DIR/last.pt if it exists (default); never: refuse if it exists",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")


def run(args: argparse.Namespace) -> int:
    from tamvt.train.config import config_to_yaml, load_train_config

    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"run.out_dir={args.out}")
    cfg = load_train_config(args.config, overrides)
    if args.print_config:
        print(config_to_yaml(cfg), end="")
        return 0
    from tamvt.commands.output import check_output_folder
    from tamvt.train.trainer import train

    check_output_folder(Path(cfg.run.out_dir))
    summary = train(cfg, cfg.run.out_dir, resume=args.resume)
    if summary.get("rank", 0) == 0:
        print(json.dumps({"run": cfg.run.out_dir, **summary}, default=float))
    return 0
