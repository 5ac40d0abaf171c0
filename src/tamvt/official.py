"""The authors' checkpoint format (``tamvt_vost.pth``, ``tamvt_static.pth``) and its conversion to
tamvt's (the ``tamvt convert-official`` command is :mod:`tamvt.commands.convert`).

Every name of the authors' ``state_dict`` is mapped by an explicit rule to exactly one tamvt name;
the two names of the authors' shared pre-LayerNorm (``pre_ln_q`` / ``pre_ln_k``, one module) must
hold equal values and map to one parameter. Parameters the forward never uses are dropped through
:data:`UNUSED_OFFICIAL`; any other unknown name is an error.

The ``.pth`` files are pickles that also hold ``args`` (an OmegaConf object). They are loaded without
executing pickled code: first ``torch.load(weights_only=True)``; if that refuses the file (the
OmegaConf ``args`` make it refuse the authors' files), ``torch.load(weights_only=False)`` with a
restricted unpickler that looks at every global (class or function) the pickle names:

- resolved for real (they only build data): torch's tensor rebuilding (``torch._utils._rebuild_tensor``,
  ``_rebuild_tensor_v2``, ``_rebuild_parameter``, ``_rebuild_parameter_with_state``; storages are
  resolved by ``torch.load`` itself), ``torch.Size``, the torch dtypes (``torch.float16`` ...),
  ``collections.OrderedDict`` / ``defaultdict``, the builtin data types ``dict list tuple set frozenset
  int float complex bool str bytes bytearray`` and ``_codecs.encode`` (how protocol 2 stores bytes);
  Python 2 names (``__builtin__.long``) are read as pickle maps them (``builtins.int``);
- replaced by an inert placeholder, never imported (what ``args`` and training metadata are made
  of; the converter does not read them): everything in ``omegaconf`` and its submodules, ``typing``,
  ``argparse.Namespace``, ``pathlib`` paths, ``torch.device``, and numpy's scalar / array
  reconstruction (``numpy.dtype``, ``numpy.ndarray``, ``numpy[._]core.multiarray.scalar`` /
  ``_reconstruct``);
- refused, every other global (``os.system``, ``builtins.eval``, ``subprocess.Popen``, the authors'
  own classes if a whole module was pickled, ...): loading stops with an error that names it
  (``refused to load `os.system` from the pickle``), nothing of it is imported or called.
"""

from __future__ import annotations

import _compat_pickle
import dataclasses
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

import torch
from torch import Tensor

from tamvt.config import ModelConfig, TamvtConfig, load_preset
from tamvt.errors import InputError, TamvtError
from tamvt.models.matching import adapt_rte_state, rte_bank_size

# (official-name pattern, tamvt-name template); each official name must match exactly one rule
_RULES: list[tuple[str, str]] = [
    (r"backbone\.0\.body\.(.+)", r"backbone.\1"),
    (r"input_proj\.(res[345])\.(weight|bias)", r"frame_proj.\1.\2"),
    (r"input_proj_query_mask\.(res[345])\.(weight|bias)", r"mask_proj.\1.\2"),
    (r"transformer\.encoder\.matching\.(\d+)\.pre_ln_[qk]\.(weight|bias)", r"matching.blocks.\1.pre_ln.\2"),
    (r"transformer\.encoder\.matching\.(\d+)\.(fc_[qkvo]\.weight|ln\.weight|ln\.bias)", r"matching.blocks.\1.\2"),
    (r"transformer\.encoder\.rel_time_theta\.weight", r"matching.rte.theta"),
    (r"transformer\.pixel_decoder\.mask_features\.(weight|bias)", r"pixel_decoder.mask_features.\1"),
    # FPN: adapter_i / layer_i (i = 1..4 <-> res2..res5) = lateral / output ConvNorm (conv, no bias + GN)
    *[
        (rf"transformer\.pixel_decoder\.{off}_{i}\.weight", rf"pixel_decoder.{ours}.res{i + 1}.conv.weight")
        for off, ours in (("adapter", "lateral"), ("layer", "output"))
        for i in range(1, 5)
    ],
    *[
        (rf"transformer\.pixel_decoder\.{off}_{i}\.norm\.(weight|bias)", rf"pixel_decoder.{ours}.res{i + 1}.norm.\1")
        for off, ours in (("adapter", "lateral"), ("layer", "output"))
        for i in range(1, 5)
    ],
    (r"transformer\.decoder\.layers\.(\d+)\.self_attn\.(.+)", r"decoder.layers.\1.self_attn.\2"),
    (r"transformer\.decoder\.layers\.(\d+)\.cross_attn_image\.(.+)", r"decoder.layers.\1.cross_attn.\2"),
    (r"transformer\.decoder\.layers\.(\d+)\.(linear[12]\.(?:weight|bias))", r"decoder.layers.\1.\2"),
    (r"transformer\.decoder\.layers\.(\d+)\.norm1\.(weight|bias)", r"decoder.layers.\1.norm1.\2"),
    (r"transformer\.decoder\.layers\.(\d+)\.norm3\.(weight|bias)", r"decoder.layers.\1.norm2.\2"),
    (r"transformer\.decoder\.layers\.(\d+)\.norm4\.(weight|bias)", r"decoder.layers.\1.norm3.\2"),
    (r"transformer\.decoder\.norm\.(weight|bias)", r"mask_head.norm.\1"),
    (r"transformer\.decoder\.mask_embed\.layers\.(\d+)\.(weight|bias)", r"mask_head.mlp.\1.\2"),
    (r"transformer\.decoder\.level_embed\.weight", r"decoder.level_embed"),
    (r"transformer\.time_embed\.\w+\.te", r"decoder.time_embed"),
    (r"query_embed\.visual\.weight", r"decoder.query_embed"),
]

