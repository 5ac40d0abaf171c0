"""``tamvt weights``: the named models that ``--checkpoint NAME`` accepts.

    tamvt weights list                    names, whether each is ready, the cache folder
    tamvt weights fetch NAME [NAME ...]   download the authors' file, record size + sha256, convert
    tamvt weights path NAME [--converted] where NAME's file is (or goes, when downloaded by hand)

The registry and the cache are in :mod:`tamvt.hub.registry`.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="the named models and their state")
    fetch = actions.add_parser("fetch", help="download (resuming a partial download) and convert")
    fetch.add_argument("names", nargs="+", metavar="NAME")
    fetch.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        metavar="S",
        help="seconds to wait for a connection or for data (default 20)",
    )
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    path = actions.add_parser("path", help="where NAME's file is, or goes when downloaded by hand")
    path.add_argument("name", metavar="NAME")
    path.add_argument(
        "--converted", action="store_true", help="the converted tamvt checkpoint instead (what --checkpoint NAME loads)"
    )


def run(args: argparse.Namespace) -> int:
    from tamvt.hub.registry import MODELS, checkpoint_path, download_path, fetch, get_entry, home, status

    if args.action == "list":
        width = max(map(len, MODELS))
        states = {name: status(entry) for name, entry in MODELS.items()}
        state_width = max(map(len, states.values()))
        for name, entry in MODELS.items():
            print(f"{name.ljust(width)}  {states[name].ljust(state_width)}  {entry.summary}")
        print(f"cache: {home()} (set TAMVT_HOME to move it)")
    elif args.action == "fetch":
        if args.timeout <= 0:
            from tamvt.errors import TamvtError

            raise TamvtError(f"--timeout must be > 0, got {args.timeout}")
        for name in args.names:
            get_entry(name)  # every name checked before any download
        for name in args.names:
            print(f"{name}: {fetch(name, progress=not args.quiet, timeout=args.timeout)}")
    else:
        entry = get_entry(args.name)
        print(checkpoint_path(entry) if args.converted else download_path(entry))
    return 0
