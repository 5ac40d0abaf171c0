"""Training speed of the ``synthetic-small`` preset on this machine: optimizer steps per second,
fp32 against bf16 autocast (``run.precision``) in one process.

Builds one trainer per precision (tamvt-mini on the synthetic stream, data loading in its worker
process as configured) and times full steps — data, unroll, loss, backward, clipping, AdamW, EMA —
after a few warm-up steps each. The precisions are interleaved: rounds of ``--block`` steps of each
in turn, so load from other processes on the same cores hits both alike; the ratio is the result.
No checkpoint or validation is written. Prints wall and CPU seconds and the load average.

    .venv/bin/python benchmarks/train_speed.py [--steps 20] [--block 5] [--warmup 3]
        [--precision fp32,bf16] [key=value ...]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per precision")
    parser.add_argument("--block", type=int, default=5, help="steps of one precision before switching")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--preset", default="synthetic-small")
    parser.add_argument("--precision", default="fp32,bf16", help="comma-separated run.precision values")
    parser.add_argument("overrides", nargs="*", help="training config overrides, e.g. run.threads=2")
    args = parser.parse_args()

    import torch

    from tamvt.train.config import load_train_config
    from tamvt.train.trainer import Trainer

    names = [p.strip() for p in args.precision.split(",") if p.strip()]
    wall = dict.fromkeys(names, 0.0)
    wait = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    done = dict.fromkeys(names, 0)
    with tempfile.TemporaryDirectory() as tmp:
        trainers, loaders = {}, {}
        for name in names:
            cfg = load_train_config(args.preset, ["run.progress=false", *args.overrides, f"run.precision={name}"])
            trainers[name] = Trainer(cfg, os.path.join(tmp, name), resume="never")
            loaders[name] = iter(trainers[name]._loader())
            for _ in range(args.warmup):
                trainers[name].train_step(next(loaders[name]))
        while any(done[n] < args.steps for n in names):
            for name in names:
                n = min(args.block, args.steps - done[name])
                if n <= 0:
                    continue
                c0, t0 = _cpu(), time.perf_counter()
                for _ in range(n):
                    w0 = time.perf_counter()
                    sample = next(loaders[name])
                    wait[name] += time.perf_counter() - w0
                    trainers[name].train_step(sample)
                wall[name] += time.perf_counter() - t0
                cpu[name] += _cpu() - c0
                done[name] += n
    d = cfg.data
    print(
        f"preset {args.preset}: model {cfg.model.backbone} d={cfg.model.hidden_dim}, windows of {d.window_length} "
        f"frames at {d.crop_size[0]}x{d.crop_size[1]}, clips of {cfg.clip_length}, "
        f"torch threads {torch.get_num_threads()}, data workers {cfg.run.num_workers}, "
        f"bf16 autocast on {', '.join(n for n in names if trainers[n].autocast) or 'none'}; "
        f"interleaved in blocks of {args.block} steps"
    )
    for name in names:
        s = args.steps
        print(
            f"  {name:5s}: {s} steps in {wall[name]:.1f} s: {s / wall[name]:.2f} steps/s "
            f"({wall[name] / s:.2f} s/step, of which {wait[name] / s:.2f} s waiting for data; CPU {cpu[name]:.1f} s)"
        )
    if len(names) > 1:
        base = names[0]
        for name in names[1:]:
            print(f"  speed {name} / {base}: {wall[base] / wall[name]:.2f}x")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
