"""Hardening (issue 16): what a killed run leaves, every input checked before anything is written,
video and mask problems said in words, another tool's attributes.json, the globals the authors'
checkpoint loader refuses, and outputs that cannot be written (checked as a non-root user)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tamvt.cli import main
from tamvt.errors import InputError

TAMVT = [sys.executable, "-m", "tamvt.cli"]
H, W = 48, 64
MODEL = ["--short-side", "0", "--device", "cpu", "--quiet"]  # the shipped model


def clip_frames(n: int) -> list[np.ndarray]:
    """``n`` frames ``(H, W, 3)`` uint8: a red bar moving right over dark noise."""
    rng = np.random.default_rng(0)
    frames = []
    for t in range(n):
        frame = rng.integers(0, 60, (H, W, 3), dtype=np.uint8)
        x = t % (W - 12)
        frame[10:30, x : x + 12] = (240, 60, 60)
        frames.append(frame)
    return frames


def write_clip(folder: Path, n: int) -> Path:
    """``n`` frames as PNGs in ``folder``; returns the first frame's mask (``folder``'s sibling ``mask.png``)."""
    folder.mkdir(parents=True)
    for t, frame in enumerate(clip_frames(n)):
        Image.fromarray(frame).save(folder / f"{t:05d}.png")
    return write_mask(folder.parent / "mask.png")


def write_mask(path: Path) -> Path:
    ids = np.zeros((H, W), np.uint8)
    ids[10:30, 0:12] = 1
    Image.fromarray(ids).save(path)
    return path


def write_video(path: Path, n: int) -> None:
    from tamvt.data.video import VideoWriter

    with VideoWriter(path, fps=10) as writer:
        for frame in clip_frames(n):
            writer.write(frame)


def cut_in_half(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def tiny_davis(tmp_path_factory) -> Path:
    """One 16-frame synthetic video (120x160, 2 objects) in DAVIS layout, with tamvt's attributes.json."""
    from tamvt.data.synthetic import preset_suite
    from tamvt.data.synthetic.dataset import write_dataset

    root = tmp_path_factory.mktemp("hardening") / "davis"
    write_dataset(root, preset_suite("tiny")[:1], progress=False)
    return root


# ---- 1. the temporary folder of a killed run ----------------------------------------------------------


