"""`tamvt app` keeps every session on disk: a restart, an idle eviction, opening another video or the
session limit lose no work; Recent lists the saved sessions; the disk budget removes the oldest untouched
first. HTTP level, in process (as test_app_http.py)."""

from __future__ import annotations

import gc
import json
import os
import time
import weakref

import numpy as np
import pytest

if not os.environ.get("CI"):  # in CI the app extra is installed: a missing one must fail, not skip
    pytest.importorskip("fastapi")
from helpers.app import app_clients

from tamvt.app.engine import Engine
from tamvt.app.store import DiskStore, Source
from tamvt.checkpoint import shipped_model_path

H, W = 240, 320  # the demo video


@pytest.fixture(scope="module")
def engine():
    return Engine(shipped_model_path())  # one model for every server of this module


@pytest.fixture()
def make_client(tmp_path, engine):
    """``make(workdir, **settings)``: a server on ``workdir`` (several may share one, one after another)."""
    with app_clients(engine, lambda n: tmp_path / "work") as make:
        yield make


def _ok(r) -> dict:
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def _demo(client) -> str:
    return _ok(client.post("/api/sessions", json={"source": "demo"}))["id"]


def _box(k: int, obj: int = 1) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[20 + 10 * k : 60 + 10 * k, 30 + 5 * k : 90 + 5 * k] = obj
    return mask


def _mask(client, sid: str, k: int) -> tuple[np.ndarray | None, str]:
    r = client.get(f"/api/sessions/{sid}/masks/{k}")
    assert r.status_code == 200, r.text
    mask = np.frombuffer(r.content, np.uint8).reshape(H, W) if r.content else None
    return mask, r.headers["x-mask-source"]


def _paint(client, sid: str, k: int, mask: np.ndarray) -> None:
    _ok(client.put(f"/api/sessions/{sid}/masks/{k}", content=mask.tobytes()))


def _propagate(client, sid: str, frame: int) -> dict:
    job = _ok(client.post(f"/api/sessions/{sid}/propagate", json={"frame": frame, "direction": "forward"}))
    with client.stream("GET", f"/api/sessions/{sid}/events?job={job['id']}") as r:
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    assert events[-1]["type"] == "end" and events[-1]["state"] == "finished", events[-1]
    return events[-1]


def test_a_session_survives_a_restart_and_recent_lists_it(make_client, tmp_path):
    work = tmp_path / "work"
    client = make_client(work)
    sid = _demo(client)
    mask = _box(0) + _box(4, 2) * (_box(0) == 0)
    _paint(client, sid, 40, mask)
    _propagate(client, sid, 40)  # frames 40..47
    result = _mask(client, sid, 45)[0]
    client.__exit__(None, None, None)  # the server stops

    client = make_client(work)  # a new server on the same folder
    recent = _ok(client.get("/api/recent"))["sessions"]
    assert [r["id"] for r in recent] == [sid]
    assert (recent[0]["frames"], recent[0]["objects"], recent[0]["open"]) == (48, 2, False)
    assert recent[0]["name"] == "demo-000" and time.time() - recent[0]["changed"] < 600
    info = _ok(client.get(f"/api/sessions/{sid}"))
    assert "server restarted" in info["notice"] and "reopened from disk" in info["notice"]
    assert info["annotated"] == [40] and info["results"] == list(range(40, 48)) and info["objects"] == [1, 2]
    assert _ok(client.get(f"/api/sessions/{sid}"))["notice"] == ""  # said once
    got, where = _mask(client, sid, 40)
    assert where == "annotation" and (got == mask).all()
    got, where = _mask(client, sid, 45)
    assert where == "result" and (got == result).all()
    # the engine's memory is rebuilt by the next propagation, from the painted frames
    end = _propagate(client, sid, 40)
    assert end["done"] == 8
    assert (_mask(client, sid, 45)[0] == result).mean() > 0.99


def test_idle_eviction_frees_memory_not_work(make_client):
    client = make_client(idle_seconds=60)
    ctx = client.app.state.ctx
    sid = _demo(client)
    _paint(client, sid, 3, _box(3))
    _paint(client, sid, 44, _box(4))
    _propagate(client, sid, 44)
    session = ctx.sessions.get(sid)
    assert session.job is not None and session.job.thread is not None
    session.job.thread.join(60)  # its thread ends after the last event (it saves the results): a busy CPU shows it
    held = [weakref.ref(x) for x in (session, session.video, session.video.frames, session.engine_video._session)]
    session.last_used -= 120  # unused for 2 minutes
    del session
    assert ctx.sessions.evict_idle() == [sid]
    assert sid not in ctx.sessions and "demo" not in ctx.videos
    gc.collect()
    assert [r() is None for r in held] == [True] * 4  # nothing keeps the engine state or the frames alive
    assert [r["open"] for r in _ok(client.get("/api/recent"))["sessions"]] == [False]
    info = _ok(client.get(f"/api/sessions/{sid}"))
    assert info["notice"] == "this session was put to disk after 1 minutes unused; reopened from disk"
    assert (_mask(client, sid, 3)[0] == _box(3)).all()


