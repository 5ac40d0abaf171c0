"""benchmarks/gpu_check.py in its CPU mode: every path of the GPU check runs (inference grid, SDPA
detection, bf16 autocast, channels_last, torch.compile, vector A, training + checkpoint + resume +
validation) and the table it prints is complete, finite and within the stated bounds."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_check", module)  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def table_rows(stdout: str) -> list[dict[str, str]]:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True)) for ln in lines[1:]]


def number(text: str) -> float:
    return float(re.match(r"\s*([-+0-9.eE]+|nan|inf)", text).group(1))


@pytest.mark.slow
def test_cpu_mode_prints_a_complete_table(tmp_path):
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--json", str(tmp_path / "rows.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "all checks passed" in proc.stdout
    check_table(proc.stdout)


def check_table(stdout: str) -> None:
    rows = table_rows(stdout)
    module = load_script()
    plan = module.CPU_PLAN

    inference = [r for r in rows if r["case"] == "inference"]
    grid = {
        (r["input"].split()[0], r["objects"], r["precision"])
        for r in inference
        if r["channels_last"] == "no" and r["torch.compile"] == "no"
    }
    assert grid == {(size, k, p) for size in plan.sizes for k in ("1", "5") for p in ("fp32", "bf16 autocast")}
    assert any(r["channels_last"] == "yes" and r["torch.compile"] == "no" for r in inference)
    assert any(r["torch.compile"] != "no" for r in inference)
    for r in inference:
        assert r["speed"].endswith("frames/s")
        fps, mem = number(r["speed"]), number(r["peak memory GB"])
        assert math.isfinite(fps) and fps > 0 and math.isfinite(mem) and mem > 0, r
        matching, decoder = (s.strip() for s in r["SDPA matching / decoder"].split("/"))
        known = {"flash", "flash(cpu)", "efficient", "cudnn", "math", "fused"}
        assert set(matching.split("+")) <= known and set(decoder.split("+")) <= known, r
    # variants say how they compare with the plain row
    assert all(
        "vs plain bf16" in r["check"] for r in inference if r["channels_last"] == "yes" or r["torch.compile"] != "no"
    )

    fp32 = next(r for r in rows if r["case"] == "vector A fp32 vs authors")
    assert number(fp32["check"].split("dp")[1]) <= module.FP32_BOUND
    bf16 = next(r for r in rows if r["case"] == "vector A bf16 vs fp32")
    found = re.search(r"max abs dp ([0-9.e-]+) <= ([0-9.e-]+), mean ([0-9.e-]+) <= ([0-9.e-]+)", bf16["check"])
    assert found, bf16
    max_dp, max_bound, mean_dp, mean_bound = map(float, found.groups())
    assert (max_bound, mean_bound) == (module.BF16_MAX_BOUND, module.BF16_MEAN_BOUND)
    assert 0 < max_dp <= max_bound and 0 < mean_dp <= mean_bound  # bf16 really ran (not a silent fp32)

    train = next(r for r in rows if r["case"].startswith("train finetune-vost"))
    assert "steps/s" in train["speed"] and math.isfinite(number(train["speed"]))
    assert "losses finite: yes" in train["check"] and "checkpoint + resume: ok" in train["check"]
    ddp = next(r for r in rows if r["case"].startswith("train DDP"))
    assert ddp["check"].startswith("skipped: needs 2 CUDA GPUs")
