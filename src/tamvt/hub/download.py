"""Resumable HTTP download of one large file, with Google Drive's confirmation page handled.

:func:`download` writes into ``DEST.part`` and renames it onto ``DEST`` only once the byte count
matches what the server announced (and the expected size / sha256, when given), so a partial file
never passes for a complete one. ``DEST.part.json`` remembers the announced size and the server's
validator (ETag / Last-Modified); the next call resumes with an HTTP ``Range`` request (``If-Range``
guards against a file that changed meanwhile) and starts over when the server ignores the range.

Google Drive answers a download link of a large file with an HTML page ("can't scan this file for
viruses") holding a GET form (newer pages: ``drive.usercontent.google.com/download?...&confirm=t&uuid=...``)
or a link with ``confirm=TOKEN`` (older pages, plus a cookie): the form / link is followed. Any
other HTML answer is an error, since it is never the file.

Only ``urllib`` is used (proxies from the usual ``*_proxy`` variables apply).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

from tamvt.atomic import write_text_atomic
from tamvt.errors import TamvtError

CHUNK = 1 << 20
MAX_ATTEMPTS = 5  # requests for the file's bytes in one call (first try + resumes after drops)
MAX_PAGES = 3  # HTML confirmation pages followed
MAX_PAGE_BYTES = 1 << 20
RETRY_DELAY_S = 1.0  # times the attempt number, before resuming after a dropped connection
USER_AGENT = "tamvt (python urllib)"


class DownloadError(TamvtError):
    """The download from ``url`` failed; ``problem`` says why (one line)."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        super().__init__(f"{url}: {problem}")


