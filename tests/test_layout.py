"""The package layout: no import cycles, imports only point down the layer table, every module imports.

The graph is read from the source with ``ast``: every ``import`` / ``from ... import`` statement of
every module under ``src/tamvt`` counts, those inside functions and ``if TYPE_CHECKING:`` blocks too
(a lazy import is still a dependency). ``from tamvt.x import y`` is an edge to the module
``tamvt.x.y`` when that is a module, else to ``tamvt.x``. Modules loaded by name string
(``importlib.import_module(...)``, how ``cli.py`` dispatches) are not edges. docs/architecture.md
describes the same table in words.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

# ------------------------------------------------------------------------------ the layer table

# Which layer each module belongs to. Sub-packages are one layer each (the longest matching package
# wins: data/'s two wings are layers of their own); single modules are listed by name. A module in none
# of these (a new top-level file or package) fails the test until it is placed here.
PACKAGE_LAYERS: dict[str, str] = {
    "tamvt.models": "models",
    "tamvt.data": "data",  # the dataset readers, frames / video I/O, palettes
    "tamvt.data.synthetic": "synthetic",  # the synthetic video generator
    "tamvt.data.training": "samples",  # training windows, augmentation, the training sets
    "tamvt.evaluation": "evaluation",
    "tamvt.inference": "inference",
    "tamvt.train": "train",
    "tamvt.app": "app",
    "tamvt.viz": "viz",
    "tamvt.commands": "commands",
    "tamvt.hub": "weights",
    "tamvt.prompts": "prompts",  # a box / clicks on a frame -> a proposed mask (GrabCut, SAM 2)
}
MODULE_LAYERS: dict[str, str] = {
    "tamvt": "base",
    "tamvt.errors": "base",
    "tamvt.atomic": "base",
    "tamvt.config": "base",
    "tamvt.imagenet": "base",
    "tamvt.devices": "base",
    "tamvt.memory": "memory",
    "tamvt.refind": "memory",  # a lost object looked for by its look (the presence rule's find_look)
    "tamvt.losses": "losses",
    "tamvt.checkpoint": "checkpoint",
    "tamvt.official": "official",
    "tamvt.cli": "cli",
}

_BELOW_COMMANDS = {
    "base",
    "models",
    "memory",
    "losses",
    "checkpoint",
    "official",
    "weights",
    "data",
    "synthetic",
    "evaluation",
    "inference",
    "prompts",
}
# layer -> the layers its modules may import (its own included). Read bottom-up.
ALLOWED: dict[str, set[str]] = {
    "base": {"base"},
    "models": {"base", "models"},
    "memory": {"base", "models", "memory"},
    "losses": {"base", "models", "losses"},
    "checkpoint": {"base", "models", "checkpoint"},
    "official": {"base", "models", "memory", "losses", "checkpoint", "official"},
    "weights": {"base", "models", "checkpoint", "official", "weights"},  # named models: cache + download
    "data": {"base", "data"},  # readers know nothing of the network, nor of the generator or training
    "synthetic": {"base", "data", "synthetic"},  # the generator writes through the readers' formats
    "samples": {"base", "data", "synthetic", "samples"},  # training samples from datasets or the generator
    "evaluation": {"base", "data", "evaluation"},
    "inference": {"base", "data", "models", "memory", "checkpoint", "inference"},
    "prompts": {"base", "data", "weights", "prompts"},  # SAM 2 weights by name through the registry
    "train": _BELOW_COMMANDS | {"samples", "train"},  # only training uses the training samples
    # the app and the plots sit beside the commands: anything below them (viz reads training logs)
    "app": _BELOW_COMMANDS | {"app"},
    "viz": _BELOW_COMMANDS | {"train", "viz"},
    "commands": _BELOW_COMMANDS | {"train", "app", "viz", "commands"},
    "cli": {"base", "cli"},  # dispatches to tamvt.commands.<name> by string only
}

# Top-level names of optional extras: a module needing one may be skipped when it is not installed.
OPTIONAL_DEPENDENCIES = frozenset({"fastapi", "uvicorn", "starlette", "matplotlib", "tensorboard"})


# ------------------------------------------------------------------------------ reading the graph


def module_names(src: Path) -> dict[str, Path]:
    """Dotted name -> file of every module under ``src/tamvt`` (a package is its ``__init__.py``)."""
    out = {}
    for path in sorted((src / "tamvt").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def internal_imports(source: str, module: str, is_package: bool, known: Iterable[str]) -> set[str]:
    """The ``tamvt`` modules that ``source`` (the text of ``module``) imports, anywhere in the file.

    Raises ``AssertionError`` naming the statement for an import of a ``tamvt`` module that does not exist.
    """
    known = set(known)
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()

    def unknown(node: ast.stmt) -> AssertionError:
        return AssertionError(f"{module} line {node.lineno}: `{ast.unparse(node)}` names no tamvt module")

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "tamvt":
                    if alias.name not in known:
                        raise unknown(node)
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `from . import x`, `from ..y import z`
                base_parts = package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
                base = ".".join(base_parts)
            else:
                base = node.module or ""
            if base.split(".")[0] != "tamvt":
                continue
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in known:
                    found.add(target)  # `from tamvt.data import batch`: the submodule
                elif base in known:
                    found.add(base)
                else:
                    raise unknown(node)
    found.discard(module)
    return found


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Module -> the tamvt modules it imports."""
    modules = module_names(src)
    return {
        name: internal_imports(path.read_text(), name, path.name == "__init__.py", modules)
        for name, path in modules.items()
    }


