"""Prompt models by name: what ``--prompt-model`` accepts."""

from __future__ import annotations

from tamvt.errors import TamvtError
from tamvt.prompts.base import PromptModel


def prompt_model_names() -> list[str]:
    """What ``--prompt-model`` accepts: the built-in GrabCut and the optional SAM 2 image predictors."""
    return ["grabcut"]


def get_prompt_model(name: str = "grabcut", device: str = "cpu") -> PromptModel:
    """The prompt model called ``name`` (see :func:`prompt_model_names`)."""
    if name == "grabcut":
        from tamvt.prompts.grabcut import GrabCutPrompts

        return GrabCutPrompts()
    raise TamvtError(f"unknown prompt model {name!r}; choose from {', '.join(prompt_model_names())}")
