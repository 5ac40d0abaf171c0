"""``tamvt app``: the local web app (annotate a video, propagate, correct, export).

    tamvt app [--host 127.0.0.1] [--port 8000] [--checkpoint CKPT] [--root DIR] [--out DIR] [--workdir DIR]
              [--prompt-model grabcut] [--token TOKEN | --no-token] [--allow-host NAME ...]

Needs the ``app`` extra (``pip install -e '.[app]'``). The model is loaded once, before serving. The URL
it prints carries the server's token (see :mod:`tamvt.app.security`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from tamvt.commands.options import add_precision_argument
from tamvt.errors import TamvtError
from tamvt.prompts import get_prompt_model, prompt_model_names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free port)")
    parser.add_argument(
        "--checkpoint",
        default=None,
        metavar="PATH|NAME",
        help="a tamvt checkpoint or a model name (`tamvt weights list`); default: the model shipped in the package",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="allow opening videos and frame folders under this folder from the page (default: none, uploads only)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="also keep every export in this folder (default: downloaded from the page only)",
    )
    parser.add_argument("--no-demo", action="store_true", help="do not offer the synthetic demo video")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="device of the model (default cpu)")
    parser.add_argument(
        "--prompt-model",
        default="grabcut",
        metavar="NAME",
        help="the model of the Box and Click tools: "
        + " or ".join(prompt_model_names())
        + " (default grabcut: no weights, about a second a proposal)",
    )
    add_precision_argument(parser)
    parser.add_argument("--max-upload-mb", type=float, default=512, help="largest upload (default 512)")
    parser.add_argument(
        "--max-video-mb",
        type=float,
        default=1024,
        help="largest video once decoded, frames x H x W x 3 bytes (default 1024)",
    )
    parser.add_argument(
        "--cache-mb", type=float, default=2048, help="decoded videos kept in memory in all (default 2048)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="the app's own folder, kept across restarts: saved sessions, uploaded videos, the demo "
        "(default: $TAMVT_HOME/app, else $XDG_CACHE_HOME/tamvt/app, else ~/.cache/tamvt/app)",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=8,
        help="sessions in memory at once; beyond, the least recently used is put to disk (default 8)",
    )
    parser.add_argument(
        "--idle-minutes",
        type=float,
        default=30,
        help="put a session unused this long to disk and free its memory (default 30)",
    )
    parser.add_argument(
        "--keep-days", type=float, default=30, help="delete a saved session untouched this long (default 30)"
    )
    parser.add_argument(
        "--max-disk-mb",
        type=float,
        default=10240,
        help="disk for the saved sessions and their uploads; the ones untouched longest go first (default 10240)",
    )

    token = parser.add_mutually_exclusive_group()
    token.add_argument(
        "--token",
        default=None,
        help="the token every request must carry, shown in the printed URL (default: a new random one at each start)",
    )
    token.add_argument(
        "--no-token",
        action="store_true",
        help="ask for no token (only with a loopback --host: then every user of this machine can use the app)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests addressed to NAME (a Host header other than 127.0.0.1, localhost, [::1] "
        "and --host: the machine's name on a network, a reverse proxy's; repeatable)",
    )


def default_workdir() -> Path:
    """``$TAMVT_HOME/app``, else ``$XDG_CACHE_HOME/tamvt/app``, else ``~/.cache/tamvt/app``."""
    if os.environ.get("TAMVT_HOME"):
        return Path(os.environ["TAMVT_HOME"]).expanduser() / "app"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "tamvt" / "app"


@contextlib.contextmanager
def workdir_lock(workdir: Path) -> Iterator[None]:
    """Hold ``workdir`` for this server: two servers on one folder would delete each other's uploads."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one server per folder is then up to the user
        yield
        return
    with open(workdir / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise TamvtError(
                f"--workdir {workdir}: another `tamvt app` uses this folder; give another --workdir"
            ) from None
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise TamvtError(f"cannot listen on {host}:{port} ({err.strerror or err}); try another --port") from None
    sock.listen(128)
    return sock


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from tamvt.app.engine import Engine
        from tamvt.app.security import is_loopback
        from tamvt.app.server import create_app
        from tamvt.app.settings import MB, AppSettings, new_token
    except ImportError as err:
        raise TamvtError(f"the app needs the 'app' extra ({err.name} is missing): pip install -e '.[app]'") from None
    from tamvt.hub import resolve_checkpoint

    if args.root is not None and not args.root.is_dir():
        raise TamvtError(f"--root {args.root}: not a folder")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise TamvtError(f"--out {args.out}: exists and is not a folder")
    for name in ("max_upload_mb", "max_video_mb", "cache_mb", "idle_minutes", "keep_days", "max_disk_mb"):
        if getattr(args, name) <= 0:
            raise TamvtError(f"--{name.replace('_', '-')} must be > 0")
    if args.max_sessions < 1:
        raise TamvtError("--max-sessions must be >= 1")
    if args.no_token and not is_loopback(args.host):
        raise TamvtError(f"--no-token needs a loopback --host (127.0.0.1, localhost, ::1), not {args.host}")
    if args.token is not None and not args.token.strip():
        raise TamvtError("--token must not be empty (or use --no-token)")
    token = None if args.no_token else args.token or new_token()
    workdir = args.workdir if args.workdir is not None else default_workdir()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TamvtError(f"--workdir {workdir}: cannot create it ({err.strerror or err})") from None
    checkpoint = resolve_checkpoint(args.checkpoint)
    if not checkpoint.is_file():
        raise TamvtError(f"{checkpoint}: checkpoint not found")
    try:  # built now: an unknown or unusable prompt model (SAM 2 not installed) fails before serving
        prompt_model = get_prompt_model(args.prompt_model, args.device)
    except TamvtError as err:
        raise TamvtError(f"--prompt-model {args.prompt_model}: {err}") from None

    sock = _bind(args.host, args.port)
    if not is_loopback(args.host):
        print(
            f"tamvt app: warning: listening on {args.host}, not on this machine only: anyone who can reach it "
            "and has the token (in the URL below) can use the app"
            + (f" and open the videos under {args.root}" if args.root else "")
            + "; requests addressed to another name than 127.0.0.1, localhost, --host or an --allow-host are refused",
            file=sys.stderr,
        )
    engine = Engine(checkpoint, args.device, precision=args.precision)
    engine.load()  # once, now: a bad checkpoint fails here, and the first propagation does not wait for it
    with workdir_lock(workdir):
        settings = AppSettings(
            checkpoint=checkpoint,
            workdir=workdir,
            root=args.root,
            out=args.out,
            demo=not args.no_demo,
            max_upload_bytes=int(args.max_upload_mb * MB),
            max_video_bytes=int(args.max_video_mb * MB),
            cache_bytes=int(args.cache_mb * MB),
            max_sessions=args.max_sessions,
            idle_seconds=args.idle_minutes * 60,
            keep_days=args.keep_days,
            max_disk_bytes=int(args.max_disk_mb * MB),
            device=args.device,
            prompt_model=prompt_model.name,
            token=token,
            allowed_hosts=(args.host, *args.allow_host),
        )
        app = create_app(settings, engine, prompt_model)
        print(f"tamvt app: sessions are saved in {workdir} (--workdir)", flush=True)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        query = f"?token={quote(token, safe='')}" if token is not None else ""
        print(
            f"tamvt app: serving http://{shown}:{port}/{query} (model: {checkpoint.name}; "
            f"prompts: {prompt_model.name}; Ctrl+C to stop)",
            flush=True,
        )
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3))
        # uvicorn stops on SIGINT / SIGTERM and then re-raises the signal: as an exception here, so
        # that the app's shutdown saves the sessions still in memory and the work folder is unlocked
        signal.signal(signal.SIGTERM, _interrupt)
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    print("tamvt app: stopped", file=sys.stderr)
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