# ------------------------------------------------------------------------------ checking it


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per strongly connected component that has one (Tarjan), sorted.

    A node's edges to nodes that are not keys of ``graph`` are ignored.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)

    cycles = []
    for component in components:
        members = set(component)
        start = min(component)
        if len(component) == 1 and start not in graph[start]:
            continue
        # shortest way round from `start` back to itself, inside the component (breadth first)
        parent: dict[str, str] = {}
        frontier = [start]
        while start not in parent:
            nxt_frontier = []
            for node in frontier:
                for nxt in sorted(graph[node]):
                    if nxt in members and nxt not in parent:
                        parent[nxt] = node
                        nxt_frontier.append(nxt)
            frontier = nxt_frontier
        chain = [start]
        node = parent[start]
        while node != start:
            chain.append(node)
            node = parent[node]
        chain.append(start)
        cycles.append(chain[::-1])
    return sorted(cycles)


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name per the table above (None: not placed)."""
    if module in MODULE_LAYERS:
        return MODULE_LAYERS[module]
    matches = [package for package in PACKAGE_LAYERS if module == package or module.startswith(package + ".")]
    return PACKAGE_LAYERS[max(matches, key=len)] if matches else None


def layer_violations(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """One line per import that points up (or sideways) the table, or per module with no layer."""
    problems = []
    for module in sorted(graph):
        layer = layer_of(module)
        if layer is None:
            problems.append(f"{module}: in no layer (add it to the table in tests/test_layout.py)")
            continue
        for target in sorted(graph[module]):
            target_layer = layer_of(target)
            if target_layer not in ALLOWED[layer]:
                problems.append(f"{module} ({layer}) imports {target} ({target_layer})")
    return problems


def format_cycles(cycles: list[list[str]]) -> str:
    return "\n".join(" -> ".join(c) for c in cycles)


# ------------------------------------------------------------------------------ the real tree


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_graph_is_read(graph):
    """Sanity of the reader on known edges: a top-level import, a submodule through `from pkg import`,
    and an import inside a function body."""
    assert len(graph) > 50
    assert "tamvt.errors" in graph["tamvt.config"]
    assert "tamvt.inference.predictor" in graph["tamvt.inference"]  # `from tamvt.inference.predictor import`
    assert "tamvt.inference.predictor" in graph["tamvt.commands.demo"]  # imported inside run()


def test_no_import_cycles(graph):
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + format_cycles(cycles)


def test_imports_point_down_the_layers(graph):
    problems = layer_violations(graph)
    assert not problems, "imports against the layer table:\n" + "\n".join(problems)


def test_cli_dispatches_to_command_modules(graph):
    """cli.py names its sub-commands by string: each must be a module of tamvt.commands."""
    from tamvt.cli import COMMANDS

    for name, (module, _) in COMMANDS.items():
        assert module in graph and layer_of(module) == "commands", (name, module)


@pytest.mark.parametrize("module", sorted(module_names(SRC)))
def test_every_module_imports(module):
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        top = (err.name or "").split(".")[0]
        if top in OPTIONAL_DEPENDENCIES:
            pytest.skip(f"{module} needs the optional {top}")
        raise


# ------------------------------------------------------------------------------ the checks can fail


def test_find_cycles_on_a_small_graph():
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},
        "d": set(),  # a -> b -> c -> a
        "e": {"f"},
        "f": {"e"},  # a second, separate cycle
        "g": {"g"},  # self-loop
        "h": {"a", "outside"},  # into a cycle but not on it; an edge to an unknown node
    }
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "f", "e"], ["g", "g"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) == []  # a DAG (diamond)


def test_find_cycles_reports_the_shortest_way_round():
    # a -> b -> c -> a and a -> c -> a are both cycles of one component: the chain is the short one
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": {"a"}}) == [["a", "c", "a"]]


def test_layer_violations_on_a_small_graph():
    graph = {
        "tamvt.errors": set(),
        "tamvt.models.decoder": {"tamvt.errors"},  # down: fine
        "tamvt.data.frames": {"tamvt.models.decoder"},  # data may not use models
        "tamvt.memory": {"tamvt.losses"},  # sideways inside one row of the table
        "tamvt.inference.session": {"tamvt.memory", "tamvt.official"},  # memory fine, official not
        "tamvt.commands.demo": {"tamvt.inference.session", "tamvt.cli"},  # up: only the console script is above
        "tamvt.data.davis": {"tamvt.data.training.windows"},  # a reader may not use the training wing
        "tamvt.data.synthetic.render": {"tamvt.data.palette", "tamvt.data.training.batch"},  # reader fine, samples not
        "tamvt.data.training.windows": {"tamvt.data.synthetic.plan", "tamvt.data.sequence"},  # both fine
        "tamvt.inference.source": {"tamvt.data.video", "tamvt.data.synthetic"},  # the engine reads no generator
        "tamvt.cli": {"tamvt.errors"},  # down: fine
        "tamvt.newthing": set(),  # not in the table
    }
    assert layer_violations(graph) == [
        "tamvt.commands.demo (commands) imports tamvt.cli (cli)",
        "tamvt.data.davis (data) imports tamvt.data.training.windows (samples)",
        "tamvt.data.frames (data) imports tamvt.models.decoder (models)",
        "tamvt.data.synthetic.render (synthetic) imports tamvt.data.training.batch (samples)",
        "tamvt.inference.session (inference) imports tamvt.official (official)",
        "tamvt.inference.source (inference) imports tamvt.data.synthetic (synthetic)",
        "tamvt.memory (memory) imports tamvt.losses (losses)",
        "tamvt.newthing: in no layer (add it to the table in tests/test_layout.py)",
    ]


def test_internal_imports_sees_every_statement():
    source = (
        "import os\n"
        "import tamvt.config\n"
        "from tamvt.data import frames, palette\n"  # submodules
        "from tamvt.errors import InputError\n"  # a name in a module
        "from . import sibling\n"  # relative, resolved against the package
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from tamvt.memory import MemoryBank\n"
        "def run():\n"
        "    from ..models.tamvt import build_tamvt\n"
        "    import tamvt.losses as losses\n"
    )
    known = [
        "tamvt",
        "tamvt.config",
        "tamvt.data",
        "tamvt.data.frames",
        "tamvt.data.palette",
        "tamvt.errors",
        "tamvt.memory",
        "tamvt.models",
        "tamvt.models.tamvt",
        "tamvt.losses",
        "tamvt.inference",
        "tamvt.inference.sibling",
        "tamvt.inference.here",
    ]
    assert internal_imports(source, "tamvt.inference.here", False, known) == {
        "tamvt.config",
        "tamvt.data.frames",
        "tamvt.data.palette",
        "tamvt.errors",
        "tamvt.inference.sibling",
        "tamvt.memory",
        "tamvt.models.tamvt",
        "tamvt.losses",
    }
    with pytest.raises(AssertionError, match="line 2: `from tamvt.segment_cli import main`"):
        internal_imports("import os\nfrom tamvt.segment_cli import main\n", "tamvt.cli", False, known)


def test_a_cycle_written_into_real_files_is_found(tmp_path):
    """The whole pipeline, on a copy of the tree with one lazy import added (config -> checkpoint)."""
    import shutil

    shutil.copytree(SRC / "tamvt", tmp_path / "tamvt", ignore=shutil.ignore_patterns("__pycache__", "weights"))
    config = tmp_path / "tamvt" / "config.py"
    config.write_text(config.read_text() + "\n\ndef _late():\n    from tamvt.checkpoint import read_checkpoint\n")
    graph = import_graph(tmp_path)
    assert ["tamvt.checkpoint", "tamvt.config", "tamvt.checkpoint"] in find_cycles(graph)
    assert "tamvt.config (base) imports tamvt.checkpoint (checkpoint)" in layer_violations(graph)