def test_segment_removes_the_temporary_folder_of_a_killed_run(tmp_path, capsys):
    mask = write_clip(tmp_path / "frames", 300)
    out = tmp_path / "out"
    argv = ["segment", str(tmp_path / "frames"), "--mask", str(mask), "--out", str(out), *MODEL]
    proc = subprocess.Popen([*TAMVT, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = tmp_path / f".out.tmp-{proc.pid}"
    deadline = time.monotonic() + 300
    while not any(killed.glob("*.png")):  # kill it once it has written some masks
        assert proc.poll() is None, "segment ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed.is_dir() and not out.exists()
    sleeper = subprocess.Popen(["sleep", "600"])  # a live process's folder is never touched
    try:
        live = tmp_path / f".out.tmp-{sleeper.pid}"
        live.mkdir()
        (live / "00000.png").write_bytes(b"partial")
        capsys.readouterr()
        assert main(argv) == 0
        said = [line for line in capsys.readouterr().err.splitlines() if killed.name in line]
        assert len(said) == 1 and "interrupted run" in said[0] and live.name not in said[0]
        assert not killed.exists() and (live / "00000.png").exists()
        assert len(list(out.glob("*.png"))) == 300
    finally:
        sleeper.kill()
        sleeper.wait()


def test_predict_removes_temporary_folders_of_dead_processes_only(tiny_davis, tmp_path, capsys):
    (name,) = (tiny_davis / "ImageSets" / "2017" / "val.txt").read_text().split()
    out = tmp_path / "pred"
    out.mkdir()
    dead = out / f".{name}.tmp-{dead_pid()}"
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        live = out / f".{name}.tmp-{sleeper.pid}"
        for folder in (dead, live):
            folder.mkdir()
            (folder / "00000.png").write_bytes(b"partial")
        capsys.readouterr()
        assert main(["predict", "--format", "davis", "--root", str(tiny_davis), "--out", str(out), *MODEL]) == 0
        said = [line for line in capsys.readouterr().err.splitlines() if "interrupted run" in line]
        assert len(said) == 1 and dead.name in said[0] and live.name not in said[0]
        assert not dead.exists() and live.is_dir()
        assert len(list((out / name).glob("*.png"))) == 16
    finally:
        sleeper.kill()
        sleeper.wait()


# ---- 2. every input is checked before anything is written ---------------------------------------------


def test_demo_checks_the_checkpoint_before_writing_the_video(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    assert main(["demo", "--out", str(tmp_path / "demo"), "--checkpoint", str(bad), "--quiet"]) == 2
    assert "bad.safetensors" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.safetensors"]


def test_a_bad_input_leaves_nothing_behind(tiny_davis, tmp_path, capsys):
    mask = write_clip(tmp_path / "frames", 4)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint either")
    new = tmp_path / "new"
    cases = {
        "segment": [
            "segment",
            str(tmp_path / "frames"),
            "--mask",
            str(mask),
            "--out",
            str(new / "masks"),
            "--overlay",
            str(new / "overlay.mp4"),
            "--checkpoint",
            str(bad),
            *MODEL,
        ],
        "predict": [
            "predict",
            "--format",
            "davis",
            "--root",
            str(tiny_davis),
            "--out",
            str(new / "pred"),
            "--checkpoint",
            str(bad),
            *MODEL,
        ],
        "demo": ["demo", "--out", str(new / "demo"), "--checkpoint", str(bad), "--quiet"],
        "synth": ["synth", str(new / "synth"), "--size", "8x8", "--quiet"],
        "eval": [
            "eval",
            "--protocol",
            "davis",
            "--gt",
            str(tmp_path / "nowhere"),
            "--pred",
            str(tiny_davis),
            "--json",
            str(new / "scores.json"),
            "--csv",
            str(new / "scores.csv"),
            "--workers",
            "1",
        ],
        "export": ["export", str(tmp_path / "no-run"), str(new / "model.safetensors")],
        "convert-official": ["convert-official", str(junk), str(new / "model.safetensors")],
    }
    before = sorted(tmp_path.rglob("*"))
    for name, argv in cases.items():
        assert main(argv) == 2, name
        assert one_line(capsys.readouterr().err).startswith(f"tamvt {name}: error: "), name
        assert sorted(tmp_path.rglob("*")) == before, name


# ---- 3. video files that do not decode ----------------------------------------------------------------


def test_video_problems_are_said_in_words(tmp_path, capsys):
    from tamvt.data.video import probe_video

    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("shopping list: milk, eggs, a video camera\n")
    write_video(tmp_path / "full.mp4", 30)
    cut_in_half(tmp_path / "full.mp4", tmp_path / "cut.mp4")  # its index ('moov') is written last
    mask = write_mask(tmp_path / "mask.png")
    words = {
        "empty.mp4": "empty file (0 bytes)",
        "notes.mp4": "it is a text file, not a video",
        "cut.mp4": "truncated MP4: the file ends at byte",
    }
    for name, said in words.items():
        with pytest.raises(InputError) as err:
            probe_video(tmp_path / name)
        assert said in str(err.value) and "Errno" not in str(err.value) and "Error" not in str(err.value)
        argv = ["segment", str(tmp_path / name), "--mask", str(mask), "--out", str(tmp_path / "out"), *MODEL]
        assert main(argv) == 2
        line = one_line(capsys.readouterr().err)
        assert line.startswith(f"tamvt segment: error: {tmp_path / name}: cannot open video: ") and said in line


def test_a_truncated_video_fails_or_gives_the_frames_it_holds(tmp_path, capsys):
    from tamvt.data.video import inspect_video
    from tamvt.inference.source import open_video

    write_video(tmp_path / "full.avi", 30)  # AVI: the header comes first, the frames after it
    cut = cut_in_half(tmp_path / "full.avi", tmp_path / "cut.avi")
    info = inspect_video(cut)
    n = info.frames
    assert info.header_frames == 30 and 0 < n < 30 and info.truncated
    out = tmp_path / "out"
    argv = ["segment", str(cut), "--mask", str(write_mask(tmp_path / "mask.png")), "--out", str(out), *MODEL]
    assert main(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert f"truncated at frame {n}: the header announces 30 frames, only frames 0-{n - 1}" in line
    assert "--allow-truncated" in line and not out.exists()
    assert main([*argv, "--allow-truncated"]) == 0
    assert f"truncated at frame {n}" in capsys.readouterr().err
    assert len(list(out.glob("*.png"))) == n
    # the session API: the same check, the same way out
    with pytest.raises(InputError, match=f"truncated at frame {n}"):
        open_video(cut)
    source = open_video(cut, allow_truncated=True)
    assert len(source) == n and len(list(source.iter_frames())) == n


# ---- 4. a JPEG mask under a .png name -----------------------------------------------------------------


def test_a_jpeg_mask_is_called_a_jpeg(tmp_path, capsys):
    from tamvt.data.palette import read_index_png

    ids = np.zeros((H, W), np.uint8)
    ids[10:30, 0:12] = 1
    Image.fromarray(np.stack([ids * 200] * 3, -1)).save(tmp_path / "rgb.png", format="JPEG")
    Image.fromarray(ids).save(tmp_path / "gray.png", format="JPEG")  # gray, but its edges are not ids any more
    for name, mode in (("rgb.png", "RGB"), ("gray.png", "L")):
        with pytest.raises(InputError, match=rf"{name}: mask is a JPEG file \(mode {mode}\) despite its \.png name"):
            read_index_png(tmp_path / name)
    write_clip(tmp_path / "frames", 3)
    argv = [
        "segment",
        str(tmp_path / "frames"),
        "--mask",
        str(tmp_path / "rgb.png"),
        "--out",
        str(tmp_path / "o"),
        *MODEL,
    ]
    assert main(argv) == 2
    assert "JPEG" in one_line(capsys.readouterr().err)


# ---- 5. another tool's attributes.json ----------------------------------------------------------------


def eval_own_ground_truth(gt: Path) -> list[str]:
    """``tamvt eval`` of a DAVIS folder against its own annotations (every score 100)."""
    pred = gt / "Annotations" / "480p"
    return ["eval", "--protocol", "davis", "--gt", str(gt), "--pred", str(pred), "--workers", "1"]


@pytest.mark.parametrize(
    "content",
    [
        '{"tool": "labelme", "videos": ["a", "b"]}',
        '["tags"]',
        "{not json",
        '{"generator": "tamvt.synthetic", "format_version": 2, "videos": {}}',
    ],
)
def test_eval_reads_only_an_attributes_file_it_wrote(tiny_davis, tmp_path, capsys, content):
    gt = shutil.copytree(tiny_davis, tmp_path / "gt")
    (gt / "attributes.json").write_text(content)
    argv = eval_own_ground_truth(gt)
    assert main(argv) == 0
    captured = capsys.readouterr()
    said = [line for line in captured.err.splitlines() if "attributes.json" in line]
    assert len(said) == 1 and said[0].startswith("tamvt eval: warning: ") and "ignored" in said[0]
    assert "tag:" not in captured.out


def test_eval_still_reads_its_own_attributes_and_refuses_them_broken(tiny_davis, tmp_path, capsys):
    gt = shutil.copytree(tiny_davis, tmp_path / "gt")
    argv = eval_own_ground_truth(gt)
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "tag:cut" in captured.out and "attributes.json" not in captured.err
    ours = json.loads((gt / "attributes.json").read_text())
    (gt / "attributes.json").write_text(json.dumps({**ours, "videos": ["not", "a", "mapping"]}))
    assert main(argv) == 2
    assert "not a valid attributes file" in one_line(capsys.readouterr().err)


# ---- 6. the authors' checkpoint loader ----------------------------------------------------------------


def test_authors_omegaconf_args_load_without_omegaconf(tmp_path, monkeypatch):
    """The authors' files hold ``args`` as an OmegaConf object: it becomes a placeholder, and omegaconf
    (not even installed here) is never imported."""
    from tamvt.official import load_official_checkpoint

    package, module = types.ModuleType("omegaconf"), types.ModuleType("omegaconf.dictconfig")

    class DictConfig:  # pickled under omegaconf's real name
        def __init__(self, content: dict) -> None:
            self._content = content

    DictConfig.__module__, DictConfig.__qualname__ = "omegaconf.dictconfig", "DictConfig"
    module.DictConfig = DictConfig
    package.dictconfig = module
    monkeypatch.setitem(sys.modules, "omegaconf", package)
    monkeypatch.setitem(sys.modules, "omegaconf.dictconfig", module)
    path = tmp_path / "authors.pth"
    torch.save({"model_ema": {"w": torch.arange(3.0)}, "epoch": 7, "args": DictConfig({"lr": 1e-4})}, path)
    monkeypatch.delitem(sys.modules, "omegaconf")
    monkeypatch.delitem(sys.modules, "omegaconf.dictconfig")
    ckpt = load_official_checkpoint(path)
    assert torch.equal(ckpt["model_ema"]["w"], torch.arange(3.0)) and ckpt["epoch"] == 7
    assert "omegaconf" not in sys.modules


@pytest.mark.parametrize(
    ("target", "named"),
    [(os.system, "`posix.system` (os.system)"), (eval, "`builtins.eval`"), (subprocess.Popen, "`subprocess.Popen`")],
)
def test_a_refused_global_is_named(tmp_path, capsys, target, named):
    class Gadget:
        def __reduce__(self):
            return (target, ("touch " + str(tmp_path / "ran"),))

    path = tmp_path / "gadget.pth"
    torch.save({"model_ema": Gadget(), "epoch": 1}, path)
    assert main(["convert-official", str(path), str(tmp_path / "model.safetensors")]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"refused to load {named} from the pickle" in line and "state dict" not in line
    assert not (tmp_path / "ran").exists() and not (tmp_path / "model.safetensors").exists()


# ---- 8. outputs that cannot be written ----------------------------------------------------------------

_DRIVER = """
import contextlib, io, json, sys
from tamvt.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        results.append([main(argv), err.getvalue()])
print(json.dumps(results))
"""


def _unwritable_cases(base: Path) -> dict[str, tuple[list[str], Path]]:
    """name -> (argv, the output that cannot be written); ``base/ro`` is read-only, ``base/rw`` writable."""
    ro, rw = base / "ro", base / "rw"
    gt = base / "davis"
    segment = ["segment", str(base / "frames"), "--mask", str(base / "mask.png"), *MODEL]
    return {
        "segment": ([*segment, "--out", str(ro / "masks")], ro / "masks"),
        "segment --overlay": ([*segment, "--out", str(rw / "masks"), "--overlay", str(ro / "o.mp4")], ro / "o.mp4"),
        "predict": (
            ["predict", "--format", "davis", "--root", str(gt), "--out", str(ro / "pred"), *MODEL],
            ro / "pred",
        ),
        "demo": (["demo", "--out", str(ro / "demo"), "--quiet"], ro / "demo"),
        "synth": (["synth", str(ro / "synth"), "--preset", "tiny", "--quiet"], ro / "synth"),
        "eval": (
            [*eval_own_ground_truth(gt), "--json", str(ro / "scores.json")],
            ro / "scores.json",
        ),
        "export": (["export", str(base / "run"), str(ro / "model.safetensors")], ro / "model.safetensors"),
        "convert-official": (
            ["convert-official", str(base / "authors.pth"), str(ro / "model.safetensors")],
            ro / "model.safetensors",
        ),
        "train": (["train", "synthetic-small", "--out", str(ro / "run")], ro / "run"),
    }


def test_unwritable_outputs_are_refused_before_any_work(tiny_davis, monkeypatch):
    """Run as a non-root user (root writes anywhere): a read-only ``ro/`` folder takes no output.

    As root, the CLI runs as ``nobody`` through ``setpriv`` (or ``su``). Where ``nobody`` cannot run
    this Python (the interpreter or the checkout not readable by others) or neither tool exists:
    the kernel's refusal is checked on the output check itself with this process's effective uid
    switched to ``nobody`` (``os.seteuid``), and the commands run as root with that check told that
    ``ro/`` refuses writes."""
    base = Path(tempfile.mkdtemp(prefix="tamvt-unwritable-"))
    try:
        base.chmod(0o755)
        write_clip(base / "frames", 3)
        shutil.copytree(tiny_davis, base / "davis")
        for name, mode in (("ro", 0o555), ("rw", 0o777), ("home", 0o777)):
            (base / name).mkdir()
            (base / name).chmod(mode)
        cases = _unwritable_cases(base)
        results = _run_unprivileged(base, [argv for argv, _ in cases.values()], monkeypatch)
        for (name, (_, path)), (rc, err) in zip(cases.items(), results, strict=True):
            assert rc == 2, (name, err)
            line = one_line(err)
            assert line.startswith(f"tamvt {name.split()[0]}: error: {path}: cannot write "), (name, line)
            assert "permission denied" in line, (name, line)
        assert list((base / "ro").iterdir()) == [] and list((base / "rw").iterdir()) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run_unprivileged(base: Path, argvs: list[list[str]], monkeypatch) -> list[tuple[int, str]]:
    """``[(exit status, stderr)]`` of ``tamvt.cli.main(argv)`` for each argv, as a user that is not root."""
    if os.geteuid() != 0:  # already unprivileged: mode 0o555 is enough
        return [_main_captured(argv) for argv in argvs]
    try:
        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
    except KeyError:
        uid = gid = 65534
    env = dict(os.environ, HOME=str(base / "home"), OMP_NUM_THREADS="1")

    def as_nobody(cmd: list[str]) -> subprocess.CompletedProcess:
        if shutil.which("setpriv"):
            cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *cmd]
        else:
            cmd = ["su", "nobody", "-s", "/bin/sh", "-c", shlex.join(cmd)]
        return subprocess.run(cmd, cwd=base, env=env, capture_output=True, text=True, timeout=600, check=False)

    tool = shutil.which("setpriv") or shutil.which("su")
    if tool and as_nobody([sys.executable, "-c", "import tamvt.cli"]).returncode == 0:
        proc = as_nobody([sys.executable, "-c", _DRIVER, json.dumps(argvs)])
        assert proc.returncode == 0, proc.stderr[-3000:]
        return [tuple(r) for r in json.loads(proc.stdout.strip().splitlines()[-1])]
    from tamvt.commands import output

    os.setegid(gid)
    os.seteuid(uid)
    try:  # the kernel refuses nobody: the check says so (os and tempfile only, nothing left to import)
        refused = output._probe(base / "ro")
    finally:
        os.seteuid(0)
        os.setegid(0)
    assert refused == "permission denied"
    real_probe = output._probe
    monkeypatch.setattr(
        output, "_probe", lambda folder: refused if (base / "ro") in (folder, *folder.parents) else real_probe(folder)
    )
    return [_main_captured(argv) for argv in argvs]


def _main_captured(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    return rc, err.getvalue()
