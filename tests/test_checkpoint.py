"""tamvt's checkpoint format: round trip, strict loading, clear errors, RTE expansion on load."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from tamvt.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from tamvt.config import load_preset
from tamvt.errors import InputError
from tamvt.memory import MemoryBank, step_clip
from tamvt.models.matching import resize_rte_table
from tamvt.models.tamvt import build_tamvt


@pytest.fixture(scope="module")
def small():
    cfg = load_preset("tamvt-small", ["model.decoder_layers=2"])
    torch.manual_seed(0)
    model = build_tamvt(cfg.model).eval()
    with torch.no_grad():
        model.matching.rte.theta.uniform_(0.5, 1.5)  # a "trained" RTE table, not the all-ones init
    return model, cfg


@pytest.fixture()
def saved(tmp_path, small):
    model, cfg = small
    path = save_checkpoint(tmp_path / "ckpt" / "small.safetensors", model, cfg, {"step": 7})
    return path, model, cfg


def test_round_trip_same_outputs(saved):
    path, model, cfg = saved
    loaded, cfg2 = load_checkpoint(path)
    assert cfg2 == cfg
    assert read_checkpoint(path)[2] == {"step": 7}
    frames = torch.randn(3, 3, 64, 64)
    mask = torch.ones(1, 1, 64, 64)
    outs = []
    with torch.no_grad():
        for m in (model, loaded):
            feats = m.encode_frames(frames)
            bank = MemoryBank(3)
            bank.add(m.encode_memory(feats.select(0), mask))
            outs.append(step_clip(m, bank, feats.select(slice(1, 3))).pred_logits)
    assert torch.equal(outs[0], outs[1])
    assert not list(path.parent.glob("*.tmp"))  # atomic write leaves no temp file


def _rewrite(path, tensors, header):
    save_file(tensors, str(path), metadata=header)


def test_missing_and_unexpected_keys_are_named(saved):
    path, _, _ = saved
    tensors = load_file(str(path))
    cfg = read_checkpoint(path)[1]
    meta = {"format": "tamvt-checkpoint", "version": "1", "config": json.dumps(dataclasses.asdict(cfg)), "meta": "{}"}
    del tensors["mask_head.norm.bias"]
    tensors["extra.weight"] = torch.zeros(1)
    _rewrite(path, tensors, meta)
    with pytest.raises(InputError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert str(path) in msg and "missing keys: mask_head.norm.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "\n" not in msg


def test_other_preset_is_a_clear_error(saved):
    path, _, _ = saved
    with pytest.raises(InputError, match="different model.*backbone: expected 'resnet50'"):
        load_checkpoint(path, "tamvt-r50")
    # same architecture with other inference defaults is fine
    model, cfg = load_checkpoint(
        path, load_preset("tamvt-small", ["model.decoder_layers=2", "inference.short_side=624"])
    )
    assert cfg.inference.short_side == 624


def test_shape_mismatch_is_a_clear_error(saved):
    path, _, cfg = saved
    tensors = load_file(str(path))
    tensors["frame_proj.res5.bias"] = torch.zeros(3)
    _rewrite(
        path,
        tensors,
        {"format": "tamvt-checkpoint", "version": "1", "config": json.dumps(dataclasses.asdict(cfg)), "meta": "{}"},
    )
    with pytest.raises(InputError, match="frame_proj.res5.bias has shape"):
        load_checkpoint(path)


def test_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(InputError, match="corrupt.safetensors: not a readable tamvt checkpoint"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(InputError, match="foreign.safetensors: not a tamvt checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_bank_expansion_on_load(saved):
    path, model, _ = saved
    loaded, cfg = load_checkpoint(path, bank_size=12)
    assert cfg.model.bank_size == 12 and loaded.bank_size == 12
    expected = resize_rte_table(model.matching.rte.theta.detach(), 9, 12)
    assert torch.equal(expected[:45], model.matching.rte.theta.detach())
    assert not torch.equal(expected[45:], torch.ones(33))
    assert torch.equal(loaded.matching.rte.theta.detach(), expected)
    assert loaded.matching.rte.theta.requires_grad
