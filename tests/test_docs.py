"""The user documentation holds together: README.md, CHANGELOG.md, CONTRIBUTING.md and every page under docs/.

- every relative link and image (``[text](path)``, ``![alt](path)``, ``[name]: path``, ``<img src=...>``)
  points to a file or folder that exists, and a ``#anchor`` into a markdown page to one of its headings
  (GitHub's heading ids);
- every ``tamvt SUB`` (or ``-m tamvt.cli SUB``) in a shell code block names a sub-command of
  ``tamvt.cli.COMMANDS`` whose ``--help`` parses (exit status 0), and for the commands with their own
  sub-commands (``tamvt weights fetch``, ``tamvt viz rte``) the second word is one of them;
- the README stays one screen (at most 200 lines) and no page cites tracker issue numbers.

The ``--help`` checks run in this process through ``tamvt.cli.main``, once per distinct command.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tamvt import cli

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 200
# fenced code blocks whose `tamvt ...` lines are commands to check (``` with no language counts too)
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_IMG_SRC = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# `tamvt SUB` not preceded by a path or a word (src/tamvt/, tamvt.cli, `tamvt-demo/` are not commands)
_COMMAND = re.compile(r"(?:(?<![\w./-])tamvt|-m\s+tamvt\.cli)\s+([a-z][a-z0-9-]*)(?=\s|$)")
_SECOND_WORD = re.compile(r"\s+([a-z][a-z0-9-]*)(?=\s|$)")
_TRACKER = re.compile(r"\bissues?\s+\d|(?<![\w/&#])#\d+\b")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass(frozen=True)
class Line:
    path: Path
    number: int
    text: str
    language: str | None  # the code block's language ("" for a bare fence); None outside code blocks

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.number}"


def lines(path: Path) -> Iterator[Line]:
    """Every line of a markdown file with the fenced code block it sits in (fence lines excluded)."""
    fence: str | None = None
    language: str | None = None
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _FENCE.match(text)
        if fence is None and match:
            fence, language = match.group(1), match.group(2).lower()
            continue
        if (
            fence is not None
            and match
            and match.group(1)[0] == fence[0]
            and len(match.group(1)) >= len(fence)
            and not match.group(2)
        ):
            fence, language = None, None
            continue
        yield Line(path, number, text, language)


def link_targets(line: Line) -> list[str]:
    """The link and image targets of a prose line (code spans and code blocks hold no links)."""
    if line.language is not None:
        return []
    prose = _INLINE_CODE.sub("", line.text)
    found = _LINK.findall(prose) + _IMG_SRC.findall(prose)
    ref = _REF_DEF.match(prose)
    return found + ([ref.group(1)] if ref else [])


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: rendered text, lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[`*_~]|<[^>]+>", lambda m: "_" if m.group(0) == "_" else "", text)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in lines(path):
        match = _HEADING.match(line.text) if line.language is None else None
        if match:
            slug = github_anchor(match.group(2))
            out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return out


def all_links() -> list[tuple[Line, str]]:
    return [(line, target) for path in markdown_files() for line in lines(path) for target in link_targets(line)]


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) and not target.startswith("//")


def test_markdown_files_found() -> None:
    paths = markdown_files()
    assert all(p.is_file() for p in paths)
    assert len(paths) >= 10, [str(p) for p in paths]
    assert len(all_links()) >= 20  # the parser finds links at all


def test_relative_links_and_images_exist() -> None:
    missing = []
    for line, target in all_links():
        if not relative(target):
            continue
        path_part = target.split("#", 1)[0]
        if path_part and not (line.path.parent / path_part).exists():
            missing.append(f"{line.where()}: {target}")
    assert not missing, "links to files that do not exist:\n" + "\n".join(missing)


def test_anchors_exist() -> None:
    missing = []
    for line, target in all_links():
        if not relative(target) or "#" not in target:
            continue
        path_part, anchor = target.split("#", 1)
        page = (line.path.parent / path_part) if path_part else line.path
        if page.suffix == ".md" and page.is_file() and anchor not in anchors(page):
            missing.append(f"{line.where()}: {target} (headings: {sorted(anchors(page))})")
    assert not missing, "links to headings that do not exist:\n" + "\n".join(missing)


def test_readme_fits_one_screen() -> None:
    count = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert count <= README_MAX_LINES, f"README.md has {count} lines; move the detail to docs/"


def test_no_tracker_references() -> None:
    found = [
        f"{line.where()}: {line.text.strip()}"
        for path in markdown_files()
        for line in lines(path)
        if _TRACKER.search(line.text)
    ]
    assert not found, "tracker issue numbers in user documentation:\n" + "\n".join(found)


# ------------------------------------------------------------------------------ commands in code blocks


def documented_commands() -> dict[tuple[str, ...], list[str]]:
    """``(sub,)`` or ``(sub, second word)`` -> where it is written, for every `tamvt ...` in a shell block."""
    out: dict[tuple[str, ...], list[str]] = {}
    for path in markdown_files():
        for line in lines(path):
            if line.language not in SHELL_LANGUAGES:
                continue
            for match in _COMMAND.finditer(line.text):
                key: tuple[str, ...] = (match.group(1),)
                second = _SECOND_WORD.match(line.text, match.end())
                if second and sub_commands(match.group(1)):
                    key += (second.group(1),)
                out.setdefault(key, []).append(line.where())
    return out


def sub_commands(name: str) -> frozenset[str]:
    """The second-level sub-commands of ``tamvt NAME`` (empty when it has none or is unknown)."""
    if name not in cli.COMMANDS:
        return frozenset()
    if name not in _SUB_COMMANDS:
        parser = argparse.ArgumentParser(prog=f"tamvt {name}")
        importlib.import_module(cli.COMMANDS[name][0]).add_arguments(parser)
        _SUB_COMMANDS[name] = frozenset(
            choice
            for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
            for choice in action.choices
        )
    return _SUB_COMMANDS[name]


_SUB_COMMANDS: dict[str, frozenset[str]] = {}
DOCUMENTED = documented_commands()


def test_commands_found() -> None:
    subs = {key[0] for key in DOCUMENTED}
    assert {"demo", "segment", "app", "train", "eval", "weights"} <= subs, sorted(subs)


@pytest.mark.parametrize("command", sorted(DOCUMENTED), ids=" ".join)
def test_documented_command_help_parses(command: tuple[str, ...]) -> None:
    where = ", ".join(DOCUMENTED[command][:3])
    assert command[0] in cli.COMMANDS, f"`tamvt {command[0]}` ({where}) is not a sub-command: {sorted(cli.COMMANDS)}"
    if len(command) > 1:
        assert command[1] in sub_commands(command[0]), (
            f"`tamvt {' '.join(command)}` ({where}): not one of {sorted(sub_commands(command[0]))}"
        )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main([*command, "--help"])
        except SystemExit as exc:
            status = exc.code
    assert status == 0, f"`tamvt {' '.join(command)} --help` ({where}) exited {status}: {err.getvalue()[-500:]}"
    assert "usage:" in out.getvalue()
