"""Configuration schema: frozen dataclasses, YAML presets, type-checked ``key.sub=value`` overrides.

The dataclasses are the single source of truth for every knob. YAML files (the shipped presets in
``tamvt/configs/`` or a user's file) are loaded into them with :func:`load_yaml_config`, and the CLI
applies ``model.rte=add``-style overrides with :func:`apply_overrides`, both checked against the
field types (an unknown key or a badly typed value is a :class:`TamvtError`, never a silent default).

The helpers are generic over any (nested) frozen dataclass, so the trainer reuses them for its own
schema. Modules never receive these objects: tiny ``build_*`` functions unpack them.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from tamvt.errors import InputError, TamvtError

T = TypeVar("T")

BACKBONES = ("resnet18", "resnet34", "resnet50")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a TAM-VT model (everything that determines the weights' shapes and the forward).

    Every ablation of the paper's Tab. 2 is one of these values: ``rte``, ``matching_scales``,
    ``clip_length``, ``bank_size``.
    """

    backbone: Literal["resnet18", "resnet34", "resnet50"] = "resnet50"
    backbone_width: int = 64  # stem / layer1 channels (torchvision and the authors: 64)
    backbone_norm: Literal["frozen_bn", "group"] = "frozen_bn"  # authors: frozen BN; group: from scratch
    backbone_freeze_stem: bool = True  # authors: conv1 + layer1 frozen; False trains every layer
    hidden_dim: int = 256  # d: matching width, FPN width, decoder width
    matching_scales: int = 2  # 1: stride 32; 2: strides 32+16 (paper); 3: +stride 8
    matching_heads: int = 4
    matching_dropout: float = 0.1  # attention dropout inside the matching blocks
    rte: Literal["none", "mul", "add"] = "mul"  # relative time encoding (SPEC §1.5)
    decoder_layers: int = 6
    decoder_heads: int = 8
    decoder_ffn: int = 2048
    dropout: float = 0.1  # decoder dropout (attention, residual branches, FFN)
    clip_length: int = 2  # L frames decoded together
    bank_size: int = 9  # memory capacity N (reference included); sizes the RTE table
    time_embed_len: int = 12  # rows of the sine time-embedding table (>= clip_length)
    pixel_decoder_dim: int = 256  # FPN width; must equal hidden_dim (Z is added to the FPN levels)

    def __post_init__(self) -> None:
        check(self.hidden_dim > 0 and self.hidden_dim % 2 == 0, "model.hidden_dim must be a positive even number")
        check(
            self.backbone_width >= 8 and self.backbone_width % 8 == 0,
            "model.backbone_width must be a positive multiple of 8",
        )
        check(1 <= self.matching_scales <= 3, "model.matching_scales must be 1, 2 or 3")
        check(
            self.matching_heads > 0 and self.hidden_dim % self.matching_heads == 0,
            "model.hidden_dim must be divisible by model.matching_heads",
        )
        check(
            self.decoder_heads > 0 and self.hidden_dim % self.decoder_heads == 0,
            "model.hidden_dim must be divisible by model.decoder_heads",
        )
        check(self.decoder_layers >= 1, "model.decoder_layers must be >= 1")
        check(self.decoder_ffn >= 1, "model.decoder_ffn must be >= 1")
        check(0.0 <= self.dropout < 1.0 and 0.0 <= self.matching_dropout < 1.0, "dropout must be in [0, 1)")
        check(self.clip_length >= 1, "model.clip_length must be >= 1")
        check(self.bank_size >= 1, "model.bank_size must be >= 1")
        check(self.time_embed_len >= self.clip_length, "model.time_embed_len must be >= model.clip_length")
        check(
            self.pixel_decoder_dim == self.hidden_dim,
            "model.pixel_decoder_dim must equal model.hidden_dim (matching outputs are added to the "
            "FPN levels and the decoder attends to them)",
        )
        check(self.pixel_decoder_dim % 32 == 0, "model.pixel_decoder_dim must be a multiple of 32 (GroupNorm(32))")


# a hand-built InferenceConfig computes in fp32 (exact, as the tests expect); the presets and the shipped
# checkpoints set `auto`
PRECISION_DEFAULT: Literal["fp32", "bf16", "auto"] = "fp32"


