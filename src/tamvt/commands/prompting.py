"""Prompts on the command line: boxes and clicks on one frame -> the index mask that starts tracking.

    --box X0,Y0,X1,Y1[@ID]          an object's box (pixels of the video as stored, x1 / y1 exclusive)
    --click X,Y[@ID]                a click on an object
    --background-click X,Y[@ID]     a click on what is not the object (refines object ID)

Ids: ``@ID`` names the object (1..255). Without it, a box or a click starts a new object with the
smallest id not named anywhere on the command line (1, 2, ... in the order of the options), and a
background click refines the object of the option just before it. Several prompts with one id
describe one object: its box (at most one) gives the first proposal, its clicks refine it.

Proposals are drawn into the index mask in the order their objects first appear on the command line,
so where two overlap the later one wins. ``tamvt segment`` and ``tamvt batch`` share this module:
:func:`add_prompt_arguments` declares the options, :func:`prompts_from_args` reads them,
:func:`prompt_mask` makes the mask.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tamvt.errors import TamvtError

KINDS = ("box", "click", "background-click")
_NUMBER = r"\s*-?\d+(?:\.\d*)?\s*"


@dataclass(frozen=True)
class Prompt:
    """One ``--box`` / ``--click`` / ``--background-click`` value: ``values`` are (x0, y0, x1, y1) or
    (x, y) in frame pixels, ``obj`` the ``@ID`` (``None`` when not given), ``text`` the option as typed."""

    kind: str
    values: tuple[float, ...]
    obj: int | None
    text: str

    def describe(self) -> str:
        return f"--{self.kind} {self.text}"


def parse_prompt(text: str, kind: str) -> Prompt:
    """``"X0,Y0,X1,Y1[@ID]"`` (kind ``box``) or ``"X,Y[@ID]"`` (the clicks) -> :class:`Prompt`.

    Raises:
        TamvtError: one line naming the option and what is wrong.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown prompt kind {kind!r}")
    n = 4 if kind == "box" else 2
    form = "X0,Y0,X1,Y1[@ID]" if kind == "box" else "X,Y[@ID]"
    coords, _, obj_text = text.partition("@")
    if not re.fullmatch(",".join([_NUMBER] * n), coords):
        raise TamvtError(f"--{kind} {text!r}: expected {form} ({n} numbers, pixels of the video)")
    values = tuple(float(v) for v in coords.split(","))
    obj = None
    if obj_text or text.endswith("@"):
        if not re.fullmatch(r"\s*\d+\s*", obj_text) or not 1 <= int(obj_text) <= 255:
            raise TamvtError(f"--{kind} {text!r}: the object id after @ must be a whole number in 1..255")
        obj = int(obj_text)
    if kind == "box" and (values[2] <= values[0] or values[3] <= values[1]):
        raise TamvtError(f"--box {text!r}: expected X0 < X1 and Y0 < Y1 (the top-left corner first)")
    return Prompt(kind, values, obj, text)


def parse_box(text: str) -> Prompt:
    return parse_prompt(text, "box")


def parse_click(text: str, negative: bool = False) -> Prompt:
    return parse_prompt(text, "background-click" if negative else "click")


class _Append(argparse.Action):
    """Appends ``(kind, text)`` to one shared list, so the order across the three options is kept."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        prompts = list(getattr(namespace, self.dest, None) or [])
        prompts.append((self.metavar_kind, values))
        setattr(namespace, self.dest, prompts)

    metavar_kind = ""


def add_prompt_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--box``, ``--click``, ``--background-click`` (repeatable, into ``args.prompts``) and ``--prompt-model``."""
    from tamvt.prompts import prompt_model_names

    helps = {
        "box": ("X0,Y0,X1,Y1[@ID]", "an object's box on frame --frame, in the video's pixels (repeatable)"),
        "click": ("X,Y[@ID]", "a click on an object (repeatable; one id for several clicks refines one object)"),
        "background-click": ("X,Y[@ID]", "a click outside object ID (default: the object of the option before)"),
    }
    for kind, (metavar, text) in helps.items():
        action = type(f"_Append_{kind}", (_Append,), {"metavar_kind": kind})
        parser.add_argument(f"--{kind}", dest="prompts", action=action, metavar=metavar, help=text, default=None)
    parser.add_argument(
        "--prompt-model",
        default="grabcut",
        choices=prompt_model_names(),
        help="what turns boxes / clicks into masks (default grabcut; sam2.1-hiera-tiny needs tamvt[sam])",
    )


def prompts_from_args(args: argparse.Namespace) -> list[Prompt]:
    """The parsed prompts of ``args.prompts`` (``[]`` when none were given)."""
    return [parse_prompt(text, kind) for kind, text in (getattr(args, "prompts", None) or [])]


def group_by_object(prompts: Sequence[Prompt]) -> dict[int, list[Prompt]]:
    """Object id -> its prompts, objects in the order they first appear (see the module's docstring)."""
    named = {p.obj for p in prompts if p.obj is not None}
    free = (i for i in range(1, 256) if i not in named)
    out: dict[int, list[Prompt]] = {}
    last: int | None = None
    for p in prompts:
        obj = p.obj
        if obj is None and p.kind == "background-click":
            if last is None:
                raise TamvtError(f"{p.describe()}: no object before it to refine; add @ID")
            obj = last
        elif obj is None:
            obj = next(free, None)
            if obj is None:
                raise TamvtError(f"{p.describe()}: more than 255 objects")
        out.setdefault(obj, []).append(p)
        last = obj
    for obj, items in out.items():
        boxes = [p for p in items if p.kind == "box"]
        if len(boxes) > 1:
            raise TamvtError(f"object {obj} has two boxes ({boxes[0].text} and {boxes[1].text}); one box an object")
        if not boxes and not any(p.kind == "click" for p in items):
            raise TamvtError(f"object {obj} has only background clicks; give it a --box or a --click")
    return out


def prompt_mask(frame: np.ndarray, prompts: Sequence[Prompt], model) -> np.ndarray:
    """Index mask (H, W) uint8 of the objects the prompts describe on ``frame`` (H, W, 3) uint8 RGB,
    proposed by ``model`` (a :class:`tamvt.prompts.PromptModel`).

    Raises:
        TamvtError: a prompt outside the frame, or an object whose proposal is empty (naming its prompts).
    """
    out = np.zeros(frame.shape[:2], np.uint8)
    for obj, items in group_by_object(prompts).items():
        box = next((p for p in items if p.kind == "box"), None)
        pos = [p.values for p in items if p.kind == "click"]
        neg = [p.values for p in items if p.kind == "background-click"]
        where = ", ".join(p.describe() for p in items)
        try:
            mask = model.box_to_mask(frame, box.values) if box is not None else None
            if pos or neg:
                mask = model.clicks_to_mask(frame, pos, neg, previous=mask)
        except TamvtError as err:
            raise TamvtError(f"{where}: {err}") from None
        if mask is None or not mask.any():
            raise TamvtError(
                f"{where}: the {model.name} proposal for object {obj} is empty; "
                "draw the box around the object, click inside it, or start from --mask"
            )
        out[mask] = obj
    return out
