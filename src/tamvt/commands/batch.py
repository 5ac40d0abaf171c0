"""``tamvt batch``: segment a list of videos with one model load, resumable and shared by processes.

    tamvt batch videos.csv --out masks/ [--overlay] [--per-object] [--save-probs] [KEY=VALUE ...]
    tamvt batch videos/ --out masks/ --workers 4            # a folder: clip.mp4 + clip.png, ...
    torchrun --nproc_per_node 4 -m tamvt.cli batch videos.csv --out masks/    # one GPU per process

The manifest is a CSV file with a header: ``video``, then ``mask`` or ``box`` (either per row; a box is
``X0,Y0,X1,Y1`` in pixels, several separated by ``;`` with ids 1, 2, ...), optional ``frame`` (the
frame the mask or boxes belong to, default 0) and ``name`` (default the video's stem); relative paths
are relative to the manifest's folder. Or a folder in which every video file (or folder of frames) has
a mask of the same name (``clip.mp4`` + ``clip.png``). Errors in the manifest itself (a missing
column, a bad row, two entries of one name) stop the command before any work (exit 2).

Every entry is written as ``tamvt segment`` writes it, in ``OUT/<name>/`` (``overlay.mp4`` inside with
``--overlay``), first under a hidden temporary folder renamed into place when complete, with
``OUT/<name>/.done.json`` recording the identity of its inputs and options: a second run skips the
complete entries whose inputs did not change and redoes the others. An entry that fails (an unreadable
video, a bad mask, a box outside the frame) is recorded with its one-line error and the others go on;
``OUT/summary.csv`` (rewritten atomically after every entry) has one row per entry: name, video,
status (done / skipped / failed; pending while it waits), frames, seconds, error. Exit status: 1 if
an entry failed, else 0.

Processes share the list through claim files ``OUT/.<name>.claim`` (created atomically; each names
its run, process and the entry's status): ``--workers N`` starts N processes on this machine, and the
ranks of ``torchrun`` (each on ``cuda:LOCAL_RANK``) share it the same way; no process group is needed.
A claim of an earlier run is taken over once that run's process is gone. Claims count on one machine:
do not share ``OUT`` between machines.

:mod:`tamvt.commands.manifest` reads the list; :mod:`tamvt.commands.claims` shares it between processes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tamvt.commands.claims import STATUSES, Claims, write_summary
from tamvt.commands.manifest import Entry, read_manifest
from tamvt.errors import InputError, TamvtError

# options that do not change what is written: not part of an entry's identity
_NOT_IDENTITY = {"manifest", "out", "workers", "quiet", "device"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tamvt.commands.options import add_model_arguments

    parser.add_argument("manifest", type=Path, help="CSV file (video, mask or box, [frame], [name]) or a folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder: OUT/<name>/<frame>.png")
    parser.add_argument("--overlay", action="store_true", help="also write OUT/<name>/overlay.mp4")
    parser.add_argument("--fps", type=float, default=None, help="overlay frame rate (default: the video's, or 24)")
    parser.add_argument("--per-object", action="store_true", help="also write OUT/<name>/<id>/<frame>.png")
    parser.add_argument(
        "--save-probs", action="store_true", help="also write OUT/<name>/probs/<id>/<frame>.png (0..255)"
    )
    parser.add_argument(
        "--allow-truncated", action="store_true", help="segment the frames a truncated video file holds"
    )
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="processes on this machine (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_model_arguments(parser)


# ---- what an entry's output depends on --------------------------------------------------------------


def _stat(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def entry_identity(entry: Entry, options: dict) -> dict:
    """The inputs and options an entry's output depends on (JSON-ready): the video's path and size /
    mtime (every frame's for a folder), the mask's SHA-256, the boxes, the frame, the options. A missing
    video or mask is an :class:`InputError`."""
    video: dict = {"path": str(entry.video.absolute())}
    if entry.video.is_dir():
        digest = hashlib.sha256()
        for f in sorted(entry.video.iterdir()):
            if f.is_file():
                digest.update(json.dumps([f.name, _stat(f)]).encode())
        video["frames"] = digest.hexdigest()
    elif entry.video.is_file():
        video.update(_stat(entry.video))
    else:
        raise InputError(entry.video, "video not found")
    out: dict = {"video": video, "frame": entry.frame, "options": options}
    if entry.mask is not None:
        try:
            out["mask"] = {
                "path": str(entry.mask.absolute()),
                "sha256": hashlib.sha256(entry.mask.read_bytes()).hexdigest(),
            }
        except OSError as err:
            raise InputError(entry.mask, f"cannot read the mask: {err.strerror or err}") from None
    else:
        out["boxes"] = [list(b) for b in entry.boxes]
    return json.loads(json.dumps(out, default=str))  # as it reads back from .done.json


def options_identity(args: argparse.Namespace) -> dict:
    """The options every entry's output depends on, with the checkpoint file's size and mtime."""
    from tamvt import __version__
    from tamvt.hub.registry import resolve_checkpoint

    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items())}
    options = {k: v for k, v in options.items() if k not in _NOT_IDENTITY}
    if not args.overlay:
        options.pop("fps", None)  # the overlay's only
    ckpt = resolve_checkpoint(args.checkpoint, progress=False)
    options["checkpoint_file"] = {
        "path": str(Path(ckpt).absolute()),
        **(_stat(Path(ckpt)) if Path(ckpt).is_file() else {}),
    }
    options["tamvt"] = __version__
    return options


def read_done(folder: Path) -> dict | None:
    try:
        return json.loads((folder / ".done.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def final_line(counts: dict[str, int], out: Path) -> str:
    total = sum(counts.values())
    pending = f", {counts['pending']} still pending in other processes" if counts["pending"] else ""
    return (
        f"tamvt batch: {total} entries: {counts['done']} done, {counts['skipped']} skipped, "
        f"{counts['failed']} failed{pending} -> {out / 'summary.csv'}"
    )


# ---- one entry ---------------------------------------------------------------------------------------


def open_entry(entry: Entry, allow_truncated: bool, scratch: Path):
    """``(sequence, index mask, palette)`` of an entry, every input checked; boxes become masks through
    :func:`tamvt.prompts.box_to_mask` on the entry's frame (box i -> id i; a later box's pixels win)."""
    import numpy as np

    from tamvt.commands.segment import complete_frames
    from tamvt.data.generic import read_generic
    from tamvt.data.palette import read_index_png, write_index_png
    from tamvt.inference.source import open_video

    mask_path = entry.mask
    if mask_path is None:
        from tamvt.prompts import box_to_mask

        source = open_video(entry.video, allow_truncated=allow_truncated)
        if not 0 <= entry.frame < len(source):
            raise InputError(entry.video, f"frame {entry.frame} out of range: the video has {len(source)} frames")
        image = source.read_frame(entry.frame)
        ids = np.zeros(image.shape[:2], np.uint8)
        for i, box in enumerate(entry.boxes, start=1):
            try:
                proposal = box_to_mask(image, box)
            except TamvtError as err:
                raise InputError(entry.video, f"box {i} {list(box)}: {err}") from None
            if not proposal.any():
                raise InputError(entry.video, f"box {i} {list(box)}: no object found in it")
            ids[proposal] = i
        mask_path = scratch / f"{entry.name}.png"
        write_index_png(mask_path, ids)
    seq = read_generic(entry.video, mask_path, entry.frame, name=entry.name)
    seq = complete_frames(seq, entry.frame, allow_truncated)
    mask, palette = read_index_png(mask_path)
    return seq, mask, palette


def segment_entry(load: LazyPredictor, entry: Entry, args: argparse.Namespace, folder: Path, progress: bool) -> int:
    """Segment ``entry`` into ``folder`` (created) as ``tamvt segment`` does; returns the frames written.
    ``load()`` gives the predictor, asked for once the entry's inputs are checked."""
    import tempfile

    from tqdm import tqdm

    from tamvt.commands.output import write_results
    from tamvt.errors import SessionError
    from tamvt.inference.predictor import index_ids

    with tempfile.TemporaryDirectory(prefix="tamvt-batch-") as scratch:
        seq, mask, palette = open_entry(entry, args.allow_truncated, Path(scratch))
    try:
        ids = index_ids(mask, None, None)
    except SessionError as err:
        raise InputError(entry.mask or entry.video, str(err)) from None
    if entry.mask is None:  # what the boxes became, beside the results (as tamvt segment writes it)
        from tamvt.commands.segment import PROMPT_PNG, refuse_prompt_name
        from tamvt.data.palette import write_index_png

        refuse_prompt_name(entry.video, seq.frame_names)
        write_index_png(folder / PROMPT_PNG, mask, palette)
    predictor = load()
    session = predictor.start(seq, keep_results=False)
    for obj in ids:
        predictor.add_mask(session, entry.frame, obj, mask == obj)
    bar = tqdm(
        predictor.propagate(session),
        total=len(seq) - entry.frame,
        unit="frame",
        leave=False,
        disable=not progress,
        desc=entry.name,
    )
    return write_results(
        bar,
        folder,
        palette,
        ids,
        per_object=args.per_object,
        save_probs=args.save_probs,
        overlay_to=folder / "overlay.mp4" if args.overlay else None,
        fps=args.fps or seq.extra.get("fps") or 24.0,
    )


