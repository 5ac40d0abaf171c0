"""run.precision: bf16 autocast really runs on a CPU with native bf16 (weights, optimizer state and
losses stay fp32), fp32 stays fp32, and configs written with the former run.bf16 flag still load."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tamvt.errors import TamvtError
from tamvt.train import precision as P
from tamvt.train.config import config_to_dict, load_train_config, train_config_from_dict

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "tamvt" / "weights"


def _steps(tiny_config, tmp_path: Path, precision: str, steps: int) -> tuple[set[torch.dtype], list[dict], Any]:
    from tamvt.train.trainer import Trainer

    cfg = load_train_config(tiny_config(), [f"run.precision={precision}"])
    trainer = Trainer(cfg, tmp_path / "run", resume="never")
    seen: set[torch.dtype] = set()
    conv = next(m for m in trainer.net.modules() if isinstance(m, nn.Conv2d))
    conv.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
    loader = iter(trainer._loader())
    logs = [trainer.train_step(next(loader)) for _ in range(steps)]
    return seen, logs, trainer


@pytest.mark.skipif(not P.native_bf16(torch.device("cpu")), reason="this CPU has no native bf16 (AVX512-BF16 / AMX)")
def test_bf16_autocasts_on_the_cpu_and_keeps_fp32_state(tiny_config, tmp_path):
    seen, logs, trainer = _steps(tiny_config, tmp_path, "bf16", 3)
    assert seen == {torch.bfloat16}  # the backbone's first convolution ran in bf16
    assert all(math.isfinite(v) for log in logs for v in log.values())
    assert logs[0]["total"] > 0
    assert {p.dtype for p in trainer.net.parameters()} == {torch.float32}  # master weights
    states = [t for s in trainer.optimizer.state.values() for t in s.values() if torch.is_tensor(t) and t.ndim]
    assert states and {t.dtype for t in states} == {torch.float32}  # AdamW moments


def test_fp32_does_not_autocast(tiny_config, tmp_path):
    seen, logs, _ = _steps(tiny_config, tmp_path, "fp32", 1)
    assert seen == {torch.float32}
    assert math.isfinite(logs[0]["total"])


def test_which_runs_use_bf16(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not P.use_bf16("fp32", cpu) and not P.use_bf16("fp32", cuda)
    assert P.use_bf16("bf16", cpu) and P.use_bf16("bf16", cuda)
    assert not P.use_bf16(None, cpu) and P.use_bf16(None, cuda)  # the former run.bf16: true
    monkeypatch.setattr(P, "native_bf16", lambda device: False)
    assert not P.use_bf16("auto", cpu)
    monkeypatch.setattr(P, "native_bf16", lambda device: True)
    assert P.use_bf16("auto", cpu)


def test_the_former_bf16_flag_still_loads(tiny_config):
    off = load_train_config(tiny_config("off.yaml", run={"bf16": False}))
    assert off.run.precision == "fp32"
    on = load_train_config(tiny_config("on.yaml", run={"bf16": True}))
    assert on.run.precision is None
    assert load_train_config(tiny_config(), ["run.bf16=false"]).run.precision == "fp32"
    assert load_train_config(tiny_config(), ["run.precision=auto"]).run.precision == "auto"
    with pytest.raises(TamvtError, match="run.bf16"):
        load_train_config(tiny_config(), ["run.bf16=maybe"])
    with pytest.raises(TamvtError, match="precision"):
        load_train_config(tiny_config(), ["run.precision=fp16"])
    # a saved config (checkpoint / export JSON) round-trips under the new key only
    saved = config_to_dict(off)
    assert "bf16" not in saved["run"] and saved["run"]["precision"] == "fp32"
    assert train_config_from_dict(saved) == off


def test_shipped_weights_training_configs_still_load():
    info = json.loads((WEIGHTS / "tamvt-mini-synthetic.json").read_text())
    cfg = train_config_from_dict(info["train"])
    assert cfg.run.precision is None and cfg.optim.steps == info["steps"]
    # the same training config as it was written before run.precision existed (run.bf16: true) reads the same
    old = json.loads(json.dumps(info["train"]))
    del old["run"]["precision"]
    old["run"]["bf16"] = True
    assert train_config_from_dict(old) == cfg
