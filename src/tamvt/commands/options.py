"""Options shared by the commands: the model options of ``segment`` / ``predict``
(``--checkpoint --preset --short-side --device --precision`` and ``KEY=VALUE`` inference overrides) and id
lists. Where the commands write (checks, temporary folders) is :mod:`tamvt.commands.output`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from tamvt.errors import TamvtError

# ---- model options shared with `tamvt predict` -----------------------------------------------------


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """``--precision fp32|bf16|auto`` (``inference.precision``; default: the checkpoint's setting)."""
    parser.add_argument(
        "--precision",
        default=None,
        choices=("fp32", "bf16", "auto"),
        help="arithmetic: fp32, bf16 (bfloat16 autocast, CPU and CUDA) or auto (bf16 on a CPU that "
        "runs it natively: AVX512-BF16 / AMX; fp32 on GPUs); default: the checkpoint's setting",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint --preset --short-side --device --precision`` and trailing ``KEY=VALUE`` inference
    overrides."""
    parser.add_argument(
        "--checkpoint",
        default=None,
        metavar="PATH|NAME",
        help="tamvt checkpoint (.safetensors) or a model name from `tamvt weights list` "
        "(official-vost: fetched and converted on first use); default: the model "
        "shipped in the package (mini-synthetic: tamvt-mini, synthetic videos only)",
    )
    parser.add_argument(
        "--preset", default=None, help="fail unless the checkpoint holds this preset's architecture (e.g. tamvt-r50)"
    )
    parser.add_argument(
        "--short-side",
        type=int,
        default=None,
        metavar="PX",
        help="resize frames so the short side is PX (480 or 624; 0 = keep the size); default: the checkpoint's setting",
    )
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="default: cuda when available"
    )
    add_precision_argument(parser)
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="inference settings, e.g. inference.bank_size=12 inference.merge=first-wins",
    )
    # overrides may follow the options: argparse's plain parse_args cannot mix them (bpo-14191)
    parser.parse_args = parser.parse_intermixed_args  # type: ignore[method-assign]


def inference_overrides(items: Sequence[str]) -> list[str]:
    """``KEY=VALUE`` items as ``inference.KEY=VALUE``; checked against the schema now (before any work)."""
    from tamvt.config import TamvtConfig, apply_overrides

    out = []
    for item in items:
        key = item.partition("=")[0].strip()
        if key.startswith("model."):
            raise TamvtError(
                f"{item!r}: the architecture comes from the checkpoint; only inference.* settings can be overridden"
            )
        out.append(item if key.startswith("inference.") else f"inference.{item.strip()}")
    apply_overrides(TamvtConfig(), out)
    return out


def build_predictor(args: argparse.Namespace, overrides: list[str], device):
    """The :class:`~tamvt.inference.predictor.Predictor` for the parsed model options (``--checkpoint``:
    a path or a model name, default the shipped model; ``--short-side 0`` keeps the frame size)."""
    from tamvt.hub.registry import resolve_checkpoint
    from tamvt.inference.predictor import Predictor

    if args.short_side is not None and args.short_side < 0:
        raise TamvtError(f"--short-side must be >= 0 (0 = keep the size), got {args.short_side}")
    fields: dict[str, Any] = {} if args.short_side is None else {"short_side": args.short_side or None}
    if getattr(args, "precision", None) is not None:  # the user's choice wins over the checkpoint's
        fields["precision"] = args.precision
    return Predictor.from_checkpoint(
        resolve_checkpoint(args.checkpoint), preset=args.preset, device=device, config_overrides=overrides, **fields
    )


def parse_ids(text: str | None, option: str) -> list[int] | None:
    if text is None:
        return None
    try:
        ids = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise TamvtError(f"{option} must be comma-separated integer ids, got {text!r}") from None
    if not ids:
        raise TamvtError(f"{option} lists no id")
    return ids
