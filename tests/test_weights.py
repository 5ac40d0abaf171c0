"""Named models (``tamvt weights``, ``--checkpoint NAME``): the downloader and the cache, against a
loopback HTTP server that plays Google Drive (confirmation page, dropped connection, wrong size).
No test touches the internet."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import torch

from tamvt.checkpoint import load_checkpoint, shipped_model_path
from tamvt.cli import main
from tamvt.errors import InputError, TamvtError
from tamvt.hub import download as dl
from tamvt.hub.download import DownloadError, confirm_url, download
from tamvt.hub.registry import MODELS, checkpoint_path, download_path, fetch, resolve_checkpoint
from tamvt.official import convert_official_state_dict

UUID = "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"


class Drive:
    """A loopback server: ``/uc?id=X`` answers Drive's virus-scan page, whose GET form leads to
    ``/download?id=X&export=download&confirm=t&uuid=...`` (the file); ``/files/X`` is the file
    directly; ``/page`` is an HTML page without a form. Knobs: ``drop_at`` (the next body response
    stops after that many bytes of the file and closes), ``ignore_range``, ``lie`` (announce that
    many bytes more than the file has)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.drop_at: int | None = None
        self.ignore_range = False
        self.lie = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests.append((self.path, self.headers.get("Range")))
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/uc":
                    self._html(owner.confirm_page(query["id"]))
                elif url.path == "/page":
                    self._html("<html><body>Too many users have viewed or downloaded this file recently.</body></html>")
                elif url.path == "/download" and query.get("confirm") == "t" and query.get("uuid") == UUID:
                    self._file(owner.files[query["id"]])
                elif url.path.startswith("/files/") and url.path[7:] in owner.files:
                    self._file(owner.files[url.path[7:]])
                else:
                    self.send_error(404)

            def _html(self, text: str) -> None:  # honours Range, as a static server would
                body = text.encode()
                start = int((self.headers.get("Range") or "bytes=0-").removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_error(416)
                    return
                if start:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                    body = body[start:]
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _file(self, data: bytes) -> None:
                total = len(data) + owner.lie
                start = 0
                rng = self.headers.get("Range")
                if rng and not owner.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= total:
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(total - start))
                self.send_header("ETag", '"v1"')
                self.end_headers()
                end = len(data)
                if owner.drop_at is not None and start < owner.drop_at:
                    end, owner.drop_at = owner.drop_at, None
                # short of Content-Length: the client sees a dropped connection; it may give up first (wrong size)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data[start:end])
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def confirm_page(self, file_id: str) -> str:  # the shape of Drive's 2024 page
        return (
            f"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>"
            f"<p>Google Drive can't scan this file for viruses.</p>"
            f'<form id="download-form" action="{self.base}/download" method="get">'
            f'<input type="submit" id="uc-download-link" value="Download anyway"/>'
            f'<input type="hidden" name="id" value="{file_id}"><input type="hidden" name="export" value="download">'
            f'<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{UUID}">'
            f"</form></body></html>"
        )

    def body_requests(self) -> list[tuple[str, str | None]]:
        return [r for r in self.requests if not r[0].startswith("/uc")]


@pytest.fixture()
def serve():
    servers: list[Drive] = []

    def start(files: dict[str, bytes]) -> Drive:
        server = Drive(files)
        server.thread.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch):
    monkeypatch.setattr(dl, "RETRY_DELAY_S", 0.0)


@pytest.fixture(scope="module")
def authors_pth(tmp_path_factory, official_vectors) -> tuple[bytes, dict[str, torch.Tensor]]:
    """Bytes of an authors'-style ``.pth`` (``model_ema`` = the public fixture weights, float16)."""
    weights = {k: v for k, v in official_vectors.items() if not k.startswith(("A.", "B.", "C.", "D."))}
    path = tmp_path_factory.mktemp("pth") / "tamvt_vost.pth"
    torch.save({"model_ema": weights, "epoch": 149, "optimizer": {"state": {}}}, path)
    return path.read_bytes(), weights


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TAMVT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/uc?export=download&id=x"


# ---- the whole path: tamvt weights fetch official-vost ----------------------------------------------------