@dataclass(frozen=True)
class Downloaded:
    """A completed download: where it is, its size in bytes and sha256 (hex)."""

    path: Path
    size: int
    sha256: str


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def download(
    url: str,
    dest: str | Path,
    *,
    timeout: float = 20.0,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> Downloaded:
    """Download ``url`` to ``dest`` (resuming ``dest.part`` when present).

    Args:
        timeout: seconds for connecting and for each read (a stalled server is a failure).
        expected_size / expected_sha256: the file's known size / digest; a mismatch is an error (the
            size is checked against the server's announcement before any byte is read).
        progress: a tqdm bar on stderr.
    Raises:
        DownloadError: naming the URL that failed: unreachable host, HTTP error, a web page instead
            of the file, wrong size or digest, or a connection that kept dropping.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    info_path = dest.with_name(dest.name + ".part.json")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # Drive's older confirm cookie
    current, pages, attempts, problem = url, 0, 0, ""
    plain = False  # the next request without Range: after a 416 or a piece of a web page
    while True:
        info = _read_info(info_path) if part.is_file() else {}
        offset = part.stat().st_size if info else 0
        if attempts >= MAX_ATTEMPTS:
            raise DownloadError(
                current,
                f"{problem} (gave up after {attempts} attempts; {offset} bytes kept in {part} for the next try)",
            )
        attempts += 1
        headers = {"User-Agent": USER_AGENT}
        ranged, plain = bool(offset) and not plain, False
        if ranged:
            headers["Range"] = f"bytes={offset}-"
            if info.get("validator"):
                headers["If-Range"] = info["validator"]
        response = _open(opener, current, headers, timeout)
        if response is None:  # 416: a page before the file, or a partial file that does not fit: ask plainly
            plain, problem = True, "the server refused to resume (HTTP 416)"
            continue
        with response:
            if response.headers.get_content_type() == "text/html":
                if response.status == 206:  # a piece of a page: ask for all of it
                    plain = True
                    continue
                pages += 1
                attempts -= 1
                nxt = confirm_url(response.read(MAX_PAGE_BYTES), response.geturl())
                if nxt is None or pages > MAX_PAGES:
                    raise DownloadError(
                        current,
                        "the server answered with a web page, not the file "
                        "(download quota exceeded, file not shared, or a login "
                        "or proxy page)",
                    )
                current = nxt
                continue
            total, offset = _announced(response, offset if ranged else 0)
            if expected_size is not None and total is not None and total != expected_size:
                raise DownloadError(current, f"the server announces {total} bytes, expected {expected_size}")
            if info.get("total") is not None and total is not None and info["total"] != total and offset:
                part.unlink(missing_ok=True)  # the file changed since the partial download
                problem = "the file changed on the server since the partial download"
                continue
            if not offset:
                validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
                write_text_atomic(info_path, json.dumps({"url": url, "total": total, "validator": validator}))
            try:
                received = _stream(response, part, offset, total, progress, desc)
                problem = (
                    ""
                    if total is None or offset + received == total
                    else f"connection closed after {offset + received} of {total} bytes"
                )
            except (OSError, http.client.HTTPException) as err:  # reset, timeout, broken chunked body
                problem = f"connection lost at {part.stat().st_size} of {total or '?'} bytes ({_reason(err)})"
        if not problem:
            break
        time.sleep(RETRY_DELAY_S * attempts)
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        raise DownloadError(url, f"received {size} bytes, expected {expected_size}")
    digest = sha256_file(part)
    if expected_sha256 is not None and digest != expected_sha256.lower():
        part.unlink()
        info_path.unlink(missing_ok=True)
        raise DownloadError(url, f"sha256 {digest} differs from the expected {expected_sha256}")
    part.replace(dest)
    info_path.unlink(missing_ok=True)
    return Downloaded(dest, size, digest)


def _open(opener: urllib.request.OpenerDirector, url: str, headers: dict[str, str], timeout: float):
    """The response to GET ``url``; ``None`` for HTTP 416; any other failure is a :class:`DownloadError`."""
    try:
        return opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and "Range" in headers:
            return None
        raise DownloadError(url, f"HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, socket.gaierror):  # offline, or no DNS
            raise DownloadError(url, f"cannot resolve the host {urlsplit(url).hostname} ({_reason(reason)})") from None
        if isinstance(reason, TimeoutError):
            raise DownloadError(url, f"no answer within {timeout:g} s") from None
        raise DownloadError(url, _reason(err)) from None


def _announced(response, offset: int) -> tuple[int | None, int]:
    """(total size or None, offset the body starts at) of a 200 / 206 response to a request from ``offset``."""
    if response.status == 206:
        unit, _, spec = (response.headers.get("Content-Range") or "").partition(" ")
        span, _, total = spec.partition("/")
        start = span.partition("-")[0]
        if unit == "bytes" and start.isdigit() and int(start) == offset:
            return (int(total) if total.isdigit() else None), offset
        raise DownloadError(
            response.geturl(),
            f"unusable Content-Range {response.headers.get('Content-Range')!r} for a request from byte {offset}",
        )
    length = response.headers.get("Content-Length")
    return (int(length) if length and length.isdigit() else None), 0  # 200: the whole file again


def _stream(response, part: Path, offset: int, total: int | None, progress: bool, desc: str | None) -> int:
    from tqdm import tqdm

    received = 0
    with (
        open(part, "ab" if offset else "wb") as f,
        tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=desc,
            disable=not progress,
            file=sys.stderr,
            leave=False,
        ) as bar,
    ):
        while block := response.read(CHUNK):
            f.write(block)
            received += len(block)
            bar.update(len(block))
    return received


def _read_info(path: Path) -> dict:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}  # no record of the partial file: it is not resumed (it might be anything)


def _reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None) or err
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return " ".join(str(text).split())


class _ConfirmParser(HTMLParser):
    """GET forms (action, hidden fields) and ``confirm=`` links of a Drive warning page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "get").lower() == "get":
            self.forms.append((a.get("action", ""), {}))
        elif tag == "input" and self.forms and a.get("type", "").lower() == "hidden" and a.get("name"):
            self.forms[-1][1][a["name"]] = a.get("value", "")
        elif tag == "a" and "confirm=" in a.get("href", ""):
            self.links.append(a["href"])


def confirm_url(page: bytes, base: str) -> str | None:
    """The URL a Drive confirmation ``page`` (fetched from ``base``) leads to; ``None`` if it has none."""
    parser = _ConfirmParser()
    parser.feed(page.decode("utf-8", "replace"))
    for action, fields in parser.forms:
        if fields:  # a GET form replaces the action's query with its fields
            return urlsplit(urljoin(base, action))._replace(query=urlencode(fields)).geturl()
    return urljoin(base, parser.links[0]) if parser.links else None
