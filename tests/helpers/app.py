"""In-process `tamvt app` servers for the HTTP tests: each a FastAPI TestClient addressed as
127.0.0.1:8000 (the Host check), sending the server's token in a header as a script would. Imported by
the app tests after their skip (outside CI a machine without FastAPI skips them)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

with warnings.catch_warnings():  # starlette's notice about httpx versions
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from tamvt.app.engine import Engine
from tamvt.app.server import create_app
from tamvt.app.settings import AppSettings
from tamvt.checkpoint import shipped_model_path

BASE = "http://127.0.0.1:8000"


@contextlib.contextmanager
def app_clients(
    engine: Engine | None, workdirs: Callable[[int], Path], *, token_header: bool = True, **client_options: Any
) -> Iterator[Callable[..., TestClient]]:
    """``make(workdir=None, prompt_model=None, **settings)`` starts a server (the shipped model; ``engine`` shared,
    or one of its own when None; ``prompt_model`` a built prompt model, else the settings' by name) on ``workdir``,
    else on ``workdirs(n)`` for the n-th; every server is stopped at the end."""
    made: list[TestClient] = []

    def make(workdir: Path | None = None, prompt_model: Any = None, **overrides: Any) -> TestClient:
        folder = workdir or workdirs(len(made))
        settings = AppSettings(checkpoint=shipped_model_path(), workdir=folder, **overrides)
        client = TestClient(
            create_app(settings, engine or Engine(settings.checkpoint), prompt_model), base_url=BASE, **client_options
        )
        if token_header and settings.token is not None:
            client.headers["Authorization"] = f"token {settings.token}"
        client.__enter__()
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            client.__exit__(None, None, None)
