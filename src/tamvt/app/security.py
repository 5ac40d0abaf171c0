"""Who may use an app server: the checks every request passes before any route runs, as Jupyter server
does for a local server (a web tool on 127.0.0.1 is reachable by every page the user's browser opens, and
by every user of the machine).

- **Host**: the ``Host`` header must name this server: ``127.0.0.1``, ``localhost``, ``[::1]``, ``--host``
  or an ``--allow-host`` (any port: an ssh tunnel may forward another one); else 403. A page of another
  site whose name was rebound to 127.0.0.1 (DNS rebinding) sends its own name, and is refused.
- **Token**: every request but ``/static/`` carries the server's token: as ``?token=`` (a page load with it
  sets an HttpOnly, SameSite=Strict cookie and is redirected to the same URL without it, so that it does
  not stay in the address bar), as that cookie, or as an ``Authorization: token ...`` header; else 401 (a
  small HTML page for a page load, JSON for ``/api/``). ``/static/`` is served without it: the package's own
  scripts and style, the same in every install, hold no data, and the 401 page may use them.
- **Origin**: a state-changing request (POST, PUT, PATCH, DELETE) with an ``Origin`` header must come from
  this server's own origin (``http(s)://`` + its ``Host``); else 403. Without an ``Origin`` (browsers send
  one on every such request; scripts and curl do not) it must carry the token itself, in the header or the
  query: the cookie alone, which a browser adds by itself, is not enough. Without a token (``--no-token``,
  loopback only) a request without an ``Origin`` is accepted.
- **JSON**: a JSON body comes with ``Content-Type: application/json`` (:func:`require_json`, where a route
  reads one), else 415: a cross-site form or ``text/plain`` fetch cannot send that type without asking
  first (a CORS preflight, which this server never grants).
"""

from __future__ import annotations

import html
import ipaddress
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tamvt.app.errors import AppError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_PREFIX = "/static/"


def split_host(value: str) -> tuple[str, str | None]:
    """``name[:port]`` or ``[v6 address][:port]`` -> ``(name, port)``, the name lower case without brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        rest = value[end + 1 :]
        return value[1:end], rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        name, port = value.split(":")
        return name, port
    return value, None  # a name, or a bare IPv6 address


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this machine only."""
    name = split_host(host)[0] if host.startswith("[") else host.strip().lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def require_json(request: Request) -> None:
    """Refuse (415) a body to be read as JSON that does not say ``Content-Type: application/json``."""
    given = request.headers.get("content-type", "")
    if given.split(";")[0].strip().lower() != "application/json":
        raise AppError(415, f"a JSON body needs Content-Type: application/json (got {given[:60] or 'none'!r})")


class Guard:
    """ASGI middleware: the Host, token and Origin checks of the module docstring, on every HTTP request.

    Args:
        app: the application it guards.
        token: the server's token; None: no token is asked for (a loopback server started with ``--no-token``).
        hosts: the names a ``Host`` header may carry besides the loopback ones (``--host``, ``--allow-host``).
    """

    def __init__(self, app: ASGIApp, token: str | None, hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.token = token
        self.hosts = frozenset(split_host(h)[0] for h in (*LOOPBACK_HOSTS, *hosts) if h)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # lifespan events pass; the app has no websocket route
            refusal = self.check(Request(scope))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def check(self, request: Request) -> Response | None:
        """None when ``request`` may go on; else the response that refuses it (or the token page load's redirect)."""
        host = request.headers.get("host", "")
        name, port = split_host(host)
        path = request.url.path
        if name not in self.hosts:
            return _refuse(
                path,
                403,
                f"this server does not answer to the name {host[:80]!r}: open it as 127.0.0.1 or localhost, "
                "or start it with --allow-host NAME",
            )
        if path.startswith(OPEN_PREFIX):
            return None
        cookie = f"tamvt-token-{port}" if port else "tamvt-token"
        query = request.query_params.get("token")
        header = _header_token(request)
        explicit = self.token is None or self._is_token(header) or self._is_token(query)
        if not (explicit or self._is_token(request.cookies.get(cookie))):
            given = query is not None or header is not None or cookie in request.cookies
            return _unauthorized(path, wrong=given)
        if request.method in STATE_CHANGING:
            origin = request.headers.get("origin")
            if origin is None and not explicit:
                return _refuse(
                    path,
                    403,
                    "a request that changes something needs an Origin header (browsers send one) "
                    "or the token itself (an Authorization: token ... header, or ?token=)",
                )
            if origin is not None and not _same_origin(origin, host):
                return _refuse(
                    path,
                    403,
                    f"requests from {origin[:80]!r} are refused: only this server's own page may change things",
                )
        page_load = request.method in ("GET", "HEAD") and not path.startswith("/api/")
        if page_load and self.token is not None and self._is_token(query):  # the token moves from the URL to a cookie
            url = request.url.remove_query_params("token")
            response = RedirectResponse(url.path + (f"?{url.query}" if url.query else ""), status_code=303)
            response.set_cookie(cookie, self.token, httponly=True, samesite="strict", path="/")
            return response
        return None

    def _is_token(self, given: str | None) -> bool:
        if self.token is None or not given:
            return False
        return secrets.compare_digest(given.encode(), self.token.encode())


def _header_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() in ("token", "bearer") else None


def _same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` (``scheme://name[:port]``) is the origin of a page served under ``Host: host``."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
        return False
    default = "443" if parts.scheme == "https" else "80"
    (a, a_port), (b, b_port) = split_host(parts.netloc), split_host(host)
    return a == b and (a_port or default) == (b_port or default)


def _refuse(path: str, status: int, message: str) -> Response:
    """``{"error": message}`` for the API (the page shows it), a small HTML page for a page load."""
    if path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    body = f"<!doctype html><meta charset='utf-8'><title>tamvt app</title><p>{html.escape(message)}</p>"
    return Response(body, status_code=status, media_type="text/html")


def _unauthorized(path: str, wrong: bool) -> Response:
    why = "that token is not this server's" if wrong else "this server needs its token"
    headers = {"WWW-Authenticate": "token", "Cache-Control": "no-store"}
    if path.startswith("/api/"):
        message = f"{why}: open the URL that `tamvt app` printed when it started (it ends in ?token=...)"
        return JSONResponse({"error": message}, status_code=401, headers=headers)
    body = (
        "<!doctype html><meta charset='utf-8'><title>tamvt app: token needed</title>"
        f"<h1>tamvt app: {why}</h1>"
        "<p>Open the URL that <code>tamvt app</code> printed when it started "
        "(<code>http://&hellip;/?token=&hellip;</code>), or paste its token here:</p>"
        "<form method='get' action='/'><input name='token' size='48' autocomplete='off' autofocus> "
        "<button>Open</button></form>"
    )
    return Response(body, status_code=401, media_type="text/html", headers=headers)
