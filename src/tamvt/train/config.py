"""Training configuration schema (frozen dataclasses) and the training presets.

A training run is fully described by one :class:`TrainConfig`. Presets are YAML files in
``tamvt/configs/train/`` (``pretrain-static``, ``finetune-vost``, ``finetune-vost-authors``,
``finetune-davis``, ``synthetic-small``, ``synthetic-long``, ``synthetic-lost``); a user may pass a YAML
path instead. Loading and ``key.sub=value`` overrides reuse the generic helpers of :mod:`tamvt.config`
(type-checked, unknown keys are errors).

``model_preset`` names a model preset of :mod:`tamvt.config` (``tamvt-r50``, ``tamvt-small``): the
``model:`` and ``inference:`` sections start from that preset and the YAML / overrides change single
fields. It is resolved when the file is loaded, so it can also be given as an override
(``model_preset=tamvt-small``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from tamvt.config import (
    InferenceConfig,
    LossConfig,
    ModelConfig,
    apply_overrides,
    check,
    from_dict,
    load_preset,
    read_yaml_mapping,
    to_dict,
)
from tamvt.errors import InputError, TamvtError

Source = Literal["synthetic", "static", "davis", "vost", "visor", "youtube"]
Precision = Literal["fp32", "bf16", "auto"]


@dataclass(frozen=True)
class DataConfig:
    """Where training windows come from and how they are cut and augmented (SPEC §4).

    ``source``: ``synthetic`` (endless generated videos), ``static`` (pseudo-videos from image+mask
    folders under ``root``), or a video dataset read from ``root`` / ``split``.
    """

    source: Source = "synthetic"
    root: str | None = None  # dataset root (static: image+mask folders); unused for synthetic
    split: str = "train"
    window_length: int = 12  # frames per window, memory frames included
    num_memory: int = 2  # leading frames given with ground truth
    clip_length: int | None = None  # query frames decoded together; None = model.clip_length
    crop_size: tuple[int, int] = (384, 640)  # (H, W) after the window's random resize + crop
    scale_range: tuple[float, float] = (1.0, 1.5)
    hflip_prob: float = 0.5
    jitter: tuple[float, float, float, float] = (0.1, 0.1, 0.1, 0.02)
    reverse_prob: float = 0.0  # time reversal of a window (the authors' flag never took effect)
    short_videos: Literal["pingpong", "skip"] = "pingpong"
    max_skip: int = 1  # largest frame stride of a window (video sources; 1 = consecutive frames)
    epoch_size: int = 1000  # samples per "epoch" of an endless source (synthetic / static streams)
    synthetic_preset: str = "train"  # generator preset of tamvt.data.synthetic for source=synthetic
    synthetic_size: tuple[int, int] | None = None  # (H, W) of generated videos; None = preset's
    synthetic_frames: int | None = None  # frames per generated video; None = preset's
    synthetic_fixed_video: int | None = None  # train on this one video seed only (overfitting checks)
    # share of generated videos with lost-and-found events (hide / exit / decoy); None = the preset's
    # (train-lost: 0.5, the others: 0)
    synthetic_lost_share: float | None = None
    # probability that a generated video whose target goes away and comes back (hide / exit) gives a
    # window around that absence (memory before it, the return in the window) instead of the usual one
    synthetic_lost_focus: float = 0.0
    static_paste_prob: float = 1.0  # static: probability of pasting a second image's objects on top

    def __post_init__(self) -> None:
        check(self.window_length >= 2, "data.window_length must be >= 2")
        check(1 <= self.num_memory < self.window_length, "data.num_memory must be in [1, data.window_length - 1]")
        check(self.clip_length is None or self.clip_length >= 1, "data.clip_length must be >= 1 or null")
        check(min(self.crop_size) > 0, "data.crop_size must be positive")
        check(0 < self.scale_range[0] <= self.scale_range[1], "data.scale_range must be 0 < lo <= hi")
        check(0.0 <= self.reverse_prob <= 1.0, "data.reverse_prob must be in [0, 1]")
        check(self.max_skip >= 1, "data.max_skip must be >= 1")
        check(0.0 <= self.hflip_prob <= 1.0, "data.hflip_prob must be in [0, 1]")
        check(self.epoch_size >= 1, "data.epoch_size must be >= 1")
        share = self.synthetic_lost_share
        check(share is None or 0.0 <= share <= 1.0, "data.synthetic_lost_share must be in [0, 1] or null")
        check(0.0 <= self.synthetic_lost_focus <= 1.0, "data.synthetic_lost_focus must be in [0, 1]")


@dataclass(frozen=True)
class ValConfig:
    """Periodic validation on held-out videos (J, J&F, J_tr).

    ``source=synthetic`` generates ``num_videos`` fixed-seed synthetic videos (the same every time);
    a dataset source reads ``split`` of ``root`` (the first ``num_videos`` sequences, 0 = all).
    """

    source: Literal["none", "synthetic", "davis", "vost", "visor", "youtube"] = "none"
    root: str | None = None  # None = data.root
    split: str = "val"
    num_videos: int = 4
    seed: int = 12345
    synthetic_preset: str = "train"
    synthetic_size: tuple[int, int] | None = None
    synthetic_frames: int | None = None
    short_side: int | None = None  # model input short side for validation; None = native frame size

    def __post_init__(self) -> None:
        check(self.num_videos >= 0, "val.num_videos must be >= 0")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with two parameter groups and a step schedule with linear warm-up (SPEC §4).

    Length: ``epochs``, or ``steps`` when set (it wins over ``epochs``). ``milestones`` and
    ``final_drop`` count epochs for an epoch-long run and steps for a ``steps``-long run. ``schedule``:
    ``paper`` (×``gamma`` at each milestone), ``authors`` (the same plus one more ×``gamma`` for the last
    ``final_drop`` epochs), ``constant``.
    Warm-up: the learning rate rises linearly over the first ``warmup_fraction`` of all steps.
    """

    lr: float = 2e-4
    lr_backbone: float = 1e-5
    lr_rte: float | None = None  # the RTE table's own learning rate (a third group); None = lr
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: Literal["paper", "authors", "constant"] = "paper"
    epochs: int | None = 20
    steps: int | None = None
    milestones: tuple[int, ...] = (8, 16)
    gamma: float = 0.1
    final_drop: int = 0
    warmup_fraction: float = 0.0
    grad_clip: float = 0.0  # max global grad norm; 0 = off
    ema_decay: float = 0.0  # 0 = no EMA (validation / export use the raw weights)
    # the share of clips whose matching reads without the sine position encodings on queries and keys
    # (appearance alone, the readout inference.presence_redetect=anywhere gives a lost object); "lost": only
    # the clips that start right after a frame where the target is out of view (empty ground truth)
    position_drop: float = 0.0
    position_drop_when: Literal["always", "lost"] = "always"

    def __post_init__(self) -> None:
        check(self.epochs is not None or self.steps is not None, "optim: set optim.epochs or optim.steps")
        check(self.epochs is None or self.epochs >= 1, "optim.epochs must be >= 1")
        check(self.steps is None or self.steps >= 1, "optim.steps must be >= 1")
        check(self.lr > 0 and self.lr_backbone >= 0, "optim.lr must be > 0 and optim.lr_backbone >= 0")
        check(self.lr_rte is None or self.lr_rte > 0, "optim.lr_rte must be > 0 or null")
        check(0.0 <= self.warmup_fraction < 1.0, "optim.warmup_fraction must be in [0, 1)")
        check(0.0 <= self.ema_decay < 1.0, "optim.ema_decay must be in [0, 1)")
        check(self.grad_clip >= 0, "optim.grad_clip must be >= 0")
        check(0.0 <= self.position_drop <= 1.0, "optim.position_drop must be in [0, 1]")
        check(list(self.milestones) == sorted(self.milestones), "optim.milestones must be increasing")


