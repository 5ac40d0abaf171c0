"""`tamvt app` lets no other site or user in (app/security.py): one HTTP test per refusal (no token or a
wrong one: 401; a forged Host or a foreign Origin: 403; a JSON body sent as text/plain: 415; --no-token
off loopback: a one-line error) and the ways in (the printed URL's token becomes a cookie; a header)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import pytest

if not os.environ.get("CI"):  # in CI the app extra is installed: a missing one must fail, not skip
    pytest.importorskip("fastapi")
with warnings.catch_warnings():  # starlette's notice about httpx versions
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from helpers.app import app_clients

from tamvt.app.security import is_loopback, split_host
from tamvt.app.settings import AppSettings
from tamvt.checkpoint import shipped_model_path

TOKEN = "s3cret-token_for-tests"
BASE = "http://127.0.0.1:8000"
SELF = {"Origin": BASE}  # what the page's own fetches send
BAD_SOURCE = {"source": "ftp"}  # past the guard, the route answers 400: enough to tell "let in"


@pytest.fixture()
def make_client(tmp_path):
    with app_clients(None, lambda n: tmp_path / f"w{n}", token_header=False, follow_redirects=False) as make:

        def with_token(**overrides) -> TestClient:
            overrides.setdefault("token", TOKEN)
            return make(**overrides)

        yield with_token


def _error(r, status: int, *words: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    text = r.json()["error"] if r.headers["content-type"].startswith("application/json") else r.text
    for w in words:
        assert w in text, text
    return text


def _let_in(r) -> None:
    """The request passed the guard: the route itself answered (a 400 for BAD_SOURCE)."""
    assert r.status_code in (200, 400), (r.status_code, r.text)
    if r.status_code == 400:
        assert "'source' must be" in r.json()["error"]


# ---- the token -------------------------------------------------------------------------------------------


def test_no_token_is_401_for_the_page_and_the_api(make_client):
    client = make_client()
    r = client.get("/")
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")
    assert "printed" in r.text and "<form" in r.text and TOKEN not in r.text
    _error(client.get("/api/sources"), 401, "needs its token", "?token=")
    _error(client.post("/api/sessions", json=BAD_SOURCE, headers=SELF), 401)
    _error(client.get("/no/such/page"), 401)  # nothing is told about what exists


def test_a_wrong_token_is_401_wherever_it_is(make_client):
    client = make_client()
    wrong = TOKEN[:-1] + "X"
    _error(client.get("/", params={"token": wrong}), 401, "not this server")
    _error(client.get("/api/sources", params={"token": wrong}), 401, "not this server")
    _error(client.get("/api/sources", headers={"Authorization": f"token {wrong}"}), 401, "not this server")
    _error(client.get("/api/sources", headers={"Authorization": "token"}), 401)
    _error(client.get("/api/sources", headers={"Authorization": "token évidemment".encode()}), 401)  # no crash
    _error(client.get("/api/sources", params={"token": "évidemment"}), 401)
    client.cookies.set("tamvt-token-8000", wrong)
    _error(client.get("/api/sources"), 401, "not this server")


def test_the_urls_token_becomes_a_cookie_and_leaves_the_url(make_client):
    client = make_client()
    r = client.get("/", params={"token": TOKEN})
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"tamvt-token-8000={TOKEN};"), cookie
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/" in cookie
    assert client.get("/?x=1&token=" + TOKEN).headers["location"] == "/?x=1"  # other parameters stay
    # the browser now sends the cookie: the page, its API calls (with their Origin) and downloads work
    page = client.get("/")
    assert page.status_code == 200 and '<script type="module"' in page.text
    assert client.get("/api/sources").status_code == 200
    _let_in(client.post("/api/sessions", json=BAD_SOURCE, headers=SELF))
    # the cookie is for this server's port only: another server on the same machine does not read it
    other = client.get("/api/sources", headers={"Host": "127.0.0.1:8001"})
    assert other.status_code == 401


def test_a_header_token_or_a_query_token_also_opens_the_api(make_client):
    client = make_client()
    for scheme in ("token", "Bearer"):
        assert client.get("/api/sources", headers={"Authorization": f"{scheme} {TOKEN}"}).status_code == 200
    assert client.get("/api/sources", params={"token": TOKEN}).status_code == 200  # no cookie, no redirect
    assert "set-cookie" not in client.get("/api/sources", params={"token": TOKEN}).headers
    # a script's POST without an Origin: the token in its header proves it is not a browser's ambient cookie
    _let_in(client.post("/api/sessions", json=BAD_SOURCE, headers={"Authorization": f"token {TOKEN}"}))


def test_static_files_need_no_token_but_a_right_host(make_client):
    client = make_client()
    r = client.get("/static/app.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    _error(client.get("/static/app.js", headers={"Host": "evil.example:8000"}), 403, "does not answer")


# ---- Host ------------------------------------------------------------------------------------------------


def test_a_forged_host_is_403_even_with_the_token(make_client):
    client = make_client(allowed_hosts=("lab-box.example",))
    auth = {"Authorization": f"token {TOKEN}"}
    for host in ("evil.example:8000", "evil.example", "127.0.0.1.evil.example:8000", "", "[::1"):
        _error(client.get("/api/sources", headers={**auth, "Host": host}), 403, "--allow-host")
    r = client.get("/", headers={**auth, "Host": "rebound.example:8000"})
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    # the loopback names, any port (an ssh tunnel may forward another one), and --host / --allow-host
    for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000", "127.0.0.1:9999", "lab-box.example"):
        assert client.get("/api/sources", headers={**auth, "Host": host}).status_code == 200, host


# ---- Origin ----------------------------------------------------------------------------------------------


def test_a_cross_origin_state_change_is_403(make_client):
    client = make_client()
    client.get("/", params={"token": TOKEN})  # the cookie, as a browser that opened the printed URL has it
    for origin in ("http://evil.example", "http://127.0.0.1:8001", "https://127.0.0.1:8001", "null", "file://"):
        _error(client.post("/api/sessions", json=BAD_SOURCE, headers={"Origin": origin}), 403, "refused")
        _error(client.delete("/api/sessions/0123456789abcdef", headers={"Origin": origin}), 403, "refused")
        _error(client.put("/api/sessions/0123456789abcdef/masks/0", headers={"Origin": origin}), 403, "refused")
    # the cookie alone, without an Origin, does not change anything either
    _error(client.post("/api/sessions", json=BAD_SOURCE), 403, "Origin")
    # the token in a header does not excuse a foreign Origin
    auth = {"Authorization": f"token {TOKEN}", "Origin": "http://evil.example"}
    _error(client.post("/api/sessions", json=BAD_SOURCE, headers=auth), 403)
    # the page's own origin, as the browser writes it (a default port may be left out)
    _let_in(client.post("/api/sessions", json=BAD_SOURCE, headers=SELF))
    port80 = {"Host": "localhost", "Origin": "http://localhost", "Authorization": f"token {TOKEN}"}
    _let_in(client.post("/api/sessions", json=BAD_SOURCE, headers=port80))
    assert client.get("/api/sources", headers={"Origin": "http://evil.example"}).status_code == 200  # reads: CORS


def test_a_json_body_sent_as_text_plain_is_415(make_client):
    client = make_client()
    client.headers["Authorization"] = f"token {TOKEN}"
    body = b'{"source": "demo"}'
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": kind} if kind else {}
        _error(client.post("/api/sessions", content=body, headers=headers), 415, "application/json")
    _let_in(client.post("/api/sessions", content=b'{"source": "ftp"}', headers={"Content-Type": "application/json"}))
    ok = {"Content-Type": "Application/JSON; charset=utf-8"}
    _let_in(client.post("/api/sessions", content=b'{"source": "ftp"}', headers=ok))


def test_without_a_token_host_and_origin_still_hold(make_client):
    client = make_client(token=None)
    assert client.get("/").status_code == 200 and client.get("/api/sources").status_code == 200
    _let_in(client.post("/api/sessions", json=BAD_SOURCE))
    _error(client.post("/api/sessions", json=BAD_SOURCE, headers={"Origin": "http://evil.example"}), 403)
    _error(client.get("/api/sources", headers={"Host": "evil.example"}), 403)


def test_hosts_and_loopback():
    assert split_host("[::1]:8000") == ("::1", "8000") and split_host("LocalHost:80") == ("localhost", "80")
    assert split_host("::1") == ("::1", None) and split_host("example.org") == ("example.org", None)
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.2", "example.org", ""))
    assert (
        AppSettings(checkpoint=shipped_model_path(), workdir=shipped_model_path()).token
        != AppSettings(checkpoint=shipped_model_path(), workdir=shipped_model_path()).token
    )  # random at each start
    assert TOKEN not in repr(AppSettings(checkpoint=shipped_model_path(), workdir=shipped_model_path(), token=TOKEN))


# ---- the command line ------------------------------------------------------------------------------------

TAMVT = [sys.executable, "-m", "tamvt.cli", "app"]


def test_no_token_off_loopback_is_a_one_line_error():
    for host in ("0.0.0.0", "192.168.1.2"):
        r = subprocess.run([*TAMVT, "--no-token", "--host", host], check=False, capture_output=True, text=True)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "--no-token needs a loopback --host" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*TAMVT, "--token", " "], check=False, capture_output=True, text=True)
    assert r.returncode == 2 and "--token must not be empty" in r.stderr


def test_the_printed_url_carries_the_token_over_real_http(tmp_path):
    import httpx

    options = ["--port", "0", "--token", "a b/c", "--no-demo", "--workdir", str(tmp_path / "work")]
    proc = subprocess.Popen([*TAMVT, *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            m = re.search(rb"serving (http://\S+)", line)
            if m:
                url = m.group(1).decode()
                break
        else:
            pytest.fail("the server printed no URL")
        assert url.endswith("/?token=a%20b%2Fc"), url  # the token, quoted
        base = url.split("?")[0].rstrip("/")
        with httpx.Client(timeout=30) as browser:
            r = browser.get(url, follow_redirects=True)
            assert r.status_code == 200 and '<script type="module"' in r.text and str(r.url) == base + "/"
            assert browser.get(base + "/api/sources").status_code == 200  # the cookie
        assert httpx.get(base + "/api/sources").status_code == 401
        assert httpx.get(base + "/api/sources", headers={"Authorization": "token a b/c"}).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