@dataclass(frozen=True)
class InferenceConfig:
    """How a trained model is run on a video (does not change the weights)."""

    short_side: int | None = 480  # resize so the short side is this (480 / 624); None = keep size
    max_long_side: int = 1110  # cap on the long side after resizing (authors' code)
    bank_size: int | None = None  # memory capacity at inference; None = model.bank_size
    interpolate_rte: bool = True  # allow bank_size > model.bank_size by resampling the RTE table
    merge: Literal["argmax", "first-wins"] = "argmax"  # multi-object merge policy (SPEC §2)
    bg_threshold: float = 0.5  # argmax merge: background wins unless some p > bg_threshold
    # arithmetic: fp32; bf16 = bfloat16 autocast on CPU and CUDA (probabilities, masks and the memory's
    # stored values stay fp32); auto = bf16 on a CPU that runs it natively, fp32 on CUDA (tamvt.devices)
    precision: Literal["fp32", "bf16", "auto"] = PRECISION_DEFAULT
    # deprecated (checkpoints and YAML before `precision`; it meant bf16 on GPU): true = auto, false = fp32;
    # read only while `precision` is left at its default, then cleared
    autocast_bf16: bool | None = None
    # memory policy (tamvt.memory.MemoryBank): fifo = the paper's; spread = the `memory_recent` newest
    # entries by FIFO + long-term entries kept evenly spread over the whole past
    memory: Literal["fifo", "spread"] = "fifo"
    memory_recent: int | None = None  # spread: newest entries kept by FIFO; None = 2
    memory_gate: float = 0.0  # don't write a frame where some object's mask confidence is below this; 0 = off
    # memory reading as XMem / STCN: each query token attends only to its top_k most similar memory
    # tokens per matching scale; None = all of them (the paper's)
    top_k: int | None = None
    # local search: each object's prediction is kept inside the bounding box of its last mask grown on each
    # side by this times the box's longer side (+ 8 input px); an object whose last mask is empty is searched
    # everywhere; None = the whole frame (the paper's)
    search_window: float | None = None
    # permanent memory of the frames a user annotated for an object: at most this many (and at most
    # bank_size - 1, so one slot stays for the recent frames), the ones nearest in time to the frames
    # being segmented (tamvt.inference.session.nearest_references)
    max_references: int = 4
    # lost and found (tamvt.memory.PresenceRule): decide from the model's output whether each object is
    # visible in each frame; an absent object outputs nothing, writes no memory and is searched in the whole
    # frame until the rule finds it again. Absent when the mask's confidence (mean 2p-1 inside it) is below
    # presence_confidence, its area below presence_area times its area when last seen, (when set) below
    # presence_peak_area times the largest area it had since the latest mask given (start or correction),
    # or (when set) above presence_max_area times its area in that mask
    presence: bool = False  # inference.presence=on / off (YAML booleans)
    presence_confidence: float = 0.75
    presence_area: float = 0.2
    presence_max_area: float | None = None
    presence_peak_area: float | None = None
    # what an object absent before a clip reads to be found again: the whole memory, its references alone,
    # or (anywhere) also the whole memory matched by appearance alone, taking the larger logit of the two
    # readouts (without the position encodings in the matching's queries and keys, which tie the readout
    # to where memory saw the object)
    presence_redetect: Literal["memory", "reference", "anywhere"] = "memory"
    # anywhere: the share of the position encodings kept in that readout (0: appearance alone)
    presence_anywhere_position: float = 0.0
    # (when set) each clip is also read from an object's annotated frames alone: a mask with less than this
    # share of its pixels inside that readout's (non-empty) mask takes that readout instead
    presence_reference_check: float | None = None
    # an object's area is kept as its expected area only from frames where its mask stays off the frame's
    # border: one that leaves the frame keeps the area it had whole, so what is left of it (or a blob of
    # background) is not taken for it once it is mostly out, nor a speck for it while it is out
    presence_edge_hold: bool = False
    # (when set) an object is also absent where its mask does not look like it in its latest given mask:
    # the cosine of the frame's stride-8 backbone features averaged under the mask and under the given
    # mask, both taken from the given frame's mean feature, below this (tamvt.memory.likeness)
    presence_likeness: float | None = None
    # with presence_likeness or presence_find (no effect without either): also compare with the object's look
    # in the newest frame written to memory while it was present (as it looks now, for an object that changes
    # over the video); the larger cosine counts
    presence_likeness_recent: bool = False
    # with presence_likeness (no effect without it; when set): that bound counts only where the mask's area
    # is also below this fraction of the largest area the object had since its latest given mask (as
    # presence_peak_area): a mask unlike the object that shrank as it left or slid under a cover
    presence_likeness_peak: float | None = None
    # with presence_likeness: that bound empties an object's mask only once it held in this many frames in a
    # row (counted across clips), so one bad frame does not cut the object off its memory
    presence_likeness_frames: int = 1
    # (when set) an object lost before a clip that the readout does not find in a frame of it is looked for
    # by its look in its latest given mask (and its recent one, with presence_likeness_recent): the cells
    # of that frame's stride-8 features like it (cosine above this, as presence_likeness), less those like
    # it when it was lost and the other objects' masks, are its mask when they form one main region of a
    # plausible size (tamvt.refind)
    presence_find: float | None = None

    def __post_init__(self) -> None:
        check(self.short_side is None or self.short_side > 0, "inference.short_side must be > 0 or null")
        check(self.max_long_side > 0, "inference.max_long_side must be > 0")
        check(self.bank_size is None or self.bank_size >= 1, "inference.bank_size must be >= 1 or null")
        check(0.0 <= self.bg_threshold <= 1.0, "inference.bg_threshold must be in [0, 1]")
        check(self.memory_recent is None or self.memory_recent >= 1, "inference.memory_recent must be >= 1 or null")
        check(0.0 <= self.memory_gate <= 1.0, "inference.memory_gate must be in [0, 1]")
        check(self.top_k is None or self.top_k >= 1, "inference.top_k must be >= 1 or null")
        check(self.search_window is None or self.search_window >= 0, "inference.search_window must be >= 0 or null")
        check(self.max_references >= 1, "inference.max_references must be >= 1")
        if self.autocast_bf16 is not None:
            if self.precision == PRECISION_DEFAULT:
                object.__setattr__(self, "precision", "auto" if self.autocast_bf16 else "fp32")
            object.__setattr__(self, "autocast_bf16", None)
        check(0.0 <= self.presence_confidence <= 1.0, "inference.presence_confidence must be in [0, 1]")
        check(self.presence_area >= 0.0, "inference.presence_area must be >= 0")
        check(
            self.presence_max_area is None or self.presence_max_area > 0,
            "inference.presence_max_area must be > 0 or null",
        )
        check(
            self.presence_peak_area is None or 0.0 <= self.presence_peak_area <= 1.0,
            "inference.presence_peak_area must be in [0, 1] or null",
        )
        check(
            self.presence_redetect in ("memory", "reference", "anywhere"),
            "inference.presence_redetect must be memory, reference or anywhere",
        )
        check(0.0 <= self.presence_anywhere_position < 1.0, "inference.presence_anywhere_position must be in [0, 1)")
        check(
            self.presence_reference_check is None or 0.0 <= self.presence_reference_check <= 1.0,
            "inference.presence_reference_check must be in [0, 1] or null",
        )
        check(
            self.presence_likeness is None or -1.0 <= self.presence_likeness <= 1.0,
            "inference.presence_likeness must be in [-1, 1] or null",
        )
        check(
            self.presence_likeness_peak is None or 0.0 <= self.presence_likeness_peak <= 1.0,
            "inference.presence_likeness_peak must be in [0, 1] or null",
        )
        check(self.presence_likeness_frames >= 1, "inference.presence_likeness_frames must be >= 1")
        check(
            self.presence_find is None or -1.0 <= self.presence_find <= 1.0,
            "inference.presence_find must be in [-1, 1] or null",
        )


