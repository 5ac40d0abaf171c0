"""Data-parallel training: 2 CPU processes under torch.distributed.run (gloo) stay in sync."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest
import torch

SCRIPT = textwrap.dedent("""
    import os, sys, torch
    from tamvt.train.config import load_train_config
    from tamvt.train.trainer import Trainer
    from tamvt.train import distributed as D
    cfg = load_train_config(sys.argv[1])
    trainer = Trainer(cfg, sys.argv[2], resume="never")
    summary = trainer.fit()
    rank = trainer.dist.rank
    torch.save({"model": trainer.net.state_dict(), "loss": summary["train"]["total"],
                "world": trainer.dist.world_size, "steps_per_epoch": trainer.steps_per_epoch,
                "backend": torch.distributed.get_backend()}, os.path.join(sys.argv[2], f"rank{rank}.pt"))
    D.cleanup()
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_cpu_processes_keep_identical_weights(tmp_path, tiny_config):
    cfg = tiny_config(optim={"steps": 4}, run={"checkpoint_every": 100}, data={"epoch_size": 6})
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2"]
    rendezvous = ["--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    cmd = [*torchrun, *rendezvous, str(script), str(cfg), str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [torch.load(out / f"rank{i}.pt", weights_only=True) for i in range(2)]
    assert all(x["world"] == 2 and x["backend"] == "gloo" for x in ranks)
    assert ranks[0]["steps_per_epoch"] == 3  # 6 windows per epoch shared by 2 processes
    assert all(torch.isfinite(torch.tensor(x["loss"])) for x in ranks)
    a, b = ranks[0]["model"], ranks[1]["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs between ranks"
    # the checkpoint holds both ranks' RNG states, and they differ (a seed per rank)
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["step"] == 4 and len(ckpt["rng"]) == 2
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])
    for key in a:
        assert torch.equal(ckpt["model"][key], a[key])
