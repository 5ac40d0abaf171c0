"""Prompt models by name: what ``--prompt-model`` accepts."""

from __future__ import annotations

from tamvt.errors import TamvtError
from tamvt.prompts.base import PromptModel


def prompt_model_names() -> list[str]:
    """What ``--prompt-model`` accepts: the built-in GrabCut and the optional SAM 2 image predictors
    (always listed; building one without the sam2 package is an error saying what to install)."""
    from tamvt.prompts.sam import CONFIGS

    return ["grabcut", *CONFIGS]


def get_prompt_model(name: str = "grabcut", device: str = "cpu") -> PromptModel:
    """The prompt model called ``name`` (see :func:`prompt_model_names`)."""
    if name == "grabcut":
        from tamvt.prompts.grabcut import GrabCutPrompts

        return GrabCutPrompts()
    from tamvt.prompts.sam import CONFIGS, Sam2Prompts

    if name in CONFIGS:
        return Sam2Prompts.from_name(name, device)
    raise TamvtError(f"unknown prompt model {name!r}; choose from {', '.join(prompt_model_names())}")