@dataclass(frozen=True)
class TamvtConfig:
    """A model preset: architecture + default inference settings (what a checkpoint carries)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)


Reweighting = Literal["area", "centroid", "components", "none"]
ApplyTo = Literal["focal", "dice", "both"]


@dataclass(frozen=True)
class LossConfig:
    """Schema of the training objective. Defaults = the authors' training script."""

    focal_weight: float = 5.0
    dice_weight: float = 5.0
    alpha: float = 0.25
    gamma: float = 2.0
    reweighting: Reweighting = "area"
    tau: float = 1.0
    apply_to: ApplyTo = "focal"


def check(ok: bool, message: str) -> None:
    """Raise :class:`TamvtError` with ``message`` unless ``ok`` (the config validators' one test)."""
    if not ok:
        raise TamvtError(message)


# ----------------------------------------------------------------------------------------------
# generic helpers (any frozen dataclass)


def preset_names() -> list[str]:
    """Names of the presets shipped in ``tamvt/configs`` (``tamvt-r50``, ``tamvt-small``, ...)."""
    folder = resources.files("tamvt") / "configs"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve_config_path(path_or_preset: str | Path) -> Path:
    """A YAML path, or the shipped preset of that name. Raises :class:`InputError` if neither exists."""
    text = str(path_or_preset)
    if text.endswith((".yaml", ".yml")) or "/" in text or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise InputError(path, "config file not found")
        return path
    preset = resources.files("tamvt") / "configs" / f"{text}.yaml"
    if not preset.is_file():
        raise InputError(text, f"unknown preset (known: {', '.join(preset_names())}) and not a YAML file")
    return Path(str(preset))


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML config file (InputError naming the file otherwise)."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise InputError(path, f"cannot read YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InputError(path, "a config file must be a mapping at the top level")
    return data


def load_yaml_config(cls: type[T], path_or_preset: str | Path, overrides: Sequence[str] = ()) -> T:
    """Load a YAML file (or shipped preset name) into dataclass ``cls``, then apply overrides.

    Fields missing from the YAML keep their defaults; unknown keys and badly typed values raise
    :class:`InputError` naming the file.
    """
    path = resolve_config_path(path_or_preset)
    data = read_yaml_mapping(path)
    try:
        cfg = from_dict(cls, data)
    except TamvtError as err:
        raise InputError(path, str(err)) from None
    return apply_overrides(cfg, overrides)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Nested plain dict (JSON/YAML-safe: tuples become lists) of a dataclass instance."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(cfg)


