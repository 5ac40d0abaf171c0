"""The ``tamvt`` console script.

Each sub-command lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; only the chosen command's module is imported, so ``tamvt eval`` does not
pay for importing the model.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence

from tamvt.errors import TamvtError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("tamvt.commands.demo", "make a synthetic video, segment it with the shipped model, report J/F/J_tr"),
    "synth": ("tamvt.commands.synth", "write synthetic transformation videos in DAVIS layout"),
    "eval": ("tamvt.commands.eval", "evaluate a results folder (DAVIS / VOST / VISOR / YouTube-VOS / generic)"),
    "segment": ("tamvt.commands.segment", "segment one video (file or frame folder) from a mask"),
    "batch": ("tamvt.commands.batch", "segment a list of videos (CSV or folder) with one model load, resumable"),
    "predict": ("tamvt.commands.predict", "run a checkpoint over a dataset split and write a results folder"),
    "convert-official": ("tamvt.commands.convert", "convert the authors' checkpoint to tamvt's format"),
    "weights": ("tamvt.commands.weights", "named models: list, fetch the authors' checkpoints, show paths"),
    "train": ("tamvt.commands.train", "train a model from a preset or YAML with key=value overrides"),
    "export": ("tamvt.commands.export", "export a run's EMA weights as a tamvt checkpoint"),
    "app": ("tamvt.commands.app", "local web app: paint masks on a video, propagate, correct, export"),
    "viz": ("tamvt.commands.viz", "plots: RTE, matching attention, loss weights, training curves, scores"),
}


def _available() -> dict[str, tuple[str, str]]:
    out = {}
    for name, (module, help_) in COMMANDS.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            out[name] = (module, help_)
    return out


def _usage(commands: dict[str, tuple[str, str]]) -> str:
    lines = ["usage: tamvt COMMAND [options]   (tamvt COMMAND --help for details)", "", "commands:"]
    width = max(len(n) for n in commands) if commands else 0
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in commands.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _available()
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(commands))
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from tamvt import __version__

        print(f"tamvt {__version__}")
        return 0
    name = argv[0]
    if name not in commands:
        print(f"tamvt: error: unknown command {name!r}\n\n{_usage(commands)}", file=sys.stderr)
        return 2
    module = importlib.import_module(commands[name][0])
    parser = argparse.ArgumentParser(prog=f"tamvt {name}", description=commands[name][1])
    module.add_arguments(parser)
    try:  # options and KEY=VALUE overrides may come in any order (`--out X key=v` and `key=v --out X`)
        args = parser.parse_intermixed_args(argv[1:])
    except TypeError:  # a parser with features parse_intermixed_args does not support
        args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except TamvtError as err:
        print(f"tamvt {name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tamvt {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `tamvt eval ... | head`: the reader left, not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
