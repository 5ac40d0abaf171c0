"""Training speed of the ``synthetic-small`` preset on this machine: optimizer steps per second.

Builds the preset's trainer (tamvt-small on the synthetic stream, data loading in its worker
process as configured) and times full steps — data, unroll, loss, backward, clipping, AdamW, EMA —
after a few warm-up steps. No checkpoint or validation is written. Prints wall and CPU seconds and the
load average, since other processes on the same cores change the wall time.

    .venv/bin/python benchmarks/train_speed.py [--steps 20] [--warmup 3] [key=value ...]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--preset", default="synthetic-small")
    parser.add_argument("overrides", nargs="*", help="training config overrides, e.g. run.threads=2")
    args = parser.parse_args()

    import torch

    from tamvt.train.config import load_train_config
    from tamvt.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_train_config(args.preset, ["run.progress=false", *args.overrides])
        trainer = Trainer(cfg, tmp, resume="never")
        loader = iter(trainer._loader())
        for _ in range(args.warmup):
            trainer.train_step(next(loader))
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        wait = 0.0
        for _ in range(args.steps):
            w0 = time.perf_counter()
            sample = next(loader)
            wait += time.perf_counter() - w0
            trainer.train_step(sample)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) + (
        c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
    )
    d = cfg.data
    print(
        f"preset {args.preset}: model {cfg.model.backbone} d={cfg.model.hidden_dim}, windows of {d.window_length} "
        f"frames at {d.crop_size[0]}x{d.crop_size[1]}, clips of {cfg.clip_length}, "
        f"torch threads {torch.get_num_threads()}, "
        f"data workers {cfg.run.num_workers}"
    )
    print(
        f"{args.steps} steps in {wall:.1f} s: {args.steps / wall:.2f} steps/s "
        f"({wall / args.steps:.2f} s/step, of which {wait / args.steps:.2f} s waiting for data); "
        f"main-process CPU {cpu:.1f} s; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