def from_dict(cls: type[T], data: dict[str, Any], _prefix: str = "") -> T:
    """Build dataclass ``cls`` from a nested dict; unknown keys / wrong types raise :class:`TamvtError`."""
    if not isinstance(data, dict):
        raise TamvtError(f"{_prefix.rstrip('.') or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]  # T is any dataclass
    unknown = [k for k in data if k not in names]
    if unknown:
        raise TamvtError(
            f"unknown config key(s) {', '.join(_prefix + str(k) for k in unknown)} "
            f"(known under {_prefix.rstrip('.') or 'top level'}: {', '.join(names)})"
        )
    kwargs = {k: _coerce(v, hints[k], _prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def apply_overrides(cfg: T, overrides: Sequence[str]) -> T:
    """Return ``cfg`` with ``["model.rte=add", "model.bank_size=7"]`` applied, type-checked.

    Values are parsed as YAML scalars (``7``, ``0.5``, ``true``, ``null``, ``[1, 2]``) and checked
    against the field's type annotation; ``Literal`` fields only accept their listed values.
    Cross-field checks (``__post_init__``) run once, after all overrides, so coupled fields such as
    ``model.hidden_dim=64 model.pixel_decoder_dim=64`` can be changed together.
    """
    if not overrides:
        return cfg
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise TamvtError(f"bad override {item!r}: expected key.sub=value")
        cfg = _replace_path(cfg, key.split("."), text.strip(), key)
    return from_dict(type(cfg), to_dict(cfg))  # rebuild: runs every section's checks on the final values


def apply_inference_overrides(cfg: TamvtConfig, overrides: Sequence[str]) -> TamvtConfig:
    """:func:`apply_overrides` for a checkpoint's config: only ``inference.*`` keys (its architecture is fixed)."""
    if any(not item.strip().startswith("inference.") for item in overrides):
        raise TamvtError("only inference.* settings can be overridden; the architecture comes from the checkpoint")
    return apply_overrides(cfg, overrides)


def _replace_unchecked(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` without ``__post_init__``: intermediate states may be inconsistent."""
    new = copy.copy(obj)
    for name, value in changes.items():
        object.__setattr__(new, name, value)
    return new


def _replace_path(obj: Any, parts: list[str], text: str, full_key: str) -> Any:
    if not dataclasses.is_dataclass(obj):
        raise TamvtError(f"unknown config key {full_key!r}")
    names = [f.name for f in dataclasses.fields(obj)]
    head = parts[0]
    if head not in names:
        raise TamvtError(f"unknown config key {full_key!r} ({head!r} is not one of: {', '.join(names)})")
    if len(parts) > 1:
        return _replace_unchecked(obj, **{head: _replace_path(getattr(obj, head), parts[1:], text, full_key)})
    hint = typing.get_type_hints(type(obj))[head]
    if dataclasses.is_dataclass(hint):
        raise TamvtError(f"config key {full_key!r} is a section; set one of its fields instead")
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        value = text
    if _accepts_str(hint) and not isinstance(value, str) and value is not None:
        value = text  # e.g. a str field given "1": keep the text as written
    return _replace_unchecked(obj, **{head: _coerce(value, hint, full_key)})


def _accepts_str(hint: Any) -> bool:
    if hint is str:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts_str(a) for a in typing.get_args(hint))
    return False


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against type ``hint``; return it converted (list -> tuple, int -> float)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    bad = TamvtError(f"config key {key!r}: invalid value {value!r} (expected {_describe(hint)})")
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_dict(hint, value, key + ".")
    if origin is Literal:
        if value not in args or isinstance(value, bool) != isinstance(args[0], bool):
            raise bad
        return value
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (
            value is None or (isinstance(value, str) and value.lower() == "none" and not _accepts_str(hint))
        ):
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except TamvtError:
                pass
        raise bad
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise bad
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if origin is tuple and args:
            if len(args) != len(value):
                raise bad
            return tuple(_coerce(v, a, key) for v, a in zip(value, args, strict=True))
        return tuple(_coerce(v, args[0], key) for v in value) if args else tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "2e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    if hint is Any:
        return value
    raise TamvtError(f"config key {key!r}: unsupported field type {hint!r}")


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))


def load_preset(name_or_path: str | Path, overrides: Sequence[str] = ()) -> TamvtConfig:
    """Shortcut: :class:`TamvtConfig` from a preset name (``tamvt-r50``) or YAML path."""
    return load_yaml_config(TamvtConfig, name_or_path, overrides)