@dataclass(frozen=True)
class RunConfig:
    """Where and how the run executes."""

    out_dir: str = "runs/train"
    checkpoint_every: int = 1000  # steps; checkpoints are also written at every epoch end
    validate_every: int = 0  # steps; 0 = only at epoch ends (if val.source is set)
    log_every: int = 10  # steps between metrics.jsonl lines
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # bfloat16 autocast around forward + loss (weights, optimizer state and the loss stay fp32):
    # fp32 = never; bf16 = always (slow on a CPU without native bf16); auto = on a GPU with bf16 and
    # on a CPU with native bf16 (AVX512-BF16 / AMX), else fp32; null = on a GPU only (the former
    # ``run.bf16: true``; ``run.bf16: false`` reads as fp32)
    precision: Precision | None = None
    num_workers: int = 2
    threads: int = 0  # torch CPU threads per process; 0 = torch's default
    progress: bool = True  # tqdm bar on rank 0

    def __post_init__(self) -> None:
        check(self.checkpoint_every >= 1, "run.checkpoint_every must be >= 1")
        check(self.validate_every >= 0 and self.log_every >= 1, "run.validate_every >= 0, run.log_every >= 1")
        check(self.num_workers >= 0 and self.threads >= 0, "run.num_workers and run.threads must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved next to the run and inside each checkpoint."""

    name: str = "custom"
    model_preset: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    val: ValConfig = field(default_factory=ValConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    init_from: str | None = None  # a tamvt checkpoint (or run dir) whose weights start the run
    backbone_init: str | None = None  # a torchvision ImageNet ResNet state dict (.pth) for the backbone

    @property
    def clip_length(self) -> int:
        return self.data.clip_length or self.model.clip_length

    def window_memory_sizes(self) -> list[int]:
        """Memory entries each clip of a training window is matched against, in unroll order.

        The ``num_memory`` ground-truth frames start the bank; every clip but the last adds one entry,
        up to ``model.bank_size``. The RTE table has one block per memory size (SPEC §1.5): blocks larger
        than ``max(window_memory_sizes())`` are never trained by this config.
        """
        d = self.data
        clips = -(-(d.window_length - d.num_memory) // self.clip_length)
        return [min(self.model.bank_size, d.num_memory + i) for i in range(clips)]

    def untrained_rte_note(self) -> str | None:
        """One line when training windows never fill the memory to ``model.bank_size`` (else None)."""
        top = max(self.window_memory_sizes())
        n = self.model.bank_size
        if self.model.rte == "none" or top >= n:
            return None
        need = self.data.num_memory + (n - self.data.num_memory) * self.clip_length + 1
        return (
            f"note: training windows fill the memory to at most {top} entries, so the RTE blocks for "
            f"{top + 1}..{n} entries (used at inference, model.bank_size {n}) stay untrained; "
            f"data.window_length >= {need} trains them all"
        )


# ----------------------------------------------------------------------------------------------


def train_preset_names() -> list[str]:
    """Names of the shipped training presets."""
    folder = resources.files("tamvt") / "configs" / "train"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve_train_config(path_or_preset: str | Path) -> Path:
    """A YAML path, or the shipped training preset of that name (:class:`InputError` otherwise)."""
    text = str(path_or_preset)
    if text.endswith((".yaml", ".yml")) or "/" in text or Path(text).is_file():
        if not Path(text).is_file():
            raise InputError(text, "config file not found")
        return Path(text)
    preset = resources.files("tamvt") / "configs" / "train" / f"{text}.yaml"
    if not preset.is_file():
        raise InputError(
            text, f"unknown training preset (known: {', '.join(train_preset_names())}) and not a YAML file"
        )
    return Path(str(preset))


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _legacy_bf16(value: Any) -> Precision | None:
    """``run.precision`` for the former ``run.bf16`` flag: true (bf16 on GPU only) -> null, false -> fp32."""
    if not isinstance(value, bool):
        raise TamvtError(f"run.bf16: expected true or false, got {value!r} (it is now run.precision=fp32|bf16|auto)")
    return None if value else "fp32"


def _upgrade_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """Configs written before ``run.precision`` (presets, checkpoints, weights' JSON) have ``run.bf16``."""
    run = data.get("run")
    if not isinstance(run, dict) or "bf16" not in run:
        return data
    run = dict(run)
    legacy = _legacy_bf16(run.pop("bf16"))
    run.setdefault("precision", legacy)
    return dict(data, run=run)


def train_config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """:class:`TrainConfig` from a nested dict; ``model_preset`` fills ``model`` / ``inference`` first.

    A former ``run.bf16`` flag is read as the matching ``run.precision``.
    """
    data = _upgrade_legacy(data)
    name = data.get("model_preset")
    if name is not None:
        if not isinstance(name, str):
            raise TamvtError(f"model_preset must be a preset name or YAML path, got {name!r}")
        base = to_dict(load_preset(name))
        data = _merge({"model": base["model"], "inference": base["inference"]}, data)
    return from_dict(TrainConfig, data)


def load_train_config(path_or_preset: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Load a training preset / YAML and apply ``key.sub=value`` overrides (type-checked).

    A ``model_preset=...`` override is applied before the file's ``model:`` section is read, so the
    file's own model fields still win; everything else is applied afterwards in order.
    """
    path = resolve_train_config(path_or_preset)
    data = read_yaml_mapping(path)
    rest = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.strip() == "model_preset":
            data = dict(data, model_preset=yaml.safe_load(value) if value.strip() else None)
        elif sep and key.strip() == "run.bf16":  # the former flag, still accepted on the command line
            legacy = _legacy_bf16(yaml.safe_load(value))
            rest.append("run.precision=" + (legacy or "null"))
        else:
            rest.append(item)
    try:
        cfg = train_config_from_dict(data)
    except TamvtError as err:
        raise InputError(path, str(err)) from None
    return apply_overrides(cfg, rest)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain nested dict (JSON / YAML safe) of a :class:`TrainConfig`."""
    return to_dict(cfg)


def config_to_yaml(cfg: TrainConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