def process_entry(
    load: LazyPredictor, entry: Entry, args: argparse.Namespace, options: dict, progress: bool
) -> tuple[str, int]:
    """``(status, frames)`` of one claimed entry: skipped when ``OUT/<name>`` is complete for the same
    inputs, else segmented into a temporary folder that replaces it when complete. ``load()`` gives
    the predictor (loaded on first use: a run that skips everything loads no model)."""
    from tamvt.atomic import write_text_atomic
    from tamvt.commands.output import commit_output, prepare_output

    out: Path = args.out
    final = out / entry.name
    identity = entry_identity(entry, options)
    done = read_done(final)
    if final.is_dir() and done is not None and done.get("identity") == identity:
        return "skipped", int(done.get("frames", 0))
    if final.exists() and done is None:  # not written by tamvt batch (it always leaves .done.json)
        raise InputError(final, "exists and was not written by tamvt batch (no .done.json); move it away")
    tmp = prepare_output(final, True, prog="tamvt batch")
    try:
        start, loading = time.perf_counter(), load.seconds
        frames = segment_entry(load, entry, args, tmp, progress)
        seconds = time.perf_counter() - start - (load.seconds - loading)
        record = {"identity": identity, "frames": frames, "seconds": round(seconds, 3)}
        write_text_atomic(tmp / ".done.json", json.dumps(record, indent=1))
        commit_output(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return "done", frames


# ---- a process's share of the list -------------------------------------------------------------------


def work(
    args: argparse.Namespace, entries: list[Entry], run_id: str, local_rank: int, bars: bool
) -> tuple[dict[str, int], dict[str, dict]]:
    """Load the model once and segment every entry this process claims. Returns this process's status
    counts and its summary rows of the entries it could not claim (another run's)."""
    from tqdm import tqdm

    from tamvt.commands.options import build_predictor, inference_overrides
    from tamvt.devices import resolve_device

    overrides = inference_overrides(args.overrides)
    device = resolve_device(args.device, local_rank)
    load = LazyPredictor(lambda: build_predictor(args, overrides, device))

    options = options_identity(args)
    claims = Claims(args.out, run_id)
    notes: dict[str, dict] = {}
    mine = dict.fromkeys(STATUSES, 0)
    for entry in tqdm(entries, unit="video", disable=not bars, desc="videos"):
        state = claims.claim(entry.name)
        if state == "taken":
            continue
        if state == "busy":
            other = claims.read(entry.name) or {}
            error = f"being segmented by another tamvt batch (pid {other.get('pid')} on {other.get('host')})"
            notes[entry.name] = {"status": "skipped", "error": error}
            tqdm.write(f"tamvt batch: {entry.name}: skipped, {error}")
            write_summary(args.out, entries, claims, notes)
            continue
        start, loading = time.perf_counter(), load.seconds
        try:
            (status, frames), error = process_entry(load, entry, args, options, bars), ""
        except _ModelError as err:  # the model, not the entry: nothing else can be done either
            raise err.error from None
        except TamvtError as err:
            status, frames, error = "failed", 0, " ".join(str(err).split())
        except Exception as err:  # a bug or the device (out of memory): recorded, the list goes on
            traceback.print_exc(file=sys.stderr)
            status, frames, error = "failed", 0, " ".join(f"{type(err).__name__}: {err}".split())
        seconds = time.perf_counter() - start - (load.seconds - loading)  # the entry's own time
        claims.finish(entry.name, status, frames, seconds, error)
        mine[status] += 1
        write_summary(args.out, entries, claims, notes)
        said = {"done": f"{frames} frames in {seconds:.1f} s", "skipped": "complete, inputs unchanged"}
        tqdm.write(f"tamvt batch: {entry.name}: {status}, {said.get(status, error)}")
    return mine, notes


class LazyPredictor:
    """The predictor, built on the first call (a run whose entries are all complete or broken loads no
    model); ``seconds``: the time that took, kept out of the entries' times."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self.build, self.predictor, self.seconds = build, None, 0.0

    def __call__(self):
        if self.predictor is None:
            start = time.perf_counter()
            try:
                self.predictor = self.build()
            except TamvtError as err:
                raise _ModelError(err) from err
            self.seconds += time.perf_counter() - start
        return self.predictor


class _ModelError(Exception):
    """The model failed to load (wraps the :class:`TamvtError`): it stops the run, unlike an entry's error."""

    def __init__(self, error: TamvtError) -> None:
        super().__init__(str(error))
        self.error = error


def _worker(args: argparse.Namespace, entries: list[Entry], run_id: str, threads: int) -> None:
    """The body of one ``--workers`` process (exit 2 on an error before any entry, as the CLI)."""
    import torch

    torch.set_num_threads(threads)
    try:
        work(args, entries, run_id, 0, bars=False)
    except TamvtError as err:
        print(f"tamvt batch: error: {err}", file=sys.stderr)
        sys.exit(2)


def _torchrun_run_id() -> str:
    """One id shared by the ranks of one torchrun launch: the agent process that started them (their
    parent) and its start time, so that a later launch reusing the pid is another run."""
    parent = os.getppid()
    try:
        started = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        started = os.environ.get("TORCHELASTIC_RUN_ID", "")
    return f"torchrun-{socket.gethostname()}-{parent}-{started}"


def run(args: argparse.Namespace) -> int:
    from tamvt.commands.options import inference_overrides
    from tamvt.commands.output import check_output_folder
    from tamvt.commands.predict import distributed_rank

    inference_overrides(args.overrides)  # checked before any work
    if args.workers < 1:
        raise TamvtError(f"--workers must be >= 1, got {args.workers}")
    if args.fps is not None and not args.fps > 0:
        raise TamvtError(f"--fps must be > 0, got {args.fps}")
    rank, world, local_rank = distributed_rank()
    if world > 1 and args.workers > 1:
        raise TamvtError("--workers and torchrun both start processes: use one of them")
    entries = read_manifest(args.manifest)
    if args.manifest.is_dir() and args.out.absolute() == args.manifest.absolute():
        raise InputError(args.out, "the output folder cannot be the folder of videos it lists")
    check_output_folder(args.out)
    args.out.mkdir(parents=True, exist_ok=True)

    if world > 1:
        run_id = _torchrun_run_id()
        mine, notes = work(args, entries, run_id, local_rank, bars=not args.quiet and rank == 0)
        counts = write_summary(args.out, entries, Claims(args.out, run_id), notes)
        print(
            f"tamvt batch: rank {rank}/{world}: {mine['done']} done, {mine['skipped']} skipped, {mine['failed']} failed"
        )
        print(final_line(counts, args.out))
        return 1 if mine["failed"] else 0

    run_id = uuid.uuid4().hex
    claims = Claims(args.out, run_id)
    write_summary(args.out, entries, claims, {})  # every entry pending
    notes = {}
    if args.workers == 1:
        notes = work(args, entries, run_id, 0, bars=not args.quiet)[1]
        code = 0
    else:
        code = _run_workers(args, entries, run_id, claims)
    counts = write_summary(args.out, entries, claims, notes)
    print(final_line(counts, args.out))
    if code:
        return code
    return 1 if counts["failed"] else 0


def _run_workers(args: argparse.Namespace, entries: list[Entry], run_id: str, claims: Claims) -> int:
    """Start ``--workers`` processes, show one bar over the videos they finish; 2 if one ended in error."""
    import multiprocessing

    from tqdm import tqdm

    threads = max(1, (os.cpu_count() or 1) // args.workers)
    ctx = multiprocessing.get_context("spawn")  # no forked torch state
    procs = [ctx.Process(target=_worker, args=(args, entries, run_id, threads)) for _ in range(args.workers)]
    for p in procs:
        p.start()
    try:
        with tqdm(total=len(entries), unit="video", disable=args.quiet, desc="videos") as bar:
            while any(p.is_alive() for p in procs):
                finished = sum(1 for e in entries if claims.final(e.name) is not None)
                bar.update(finished - bar.n)
                time.sleep(0.5)
    finally:
        for p in procs:
            p.join()
    return 2 if any(p.exitcode for p in procs) else 0