def test_fetch_official_vost_through_confirm_page_and_dropped_connection(
    serve, cache, authors_pth, monkeypatch, capsys
):
    data, weights = authors_pth
    server = serve({"vost": data})
    server.drop_at = len(data) // 3
    monkeypatch.setenv("TAMVT_WEIGHTS_URL_OFFICIAL_VOST", f"{server.base}/uc?export=download&id=vost")
    assert main(["weights", "fetch", "official-vost", "--quiet"]) == 0
    entry = MODELS["official-vost"]
    ckpt, src = checkpoint_path(entry), download_path(entry)
    assert capsys.readouterr().out.strip() == f"official-vost: {ckpt}"
    # Drive's page was followed, the drop resumed from where it stopped
    assert server.requests[0][0].startswith("/uc?")
    assert [r[1] for r in server.body_requests()] == [None, f"bytes={len(data) // 3}-"]
    assert src.read_bytes() == data and sorted(p.name for p in src.parent.iterdir()) == [
        ".lock",
        "official-vost.safetensors",
        "official-vost.safetensors.json",
        "tamvt_vost.pth",
        "tamvt_vost.pth.json",
    ]
    record = json.loads(Path(f"{src}.json").read_text())
    assert record["size"] == len(data) and record["sha256"] == hashlib.sha256(data).hexdigest()
    assert record["url"].endswith("/uc?export=download&id=vost")
    model, cfg = load_checkpoint(ckpt)
    assert cfg.model.backbone == "resnet50" and cfg.model.bank_size == 9
    got = model.state_dict()
    for name, value in convert_official_state_dict(weights).items():
        assert torch.equal(got[name], value.float().reshape(got[name].shape)), name

    # a second call, --checkpoint NAME and init_from=NAME: no network I/O
    server.requests.clear()
    assert main(["weights", "fetch", "official-vost", "--quiet"]) == 0
    assert resolve_checkpoint("official-vost") == ckpt
    from tamvt.train.trainer import _load_init_weights

    _load_init_weights(model, "official-vost")
    assert server.requests == []
    capsys.readouterr()
    assert main(["weights", "path", "official-vost"]) == 0 and capsys.readouterr().out.strip() == str(src)
    assert main(["weights", "path", "official-vost", "--converted"]) == 0
    assert capsys.readouterr().out.strip() == str(ckpt)
    assert main(["weights", "list"]) == 0
    listing = capsys.readouterr().out
    assert "official-vost" in listing and "ready" in listing and str(cache) in listing

    # a cached file that changed: the size on every use, the sha256 on fetch
    raw = bytearray(ckpt.read_bytes())
    raw[-1] ^= 1
    ckpt.write_bytes(bytes(raw))
    assert resolve_checkpoint("official-vost") == ckpt
    assert main(["weights", "fetch", "official-vost", "--quiet"]) == 2
    assert "sha256 differs" in capsys.readouterr().err
    ckpt.write_bytes(bytes(raw) + b"x")
    with pytest.raises(InputError, match="bytes"):
        resolve_checkpoint("official-vost")


def test_a_file_put_in_the_cache_by_hand_is_recorded_and_converted(cache, authors_pth, monkeypatch):
    data, _ = authors_pth
    monkeypatch.setenv("TAMVT_WEIGHTS_URL_OFFICIAL_STATIC", _closed_port_url())  # would fail if used
    src = download_path(MODELS["official-static"])
    src.parent.mkdir(parents=True)
    src.write_bytes(data)
    ckpt = fetch("official-static", progress=False)
    assert ckpt == checkpoint_path(MODELS["official-static"]) and load_checkpoint(ckpt)[1].model.backbone == "resnet50"
    record = json.loads(Path(f"{src}.json").read_text())
    assert record["url"] is None and record["sha256"] == hashlib.sha256(data).hexdigest()