def test_opening_another_video_keeps_the_first(make_client, tmp_path):
    from tamvt.data.video import VideoWriter

    client = make_client()
    first = _demo(client)
    _paint(client, first, 0, _box(0))
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=10) as w:
        for t in range(6):
            w.write(np.full((64, 96, 3), 40 * t, np.uint8))
    second = _ok(client.post("/api/sessions/upload?name=clip.mp4", content=path.read_bytes()))["id"]
    mask = np.zeros((64, 96), np.uint8)
    mask[10:30, 20:50] = 1
    _ok(client.put(f"/api/sessions/{second}/masks/2", content=mask.tobytes()))
    recent = _ok(client.get("/api/recent"))["sessions"]
    assert [(r["id"], r["name"], r["frames"], r["objects"]) for r in recent] == [
        (second, "clip.mp4", 6, 1),
        (first, "demo-000", 48, 1),
    ]
    # the page leaving a session puts it to disk; the next use reopens it
    for sid in (first, second):
        _ok(client.delete(f"/api/sessions/{sid}"))
    assert len(client.app.state.ctx.sessions) == 0
    assert "opened another video" in _ok(client.get(f"/api/sessions/{first}"))["notice"]
    assert (_mask(client, first, 0)[0] == _box(0)).all()
    # the upload was kept (the reopened session decodes it again), under its hash
    kept = list((tmp_path / "work" / "uploads").iterdir())
    assert len(kept) == 1 and kept[0].suffix == ".mp4"
    assert _ok(client.get(f"/api/sessions/{second}"))["video"]["frames"] == 6
    r = client.get(f"/api/sessions/{second}/masks/2")
    assert (np.frombuffer(r.content, np.uint8).reshape(64, 96) == mask).all()


def test_twelve_pages_in_a_row_all_work(make_client):
    client = make_client(max_sessions=8)
    ctx = client.app.state.ctx
    ids = []
    for i in range(12):
        sid = _demo(client)
        _paint(client, sid, i, _box(i))
        ids.append(sid)
        assert len(ctx.sessions) <= 8
    assert ctx.sessions.ids() == set(ids[4:])  # the least recently used went to disk
    for i, sid in enumerate(ids):  # each comes back on use, with its mask
        got, where = _mask(client, sid, i)
        assert where == "annotation" and (got == _box(i)).all(), i
        assert len(ctx.sessions) <= 8
    notice = _ok(client.get(f"/api/sessions/{ids[0]}"))["notice"]
    assert notice == "" or "make room" in notice
    # the keep-alive of a page: in memory, or on disk (then its next action reopens it)
    assert _ok(client.post(f"/api/sessions/{ids[0]}/alive")) == {"open": True, "notice": ""}
    r = _ok(client.post(f"/api/sessions/{ids[1]}/alive"))
    assert not r["open"] and "make room" in r["notice"] and "next action reopens it" in r["notice"]
    assert ids[1] in ctx.sessions.pages_open()  # the disk budget keeps it
    assert client.post("/api/sessions/0123456789abcdef/alive").status_code == 404


def test_unknown_sessions_say_so(make_client):
    client = make_client()
    r = client.get("/api/sessions/0123456789abcdef")
    assert r.status_code == 404 and "no session" in r.json()["error"] and "--keep-days" in r.json()["error"]
    r = client.get("/static/recent.js")  # the page's module for Recent, keep-alive and Back
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")


def test_disk_budget_removes_the_oldest_untouched_first(tmp_path):
    store = DiskStore(tmp_path / "sessions", keep_seconds=30 * 86400, max_bytes=10**9)
    now = time.time()
    ages = {"a" * 16: 40, "b" * 16: 20, "c" * 16: 10, "d" * 16: 5}  # days untouched
    for sid, days in ages.items():
        disk = store.create(sid, Source("demo", "", "demo"), 48, (H, W))
        disk.write_mask("annotations", 0, np.random.default_rng(0).integers(0, 3, (H, W), dtype=np.uint8))
        disk.meta["changed"] = disk.meta["opened"] = now - days * 86400
        disk.write_meta(changed=False)
    assert store.prune(keep=set(), now=now) == ["a" * 16]  # past --keep-days
    assert [m["id"] for m in store.saved()] == ["d" * 16, "c" * 16, "b" * 16]
    one = sum(p.stat().st_size for p in (tmp_path / "sessions" / ("d" * 16)).rglob("*") if p.is_file())
    store.max_bytes = int(1.5 * one)  # room for one: the oldest untouched go, except one a page has open
    assert store.prune(keep={"b" * 16}, now=now) == ["c" * 16, "d" * 16]
    assert [m["id"] for m in store.saved()] == ["b" * 16]


def test_a_changed_video_is_not_reopened_as_the_old_one(make_client, tmp_path):
    from tamvt.data.video import VideoWriter

    root = tmp_path / "root"
    root.mkdir()
    path = root / "clip.mp4"
    with VideoWriter(path, fps=10) as w:
        for t in range(4):
            w.write(np.full((64, 96, 3), 50 * t, np.uint8))
    client = make_client(root=root)
    sid = _ok(client.post("/api/sessions", json={"source": "path", "path": "clip.mp4"}))["id"]
    _ok(client.delete(f"/api/sessions/{sid}"))
    path.write_bytes(path.read_bytes() + b"\0")  # the file changed on the server
    r = client.get(f"/api/sessions/{sid}")
    assert r.status_code == 409 and "changed" in r.json()["error"]


def test_one_server_per_work_folder(tmp_path):
    from tamvt.commands.app import workdir_lock
    from tamvt.errors import TamvtError

    with (
        workdir_lock(tmp_path),
        pytest.raises(TamvtError, match="another `tamvt app` uses this folder"),
        workdir_lock(tmp_path),
    ):
        pass
    with workdir_lock(tmp_path):  # free again once the first server stops
        pass
