"""Where the commands write: checks that an output can be written (made before any work starts), and
the hidden temporary folder that keeps an interrupted run from leaving a complete-looking output.

A run writes ``OUT`` as ``.<OUT name>.tmp-<pid>`` next to it and renames it into place when complete
(:func:`prepare_output`, :func:`commit_output`). A run killed outright (SIGKILL, out of memory, power
loss) cannot clean up, so the next run on the same output removes the temporary folders whose
process is gone (:func:`remove_stale_temps`); the folder of a process that still runs is never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from tamvt.errors import InputError

_TEMP = re.compile(r"\.(?P<name>.+)\.tmp-(?P<pid>\d+)")


# ---- can it be written? ------------------------------------------------------------------------------


def _existing_ancestor(path: Path) -> Path:
    """The nearest folder above ``path`` that exists (``path``'s parent when it exists)."""
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    return folder


def _probe(folder: Path) -> str | None:
    """``None`` when this process can create entries in ``folder``, else why not. A real attempt (an
    empty folder made and removed at once), not ``os.access``: root passes every permission check
    but still cannot write to a read-only mount or a full disk."""
    try:
        made = tempfile.mkdtemp(prefix=".tamvt-write-check-", dir=folder)
    except OSError as err:
        return (err.strerror or str(err)).lower()
    os.rmdir(made)
    return None


def check_output_folder(out: Path, force: bool | None = None) -> None:
    """Raise :class:`InputError` unless the output folder ``out`` can be created or written into.

    ``force``: ``False`` refuses an ``out`` that exists and is not empty (``--force`` replaces it),
    ``None`` accepts one (commands that add to or resume an output folder)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    if out.is_dir() and force is False and any(out.iterdir()):
        raise InputError(out, "output folder exists and is not empty (use --force to replace it)")
    _check_writable(out, out.is_dir())


def check_output_file(path: Path) -> None:
    """Raise :class:`InputError` unless the output file ``path`` can be created (or replaced)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder; expected a file name")
    _check_writable(path, False)


def _check_writable(path: Path, into: bool) -> None:
    """``path``'s nearest existing folder must take new entries (the temporary folder or file goes
    there); with ``into``, ``path`` itself too (written into, or emptied by ``--force``)."""
    folder = _existing_ancestor(path)
    if not folder.is_dir():
        raise InputError(path, f"cannot be created: {folder} is not a folder")
    for target in [folder, path] if into else [folder]:
        reason = _probe(target)
        if reason is not None:
            where = "into it" if target == path else f"in {target}"
            raise InputError(path, f"cannot write {where}: {reason} (nothing was done)")


# ---- the hidden temporary folder ---------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a zombie or another user's process counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists and belongs to someone else
        return True
    return True


def remove_stale_temps(parent: Path, name: str, prog: str = "tamvt") -> list[Path]:
    """Remove ``parent/.<name>.tmp-<pid>`` folders whose process no longer runs, and say so on
    stderr (one line). Returns the removed paths.

    A pid only counts on this machine: two machines writing one output folder over a network file
    system must not share an output name. A pid reused by a new process keeps its folder until that
    process ends (the safe side)."""
    if not parent.is_dir():
        return []
    removed = []
    for entry in parent.iterdir():
        match = _TEMP.fullmatch(entry.name)
        if match is None or match["name"] != name or not entry.is_dir():
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or pid_alive(pid):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    if removed:
        names = ", ".join(p.name for p in removed)
        print(
            f"{prog}: removed the temporary folder(s) of an interrupted run (process gone): {names} in {parent}",
            file=sys.stderr,
        )
    return removed


def prepare_output(out: Path, force: bool, prog: str = "tamvt") -> Path:
    """A fresh hidden temporary folder ``.<out name>.tmp-<pid>`` next to ``out``; refuses a non-empty
    ``out`` without ``force`` and removes what killed runs left (:func:`remove_stale_temps`)."""
    check_output_folder(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out.parent, out.name, prog)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def commit_output(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder onto ``out`` (replacing an old one)."""
    if out.is_dir():
        shutil.rmtree(out)
    os.replace(tmp, out)


# ---- the masks of a segmented video (`segment`, `batch`, `predict`) ----------------------------------


def write_binary_png(path: Path, mask) -> None:
    """``mask (H, W)`` bool as an 8-bit gray PNG with values 0 / 255."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path)  # 2-D uint8 -> mode L


def write_probs(folder: Path, name: str, object_ids, probs) -> None:
    """``folder/probs/<id>/<name>.png``: each object's probability ``probs (K, H, W)`` (ids
    ``object_ids``) as an 8-bit gray PNG, ``round(p * 255)``; ``>= 128`` is ``p >= 0.5``."""
    import numpy as np
    import torch
    from PIL import Image

    # in float64: float32 rounding of p * 255 could put a p just above 0.5 on 127
    levels = (torch.as_tensor(probs).double().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    for k, obj in enumerate(object_ids):
        path = folder / "probs" / str(obj) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(levels[k])).save(path)


def write_results(
    results,
    folder: Path,
    palette: bytes | None,
    ids,
    *,
    per_object: bool = False,
    save_probs: bool = False,
    overlay_to: Path | None = None,
    fps: float = 24.0,
) -> int:
    """Write the ``(frame index, FrameResult)`` pairs of a propagation as ``tamvt segment`` does:
    ``folder/<frame>.png`` palette masks, with ``per_object`` ``folder/<id>/<frame>.png`` 0/255 masks
    of the objects ``ids``, with ``save_probs`` ``folder/probs/<id>/<frame>.png`` probabilities, and an
    overlay video at ``overlay_to``. Returns the number of frames written."""
    import contextlib

    from tamvt.data.palette import write_index_png
    from tamvt.data.video import VideoWriter
    from tamvt.inference.overlay import overlay

    written = 0
    writer = VideoWriter(overlay_to, fps=fps) if overlay_to is not None else None
    with writer if writer is not None else contextlib.nullcontext():
        for _, result in results:
            write_index_png(folder / f"{result.name}.png", result.mask, palette)
            if per_object:
                for obj in ids:  # each object's own p > 0.5 (may overlap others, unlike the merged mask)
                    write_binary_png(folder / str(obj) / f"{result.name}.png", result.binary(obj))
            if save_probs:
                write_probs(folder, result.name, result.object_ids, result.probs)
            if writer is not None:
                writer.write(overlay(result.image, result.mask, palette))
            written += 1
    return written
