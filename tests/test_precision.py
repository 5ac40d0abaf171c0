"""``inference.precision`` (fp32 / bf16 / auto): the setting, its old name, where ``auto`` means bf16,
and bf16's error on the authors' vector A against fp32 (CPU autocast, on CPUs that run bf16 natively)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tamvt.config import (
    PRECISION_DEFAULT,
    InferenceConfig,
    TamvtConfig,
    apply_overrides,
    from_dict,
    load_preset,
    to_dict,
)
from tamvt.devices import autocast_dtype, native_bf16
from tamvt.errors import TamvtError
from tamvt.memory import MemoryBank, step_clip
from tamvt.official import convert_official

FIXTURE = Path(__file__).parent / "fixtures" / "official" / "tamvt_official_vectors.safetensors"
CPU = torch.device("cpu")
NATIVE = native_bf16(CPU)
needs_native_bf16 = pytest.mark.skipif(
    not NATIVE, reason="this CPU has neither AVX512-BF16 nor AMX: bf16 autocast would be emulated"
)
# bf16 vs fp32 on vector A (6 frames of 128x192, the authors' random-weight model, logits up to ~27):
# measured on this project's AMD EPYC (AVX512-BF16): max |dp| 0.096, mean 0.0061. A bf16 rounding
# error that is not averaged away (e.g. fp16 instead, or a softmax summed in bf16) goes far beyond.
BF16_MAX, BF16_MEAN = 0.15, 0.012


def test_precision_setting_and_overrides():
    assert InferenceConfig().precision == PRECISION_DEFAULT == "fp32"  # hand-built: exact
    for preset in ("tamvt-r50", "tamvt-small", "tamvt-mini"):
        assert load_preset(preset).inference.precision == "auto"
    cfg = apply_overrides(TamvtConfig(), ["inference.precision=bf16"])
    assert cfg.inference.precision == "bf16"
    with pytest.raises(TamvtError, match="'fp32', 'bf16', 'auto'"):
        apply_overrides(TamvtConfig(), ["inference.precision=half"])


@pytest.mark.parametrize("old, expected", [(False, "fp32"), (True, "auto")])
def test_old_autocast_bf16_key_still_loads(old, expected):
    """Checkpoints and YAML written before ``precision`` hold ``autocast_bf16``: false means fp32, true
    auto (it meant bf16 on a GPU); the key is cleared once read, so the user's precision set afterwards wins."""
    data = to_dict(InferenceConfig())
    del data["precision"]
    data["autocast_bf16"] = old
    cfg = from_dict(InferenceConfig, data)
    assert (cfg.precision, cfg.autocast_bf16) == (expected, None)
    for wanted in ("fp32", "bf16", "auto"):
        assert dataclasses.replace(cfg, precision=wanted).precision == wanted
        full = from_dict(TamvtConfig, {"inference": data})
        assert apply_overrides(full, [f"inference.precision={wanted}"]).inference.precision == wanted


def test_user_precision_wins_over_the_checkpoint(tmp_path):
    """The shipped checkpoint stores ``autocast_bf16: true``; --precision / from_checkpoint(precision=)
    replace it."""
    from tamvt.checkpoint import shipped_model_path
    from tamvt.inference.predictor import Predictor

    path = shipped_model_path()
    stored = Predictor.from_checkpoint(path)
    assert stored.config.precision == "auto"
    assert Predictor.from_checkpoint(path, precision="fp32").autocast_dtype is None
    assert Predictor.from_checkpoint(path, precision="bf16").autocast_dtype == torch.bfloat16
    p = Predictor.from_checkpoint(path, config_overrides=["inference.precision=bf16"])
    assert p.autocast_dtype == torch.bfloat16


def test_auto_follows_the_cpu(monkeypatch):
    assert autocast_dtype("fp32", CPU) is None
    assert autocast_dtype("bf16", CPU) == torch.bfloat16
    assert autocast_dtype("auto", CPU) == (torch.bfloat16 if NATIVE else None)
    assert autocast_dtype("bf16", torch.device("meta")) is None  # autocast exists on CPU and CUDA only
    # on CUDA, auto is fp32 (bf16 autocast was slower on an H200: docs/benchmarks.md "On a GPU"); bf16 asked for is bf16
    assert autocast_dtype("auto", torch.device("cuda")) is None
    assert autocast_dtype("bf16", torch.device("cuda")) == torch.bfloat16
    with pytest.raises(TamvtError, match="unknown precision"):
        autocast_dtype("fp16", CPU)
    # the probes are private torch functions: absent or False -> no native bf16
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: False, raising=False)
    assert not native_bf16(CPU) and autocast_dtype("auto", CPU) is None
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert native_bf16(CPU) and autocast_dtype("auto", CPU) == torch.bfloat16
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    assert not native_bf16(CPU)


def test_bf16_predictor_keeps_fp32_outputs_and_memory(small_model):
    """bf16 runs the network in bf16 (results differ from fp32) while probabilities and the memory's
    stored keys and values stay fp32."""
    from helpers.engine import box, make_predictor, squares_video

    frames = squares_video(5, seed=0)
    out = {}
    for precision in ("fp32", "bf16"):
        predictor = make_predictor(small_model, precision=precision)
        session = predictor.start(frames)
        predictor.add_mask(session, 0, 1, box(10, 30, 5, 25))
        probs = [r.probs for _, r in predictor.propagate(session)]
        assert all(p.dtype == torch.float32 for p in probs)
        (group,) = session.groups
        entries = group.memory.entries
        assert all(t.dtype == torch.float32 for e in entries for t in (*e.keys, *e.values))
        out[precision] = torch.stack(probs)
    delta = (out["bf16"] - out["fp32"]).abs().max().item()
    assert 0 < delta < 0.5


def vector_a_probs(model, frames, mask0, bf16: bool) -> torch.Tensor:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        feats = model.encode_frames(frames)
        bank = MemoryBank(9)
        bank.add(model.encode_memory(feats.select(0), mask0))
        clips = [step_clip(model, bank, feats.select(slice(s, s + 2))) for s in range(1, frames.shape[0], 2)]
    logits = torch.cat([c.logits[-1][0].float() for c in clips])
    return F.interpolate(logits[:, None], size=frames.shape[-2:], mode="bilinear", align_corners=False)[:, 0].sigmoid()


@needs_native_bf16
def test_vector_a_bf16_against_fp32():
    from safetensors.torch import load_file

    data = load_file(FIXTURE)
    weights = {k: v.float() for k, v in data.items() if not k.startswith(("A.", "B.", "C.", "D."))}
    torch.manual_seed(0)
    model = convert_official(weights)[0].eval()
    frames, mask0 = data["A.frames"], data["A.mask0"]
    p32 = vector_a_probs(model, frames, mask0, bf16=False)
    assert (p32 - data["A.probs"]).abs().max().item() < 1e-3  # the fp32 side is the authors' result
    delta = (vector_a_probs(model, frames, mask0, bf16=True) - p32).abs()
    assert 0 < delta.mean().item() <= BF16_MEAN, delta.mean().item()
    assert delta.max().item() <= BF16_MAX, delta.max().item()
    assert np.isfinite(delta.numpy()).all()