# Present in the authors' state_dict but unused by the segmentation forward (TubeDETR leftovers):
# the box MLP, the text query embedding, and BatchNorm step counters if a file carries them.
UNUSED_OFFICIAL: list[str] = [
    r"bbox_embed\.layers\.\d+\.(weight|bias)",
    r"query_embed\.text\.weight",
    r"backbone\.0\.body\..+\.num_batches_tracked",
]


def official_to_tamvt_name(name: str) -> str | None:
    """tamvt name of an official state-dict name; ``None`` for a documented unused name.

    Raises:
        TamvtError: the name is neither mapped nor in :data:`UNUSED_OFFICIAL`.
    """
    if any(re.fullmatch(p, name) for p in UNUSED_OFFICIAL):
        return None
    hits = [re.sub(p, t, name) for p, t in _RULES if re.fullmatch(p, name)]
    if len(hits) != 1:
        raise TamvtError(f"unknown parameter name in the authors' checkpoint: {name!r}")
    return hits[0]


def convert_official_state_dict(official: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename the authors' state dict to tamvt names (values unchanged; shapes fixed on loading).

    Raises:
        TamvtError: unknown names, or shared-LayerNorm copies that differ.
    """
    out: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    for name, value in official.items():
        new = official_to_tamvt_name(name)
        if new is None:
            continue
        if new in out:
            # only the shared pre-LayerNorm legitimately appears twice
            if ".pre_ln." not in new or not torch.equal(out[new], value):
                raise TamvtError(f"{source[new]!r} and {name!r} both map to {new!r} but differ")
            continue
        out[new] = value
        source[new] = name
    return out


def infer_model_config(official: Mapping[str, Tensor], base: ModelConfig | None = None) -> ModelConfig:
    """Architecture of an authors' state dict (fields not visible in the weights come from ``base``,
    default the ``tamvt-r50`` preset: head counts, dropout, clip length)."""
    base = base or load_preset("tamvt-r50").model
    body = "backbone.0.body."
    if not any(k.startswith(body) for k in official):
        raise TamvtError("not a TAM-VT state dict (no 'backbone.0.body.*' weights)")
    if body + "layer1.0.conv3.weight" in official:
        backbone = "resnet50"
    else:
        blocks = {int(k.split(".")[4]) for k in official if k.startswith(body + "layer3.")}
        backbone = {2: "resnet18", 6: "resnet34"}.get(len(blocks), "unknown")
    if backbone == "unknown" or body + "layer3.0.conv1.weight" not in official:
        raise TamvtError("unsupported backbone in the authors' checkpoint (expected resnet18/34/50)")
    try:
        d = official["input_proj.res5.weight"].shape[0]
        scales = len({k.split(".")[3] for k in official if k.startswith("transformer.encoder.matching.")})
        layers = len({k.split(".")[3] for k in official if k.startswith("transformer.decoder.layers.")})
        ffn = official["transformer.decoder.layers.0.linear1.weight"].shape[0]
        te = next(v for k, v in official.items() if re.fullmatch(r"transformer\.time_embed\.\w+\.te", k))
    except (KeyError, StopIteration) as err:
        raise TamvtError(f"not a TAM-VT state dict: missing {err}") from None
    theta = official.get("transformer.encoder.rel_time_theta.weight")
    rte: Literal["none", "mul", "add"] = "none"
    bank = base.bank_size
    if theta is not None:
        found = rte_bank_size(theta.numel())
        if found is None:
            raise TamvtError(f"RTE table of {theta.numel()} rows is not N(N+1)/2 for any bank size N")
        bank, rte = found, "mul"  # the released models use 'embedding_dyna_mul' (the weights cannot tell mul from add)
    arch = cast(Literal["resnet18", "resnet34", "resnet50"], backbone)  # checked against the three above
    return dataclasses.replace(
        base,
        backbone=arch,
        hidden_dim=d,
        pixel_decoder_dim=d,
        matching_scales=scales,
        decoder_layers=layers,
        decoder_ffn=ffn,
        time_embed_len=te.shape[0],
        rte=rte,
        bank_size=bank,
    )


# ----------------------------------------------------------------------------------------------
# safe loading of the authors' pickles


class _Inert:
    """Stands in for an inert global of a pickle (see the module docstring): accepts any
    construction, call or state, and does nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass


_BUILTIN_DATA = (
    "dict",
    "list",
    "tuple",
    "set",
    "frozenset",
    "int",
    "float",
    "complex",
    "bool",
    "str",
    "bytes",
    "bytearray",
)
_REAL_GLOBALS = {
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"),
    ("_codecs", "encode"),
    *(("builtins", name) for name in _BUILTIN_DATA),
}
_INERT_MODULES = ("omegaconf", "typing")  # with their submodules
_INERT_GLOBALS = {
    ("argparse", "Namespace"),
    *(("pathlib", n) for n in ("Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath")),
    ("torch", "device"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    *((f"numpy.{core}.multiarray", n) for core in ("core", "_core") for n in ("scalar", "_reconstruct")),
}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global that the restricted unpickler neither resolves nor replaces."""

    def __init__(self, module: str, name: str) -> None:
        self.qualname = f"{module}.{name}"
        alias = f" (os.{name})" if module in ("posix", "nt") else ""  # what os.system pickles as
        super().__init__(f"refused to load `{self.qualname}`{alias} from the pickle")


class _RestrictedUnpickler(pickle.Unpickler):
    """The fallback unpickler of :func:`load_official_checkpoint`: a global is resolved, replaced by
    :class:`_Inert` (never imported) or refused with :class:`RefusedGlobal`, as the module docstring
    lists (storages are resolved by torch's wrapper before this)."""

    def find_class(self, module: str, name: str) -> Any:
        # torch writes protocol 2, which names globals as Python 2 did (__builtin__.eval, commands.Popen):
        # the Python 3 names, as pickle's own find_class maps them
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _REAL_GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if (module, name) in _INERT_GLOBALS or module.split(".")[0] in _INERT_MODULES:
            return _Inert
        raise RefusedGlobal(module, name)


class _RestrictedPickleModule:
    """``pickle_module`` for ``torch.load`` that uses :class:`_RestrictedUnpickler`."""

    Unpickler = _RestrictedUnpickler
    __name__ = "tamvt_restricted_pickle"

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return _RestrictedUnpickler(file, **kwargs).load()


def load_official_checkpoint(path: str | Path) -> dict[str, Any]:
    """The top-level dict of an authors' ``.pth`` (``model``, ``model_ema``, ``args`` -> inert, ...)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it handles anyway
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickleModule)
        except RefusedGlobal as err:
            raise InputError(
                path,
                f"{err}: only tensors, plain data and the authors' OmegaConf / argparse args "
                "are read (see tamvt.official); nothing of it was imported or run",
            ) from None
        except Exception as err:  # corrupt or not a torch file
            raise InputError(path, f"cannot read as a torch checkpoint: {str(err).splitlines()[0]}") from None
    except Exception as err:
        raise InputError(path, f"cannot read as a torch checkpoint: {str(err).splitlines()[0]}") from None
    if not isinstance(obj, dict):
        raise InputError(path, f"expected a dict at the top level, got {type(obj).__name__}")
    return obj


def official_state_dict(checkpoint: Mapping[str, Any], *, ema: bool = True) -> dict[str, Tensor]:
    """``model_ema`` (default) or ``model`` of a loaded authors' checkpoint (or the dict itself when it
    is already a bare state dict)."""
    key = "model_ema" if ema else "model"
    if key in checkpoint:
        sd = checkpoint[key]
    elif all(isinstance(v, Tensor) for v in checkpoint.values()):
        sd = checkpoint
    else:
        raise TamvtError(f"the checkpoint has no {key!r} entry (keys: {', '.join(map(str, checkpoint))})")
    if not isinstance(sd, Mapping) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise TamvtError(f"checkpoint[{key!r}] is not a state dict of tensors")
    return dict(sd)


def convert_official(official: Mapping[str, Tensor], bank_size: int | None = None) -> tuple[Any, TamvtConfig]:
    """A :class:`~tamvt.models.tamvt.TamVT` holding the authors' weights, and its config.

    Args:
        official: the authors' state dict (float tensors, official names).
        bank_size: memory capacity to run with; larger than the trained one resamples the RTE table
            (SPEC §1.5), smaller keeps its first blocks.
    """
    from tamvt.checkpoint import load_state_dict_strict
    from tamvt.models.tamvt import build_tamvt

    model_cfg = infer_model_config(official)
    sd = convert_official_state_dict(official)
    if bank_size is not None:
        sd = adapt_rte_state(sd, model_cfg.bank_size, bank_size)
        model_cfg = dataclasses.replace(model_cfg, bank_size=bank_size)
    model = build_tamvt(model_cfg)
    load_state_dict_strict(model, sd, source="authors' checkpoint")
    return model, TamvtConfig(model=model_cfg, inference=load_preset("tamvt-r50").inference)