def test_offline_fetch_is_one_line_error_with_the_url_and_where_to_put_the_file(cache, monkeypatch, capsys):
    url = _closed_port_url()
    monkeypatch.setenv("TAMVT_WEIGHTS_URL_OFFICIAL_VOST", url)
    assert main(["weights", "fetch", "official-vost", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    src = download_path(MODELS["official-vost"])
    assert url in err and str(src) in err and "tamvt weights path official-vost" in err
    assert "drive.google.com/file/d/1Cw5v6DvwqtPJD_37STRuJo5cv52Tk3xb" in err
    assert not src.exists() and not checkpoint_path(MODELS["official-vost"]).exists()


# ---- the downloader -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blob() -> bytes:
    return os.urandom(3 * (1 << 20) + 12345)  # a few chunks


def test_interrupted_download_resumes_on_the_next_call(serve, tmp_path, blob, monkeypatch):
    server = serve({"b": blob})
    server.drop_at = 1_500_000
    dest = tmp_path / "b.bin"
    url = f"{server.base}/uc?export=download&id=b"
    monkeypatch.setattr(dl, "MAX_ATTEMPTS", 1)  # the first call gives up at the drop
    with pytest.raises(DownloadError, match="connection closed after 1500000 of"):
        download(url, dest, progress=False)
    assert not dest.exists() and (tmp_path / "b.bin.part").stat().st_size == 1_500_000
    server.requests.clear()
    monkeypatch.setattr(dl, "MAX_ATTEMPTS", 3)
    got = download(url, dest, progress=False)
    # the ranged request for the page is refused (416), the page asked for plainly, the file resumed
    assert [(path.partition("?")[0], rng) for path, rng in server.requests] == [
        ("/uc", "bytes=1500000-"),
        ("/uc", None),
        ("/download", "bytes=1500000-"),
    ]
    assert dest.read_bytes() == blob and got.sha256 == hashlib.sha256(blob).hexdigest() and got.size == len(blob)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin"]


def test_a_silent_server_times_out(tmp_path):
    with socket.socket() as s:  # accepts connections (the kernel does), never answers
        s.bind(("127.0.0.1", 0))
        s.listen()
        url = f"http://127.0.0.1:{s.getsockname()[1]}/x"
        with pytest.raises(DownloadError, match=f"{url}: no answer within 0.3 s"):
            download(url, tmp_path / "x", timeout=0.3, progress=False)


def test_a_server_that_ignores_range_restarts_the_file(serve, tmp_path, blob):
    server = serve({"b": blob})
    server.drop_at = 1_000_000
    server.ignore_range = True
    dest = tmp_path / "b.bin"
    download(f"{server.base}/files/b", dest, progress=False)
    assert [r[1] for r in server.body_requests()] == [None, "bytes=1000000-"]  # answered 200: written from 0
    assert dest.read_bytes() == blob


def test_wrong_size_never_passes_for_complete(serve, tmp_path, blob):
    server = serve({"b": blob})
    server.lie = 100  # announces 100 bytes it never sends
    dest = tmp_path / "b.bin"
    with pytest.raises(DownloadError, match=f"connection closed after {len(blob)} of {len(blob) + 100} bytes"):
        download(f"{server.base}/files/b", dest, progress=False)
    assert not dest.exists()
    server.lie = 0
    with pytest.raises(DownloadError, match=f"announces {len(blob)} bytes, expected 7"):
        download(f"{server.base}/files/b", tmp_path / "c.bin", expected_size=7, progress=False)
    with pytest.raises(DownloadError, match="sha256"):
        download(f"{server.base}/files/b", tmp_path / "d.bin", expected_sha256="0" * 64, progress=False)
    assert not (tmp_path / "c.bin").exists() and not (tmp_path / "d.bin").exists()


def test_pages_and_http_errors_name_the_url(serve, tmp_path):
    server = serve({})
    with pytest.raises(DownloadError, match=f"{server.base}/page: the server answered with a web page"):
        download(f"{server.base}/page", tmp_path / "x", progress=False)
    with pytest.raises(DownloadError, match=f"{server.base}/files/nope: HTTP 404"):
        download(f"{server.base}/files/nope", tmp_path / "x", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_confirm_url_reads_both_drive_page_styles():
    new = (
        '<form id="download-form" action="https://drive.usercontent.google.com/download?old=1" method="get">'
        '<input type="submit" value="Download anyway"><input type="hidden" name="id" value="ID">'
        '<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="U"></form>'
    )
    assert (
        confirm_url(new.encode(), "https://drive.google.com/uc?export=download&id=ID")
        == "https://drive.usercontent.google.com/download?id=ID&confirm=t&uuid=U"
    )
    old = '<a id="uc-download-link" href="/uc?export=download&amp;confirm=AbC1&amp;id=ID">Download anyway</a>'
    assert (
        confirm_url(old.encode(), "https://drive.google.com/uc?export=download&id=ID")
        == "https://drive.google.com/uc?export=download&confirm=AbC1&id=ID"
    )
    assert (
        confirm_url(
            b"<html><form method='post' action='/x'><input type=hidden name=a value=b></form></html>", "https://x/"
        )
        is None
    )


# ---- names vs paths ---------------------------------------------------------------------------------------


def test_resolve_checkpoint_names_and_paths(tmp_path, cache, capsys):
    assert resolve_checkpoint(None) == shipped_model_path() == resolve_checkpoint("mini-synthetic")
    own = tmp_path / "mine.safetensors"
    own.write_bytes(b"")
    assert resolve_checkpoint(str(own)) == own
    assert resolve_checkpoint("runs/new/last.pt") == Path("runs/new/last.pt")  # the loader reports it
    with pytest.raises(InputError, match="not a model name .*official-vost"):
        resolve_checkpoint("official-vots")
    with pytest.raises(TamvtError, match="unknown model 'nope'"):
        fetch("nope")
    assert main(["weights", "path", "mini-synthetic"]) == 0
    assert capsys.readouterr().out.strip() == str(shipped_model_path())
    assert main(["weights", "fetch", "mini-synthetic", "official-vots"]) == 2
    assert "unknown model 'official-vots'" in capsys.readouterr().err
    assert not cache.exists()  # nothing written for a shipped model or a typo
