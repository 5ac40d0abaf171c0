"""Config schema: presets, YAML loading, type-checked overrides, dict round trip."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tamvt.config import (
    InferenceConfig,
    ModelConfig,
    TamvtConfig,
    apply_overrides,
    from_dict,
    load_preset,
    load_yaml_config,
    preset_names,
    to_dict,
)
from tamvt.errors import InputError, TamvtError


def test_presets_hold_the_documented_architectures():
    assert {"tamvt-r50", "tamvt-small"} <= set(preset_names())
    r50 = load_preset("tamvt-r50").model
    assert (r50.backbone, r50.hidden_dim, r50.matching_scales, r50.matching_heads, r50.rte) == (
        "resnet50",
        256,
        2,
        4,
        "mul",
    )
    assert (r50.decoder_layers, r50.decoder_heads, r50.decoder_ffn, r50.clip_length, r50.bank_size) == (
        6,
        8,
        2048,
        2,
        9,
    )
    small = load_preset("tamvt-small").model
    assert (small.backbone, small.hidden_dim, small.pixel_decoder_dim, small.matching_scales) == (
        "resnet18",
        128,
        128,
        2,
    )


def test_every_paper_ablation_is_an_override():
    cfg = load_preset(
        "tamvt-small",
        [
            "model.rte=add",
            "model.matching_scales=3",
            "model.clip_length=3",
            "model.bank_size=7",
            "inference.short_side=null",
        ],
    )
    assert (cfg.model.rte, cfg.model.matching_scales, cfg.model.clip_length, cfg.model.bank_size) == ("add", 3, 3, 7)
    assert cfg.inference.short_side is None
    assert apply_overrides(cfg, ["model.rte=none"]).model.rte == "none"
    assert apply_overrides(cfg, ["inference.short_side=None"]).inference.short_side is None
    assert apply_overrides(cfg, ["model.dropout=0"]).model.dropout == 0.0  # int accepted for float


@pytest.mark.parametrize(
    "override, words",
    [
        ("model.nope=1", "unknown config key 'model.nope'"),
        ("nope.x=1", "unknown config key 'nope.x'"),
        ("model.rte=sum", "'none', 'mul', 'add'"),
        ("model.bank_size=2.5", "expected int"),
        ("model.bank_size=true", "expected int"),
        ("inference.autocast_bf16=2", "expected bool"),
        ("inference.precision=fp16", "'fp32', 'bf16', 'auto'"),
        ("inference.merge=last", "'argmax', 'first-wins'"),
        ("model.matching_scales=4", "1, 2 or 3"),
        ("model.pixel_decoder_dim=128", "must equal model.hidden_dim"),
        ("model", "expected key.sub=value"),
        ("model=1", "is a section"),
    ],
)
def test_bad_overrides_are_clear_errors(override, words):
    with pytest.raises(TamvtError) as err:
        load_preset("tamvt-r50", [override])
    assert words in str(err.value)


def test_dict_round_trip_and_strict_from_dict():
    cfg = load_preset("tamvt-small", ["model.rte=add"])
    assert from_dict(TamvtConfig, to_dict(cfg)) == cfg
    with pytest.raises(TamvtError, match="unknown config key"):
        from_dict(TamvtConfig, {"model": {"backbone": "resnet18", "extra": 1}})
    with pytest.raises(TamvtError, match="resnet"):
        from_dict(TamvtConfig, {"model": {"backbone": "vit"}})


def test_yaml_file_errors_name_the_file(tmp_path):
    partial = tmp_path / "mine.yaml"
    partial.write_text("model:\n  backbone: resnet34\n")
    cfg = load_yaml_config(TamvtConfig, partial)
    assert cfg.model.backbone == "resnet34" and cfg.model.hidden_dim == ModelConfig().hidden_dim
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  hidden_dim: wide\n")
    with pytest.raises(InputError, match="bad.yaml"):
        load_yaml_config(TamvtConfig, bad)
    with pytest.raises(InputError, match="unknown preset"):
        load_preset("tamvt-huge")
    with pytest.raises(InputError, match="not found"):
        load_preset(tmp_path / "missing.yaml")


@dataclass(frozen=True)
class _Train:
    lr: float = 1e-4
    milestones: tuple[int, ...] = (8, 16)
    name: str = "run"
    warmup: float | None = None


@dataclass(frozen=True)
class _Outer:
    train: _Train = field(default_factory=_Train)
    inference: InferenceConfig = field(default_factory=InferenceConfig)


def test_helpers_are_generic_for_other_schemas():
    cfg = apply_overrides(
        _Outer(), ["train.milestones=[60, 120]", "train.name=123", "train.warmup=0.01", "train.lr=2e-4"]
    )
    assert cfg.train == _Train(lr=2e-4, milestones=(60, 120), name="123", warmup=0.01)
    with pytest.raises(TamvtError):
        apply_overrides(_Outer(), ["train.milestones=[1, x]"])
    assert from_dict(_Outer, to_dict(cfg)) == cfg


def test_coupled_fields_can_be_overridden_together():
    from tamvt.config import apply_overrides, load_preset
    from tamvt.errors import TamvtError

    cfg = apply_overrides(load_preset("tamvt-small"), ["model.hidden_dim=64", "model.pixel_decoder_dim=64"])
    assert (cfg.model.hidden_dim, cfg.model.pixel_decoder_dim) == (64, 64)
    with pytest.raises(TamvtError, match="pixel_decoder_dim"):
        apply_overrides(load_preset("tamvt-small"), ["model.hidden_dim=64"])
