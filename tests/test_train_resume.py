"""Checkpoints: a run killed with SIGKILL and resumed ends with exactly the weights of an
uninterrupted run; foreign / corrupt checkpoints give one-line errors; export writes the EMA weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

TAMVT = [sys.executable, "-m", "tamvt.cli"]


def _train(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*TAMVT, "train", str(config), "--out", str(out), *extra], capture_output=True, text=True, timeout=600
    )


def _events(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _load(out: Path) -> dict:
    return torch.load(out / "last.pt", map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, tiny_config):
    cfg = tiny_config()
    straight = tmp_path / "straight"
    r = _train(cfg, straight)
    assert r.returncode == 0, r.stderr

    broken = tmp_path / "broken"
    proc = subprocess.Popen(
        [*TAMVT, "train", str(cfg), "--out", str(broken)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    killed_at = None
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        done = [e["step"] for e in _events(broken) if e["event"] == "checkpoint"]
        if done:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = done[-1]
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert killed_at is not None and proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    resumed_from = _load(broken)["step"]
    assert 0 < resumed_from < 12

    r = _train(cfg, broken)
    assert r.returncode == 0, r.stderr
    starts = [e for e in _events(broken) if e["event"] == "start"]
    assert [s["step"] for s in starts] == [0, resumed_from]

    a, b = _load(straight), _load(broken)
    assert a["step"] == b["step"] == 12 and a["epoch"] == b["epoch"]
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs after resume"
    for ga, gb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        assert all(torch.equal(ga[k], gb[k]) for k in ga)
    # training actually changed the weights
    init = _load_after_zero_steps(tmp_path)
    assert any(not torch.equal(init[k], a["model"][k]) for k in init if k.startswith("decoder."))

    # export: EMA weights into a tamvt checkpoint that loads strictly
    from tamvt.checkpoint import read_checkpoint

    out_file = tmp_path / "model.safetensors"
    r = subprocess.run([*TAMVT, "export", str(straight), str(out_file), "--summary"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    tensors, tcfg, meta = read_checkpoint(out_file)
    assert meta["weights"] == "ema" and meta["step"] == 12 and tcfg.model.hidden_dim == 32
    summary = json.loads(out_file.with_suffix(".json").read_text())
    assert summary["steps"] == 12 and summary["train_seconds"] > 0 and summary["model"]["hidden_dim"] == 32
    assert summary["command"] == f"tamvt train {straight / 'config.yaml'}"  # "tiny" is not a shipped preset
    for key, value in a["ema"].items():
        assert torch.equal(tensors[key], value.float()), key
    assert tcfg.inference.memory == "fifo" and summary["inference"]["memory"] == "fifo"  # the run's

    # the inference settings the checkpoint carries can be changed on export (weights unchanged)
    retuned = tmp_path / "retuned.safetensors"
    r = subprocess.run(
        [
            *TAMVT,
            "export",
            str(straight),
            str(retuned),
            "inference.memory=spread",
            "inference.short_side=40",
            "--summary",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    tensors2, tcfg2, _ = read_checkpoint(retuned)
    assert (tcfg2.inference.memory, tcfg2.inference.short_side, tcfg2.model) == ("spread", 40, tcfg.model)
    assert json.loads(retuned.with_suffix(".json").read_text())["inference"]["short_side"] == 40
    assert all(torch.equal(tensors2[k], tensors[k]) for k in tensors)
    for bad in ("model.hidden_dim=16", "inference.memory=lifo"):
        r = subprocess.run(
            [*TAMVT, "export", str(straight), str(tmp_path / "bad.safetensors"), bad],
            check=False,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert not (tmp_path / "bad.safetensors").exists()


def _load_after_zero_steps(tmp_path: Path) -> dict:
    """The initial weights of the tiny run (same seed) without training."""
    from tamvt.models.tamvt import build_tamvt
    from tamvt.train.config import load_train_config
    from tamvt.train.state import seed_everything

    cfg = load_train_config(tmp_path / "tiny.yaml")
    seed_everything(cfg.run.seed)
    return build_tamvt(cfg.model).state_dict()


def test_corrupt_and_foreign_checkpoints_are_one_line_errors(tmp_path, tiny_config):
    from tamvt.cli import main
    from tamvt.errors import InputError
    from tamvt.train.state import atomic_torch_save, load_run_state, make_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    cfg = tiny_config(optim={"steps": 1})
    (run / "last.pt").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(InputError, match="not a readable tamvt training checkpoint"):
        load_run_state(run / "last.pt")
    r = subprocess.run([*TAMVT, "train", str(cfg), "--out", str(run)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tamvt train: error:") and "last.pt" in lines[0]

    # a checkpoint of another architecture (3 decoder layers instead of 2)
    from tamvt.train.config import config_to_dict, load_train_config

    other = config_to_dict(load_train_config(cfg, ["model.decoder_layers=3"]))
    atomic_torch_save(
        make_checkpoint(config=other, step=3, epoch=0, epoch_step=3, model={}, ema=None, optimizer={}, rng=[]),
        run / "last.pt",
    )
    with pytest.raises(InputError, match="another model configuration"):
        load_run_state(run / "last.pt", expected_model=config_to_dict(load_train_config(cfg))["model"])
    assert main(["train", str(cfg), "--out", str(run)]) == 2
    # --resume never refuses an existing checkpoint; a pickle with code is refused by weights_only
    assert main(["train", str(cfg), "--out", str(run), "--resume", "never"]) == 2
    torch.save({"format": "tamvt-train-checkpoint", "evil": Path("x")}, run / "last.pt")
    with pytest.raises(InputError, match="not a readable"):
        load_run_state(run / "last.pt")
    assert main(["export", str(run), str(tmp_path / "x.safetensors")]) == 2
    assert not (tmp_path / "x.safetensors").exists()
