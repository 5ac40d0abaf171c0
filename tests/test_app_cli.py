"""`tamvt app` on the command line: loopback by default, a token in the printed URL, a warning elsewhere,
one-line errors (test_app_sec: the token's and the hosts' options)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

if not os.environ.get("CI"):
    pytest.importorskip("fastapi")

TAMVT = [sys.executable, "-m", "tamvt.cli", "app"]


def _serve_until_ready(args: list[str]) -> str:
    """Start `tamvt app ARGS`, return what it printed up to its URL line, stop it."""
    proc = subprocess.Popen([*TAMVT, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    try:
        for line in proc.stdout:
            out.append(line)
            if "serving http://" in line:
                break
    finally:
        proc.terminate()
        proc.wait(30)
    return "".join(out)


def test_binds_loopback_by_default_and_warns_elsewhere(tmp_path):
    work = ["--workdir", str(tmp_path / "work")]  # not the user's own saved sessions
    out = _serve_until_ready(["--port", "0", *work])
    assert re.search(r"serving http://127\.0\.0\.1:\d+/\?token=[\w-]{43} ", out) and "warning" not in out
    out = _serve_until_ready(["--port", "0", "--host", "0.0.0.0", "--no-demo", *work])
    assert "warning: listening on 0.0.0.0" in out and "has the token" in out and "--allow-host" in out


def test_bad_options_are_one_line_errors(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = subprocess.run([*TAMVT, "--port", str(port)], check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        [*TAMVT, "--root", str(tmp_path / "missing")], check=False, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "not a folder" in r.stderr
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    r = subprocess.run(
        [*TAMVT, "--checkpoint", str(bad), "--port", "0"], check=False, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
