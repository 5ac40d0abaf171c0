"""`tamvt app` at the HTTP level: the security checks (sizes, content types, names, paths, masks), the
bounds (sessions, idle eviction, one model, one decode per video) and a propagate / correct / export
round trip. The browser test (test_app_browser.py) drives the page itself."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image

if not os.environ.get("CI"):  # in CI the app extra is installed: a missing one must fail, not skip
    pytest.importorskip("fastapi")
from helpers.app import app_clients

from tamvt.app import media
from tamvt.app.engine import Engine
from tamvt.checkpoint import shipped_model_path
from tamvt.data.palette import DAVIS_PALETTE
from tamvt.inference import Predictor

H, W = 240, 320  # the demo video


@pytest.fixture(scope="module")
def model_loads():
    """A spy on the model loads of this module's servers (the engine must load its model once)."""
    with mock.patch.object(Predictor, "from_checkpoint", wraps=Predictor.from_checkpoint) as spy:
        yield spy


@pytest.fixture(scope="module")
def engine(model_loads):
    return Engine(shipped_model_path())  # one model for every server of this module


@pytest.fixture()
def make_client(tmp_path, engine):
    with app_clients(engine, lambda n: tmp_path / f"work{n}") as make:
        yield make


def _error(r, status: int, *words: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    text = r.json()["error"]
    assert "Traceback" not in text
    for w in words:
        assert w in text, text
    return text


def _demo(client) -> dict:
    r = client.post("/api/sessions", json={"source": "demo"})
    assert r.status_code == 200, r.text
    return r.json()


def _png(mask: np.ndarray, mode: str = "P") -> bytes:
    img = Image.fromarray(mask)
    if mode == "P":
        img = img.convert("P")
        img.putpalette(DAVIS_PALETTE)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _two_boxes() -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[60:120, 40:110] = 1
    mask[140:200, 180:260] = 2
    return mask


def _wait(client, sid: str, job: int) -> dict:
    with client.stream("GET", f"/api/sessions/{sid}/events?job={job}") as r:
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    assert events[-1]["type"] == "end"
    return events[-1]


# ---- the page ------------------------------------------------------------------------------------------


def test_the_page_is_one_module_script_served_as_javascript(make_client):
    client = make_client()
    page = client.get("/").text
    assert page.count("<script") == 1 and '<script type="module" src="/static/app.js"></script>' in page
    for name in ("app.js", "edit.js", "paint.js", "view.js"):  # a module script of any other type is not run
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript"), r.headers


# ---- uploads ----------------------------------------------------------------------------------------


def test_oversized_upload_is_413(make_client):
    client = make_client(max_upload_bytes=1000)
    body = b"\x00\x00\x00\x18ftypmp42" + b"\0" * 5000
    _error(client.post("/api/sessions/upload?name=big.mp4", content=body), 413, "limit", "MiB")
    # without a Content-Length (chunked): refused while streaming
    _error(client.post("/api/sessions/upload?name=big.mp4", content=iter([body[:800], body[800:]])), 413, "limit")
    assert not any((client.app.state.ctx.settings.workdir / "uploads").iterdir())  # nothing left behind


def test_text_file_named_mp4_is_refused_by_content(make_client):
    client = make_client()
    _error(
        client.post("/api/sessions/upload?name=clip.mp4", content=b"hello, I am a text file\n" * 10), 415, "not a video"
    )
    # the right magic number but no decodable video: 400 with the decoder's reason
    _error(
        client.post("/api/sessions/upload?name=clip.mp4", content=b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100),
        400,
        "cannot read the video",
    )
    _error(client.post("/api/sessions/upload?name=clip.mp4", content=b""), 400, "empty")


def test_a_real_upload_opens(make_client, tmp_path):
    from tamvt.data.video import VideoWriter

    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=10) as w:
        for t in range(6):
            w.write(np.full((64, 96, 3), 40 * t, np.uint8))
    client = make_client()
    r = client.post("/api/sessions/upload?name=my clip (1).mp4", content=path.read_bytes())
    assert r.status_code == 200, r.text
    video = r.json()["video"]
    assert (video["frames"], video["width"], video["height"], video["name"]) == (6, 96, 64, "my clip (1).mp4")
    assert client.get(f"/api/sessions/{r.json()['id']}/frames/5").headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("name", ["../../etc/passwd.mp4", "..", "a/b.mp4", "..\\x.mp4", ".hidden.mp4"])
def test_path_traversal_in_upload_names(make_client, name):
    client = make_client()
    _error(
        client.post("/api/sessions/upload", params={"name": name}, content=b"\x00\x00\x00\x18ftypmp42"),
        400,
        "file name",
    )


def test_server_side_paths_stay_under_root(make_client, tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "secret.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (root / "notes.mp4").write_text("a text file named .mp4")
    os.symlink(tmp_path / "secret.mp4", root / "sub" / "link.mp4")

    client = make_client()  # no --root: uploads only
    _error(client.post("/api/sessions", json={"source": "path", "path": "x.mp4"}), 403, "--root")

    client = make_client(root=root)
    for bad in ("../secret.mp4", "sub/../../secret.mp4", str(tmp_path / "secret.mp4")):
        _error(client.post("/api/sessions", json={"source": "path", "path": bad}), 403, "--root")
    _error(client.post("/api/sessions", json={"source": "path", "path": "sub/link.mp4"}), 403, "outside")
    _error(client.post("/api/sessions", json={"source": "path", "path": "missing.mp4"}), 404, "not found")
    _error(client.post("/api/sessions", json={"source": "path", "path": "notes.mp4"}), 415, "not a video")
    listed = [s.get("path") for s in client.get("/api/sources").json()["sources"]]
    assert "notes.mp4" in listed and "../secret.mp4" not in listed


def test_export_names_cannot_escape(make_client):
    client = make_client()
    sid = _demo(client)["id"]
    for name in ("..%2F..%2Fsettings.py", ".hidden", "a%5Cb"):
        r = client.get(f"/api/sessions/{sid}/exports/{name}")
        assert 400 <= r.status_code < 500 and "error" in r.json()
    _error(client.get("/api/sessions/../../etc/passwd"), 404)


# ---- masks ------------------------------------------------------------------------------------------


def test_bad_masks_are_4xx_with_a_message(make_client):
    client = make_client()
    sid = _demo(client)["id"]
    url = f"/api/sessions/{sid}/masks/0"
    _error(client.put(url, content=np.zeros((100, 100), np.uint8).tobytes()), 400, "320x240", "bytes")
    _error(client.post(url + "/png", content=_png(np.zeros((100, 100), np.uint8))), 400, "100x100", "320x240")
    many = np.zeros((H, W), np.uint8)
    many[:10, :10] = 12
    _error(client.post(url + "/png", content=_png(many)), 400, "12", "1..10")
    _error(client.put(url, content=many.tobytes()), 400, "12")
    rgb = io.BytesIO()
    Image.new("RGB", (W, H)).save(rgb, format="PNG")
    _error(client.post(url + "/png", content=rgb.getvalue()), 400, "RGB")
    _error(client.post(url + "/png", content=b"GIF89a not a png"), 400, "not a PNG")
    _error(client.post(url + "/png", content=b"\x89PNG\r\n\x1a\n broken"), 400, "cannot read")
    _error(client.put(f"/api/sessions/{sid}/masks/48", content=b""), 404, "out of range")
    _error(client.put(f"/api/sessions/{sid}/masks/x", content=b""), 400, "bad request")
    # a good one is accepted and read back as it was sent
    mask = _two_boxes()
    assert client.post(url + "/png", content=_png(mask)).json()["objects"] == [1, 2]
    r = client.get(url)
    assert r.headers["x-mask-source"] == "annotation"
    np.testing.assert_array_equal(np.frombuffer(r.content, np.uint8).reshape(H, W), mask)


def test_bad_requests_are_400_not_500(make_client):
    client = make_client()
    sid = _demo(client)["id"]
    _error(
        client.post("/api/sessions", content=b"{not json", headers={"Content-Type": "application/json"}), 400, "JSON"
    )
    _error(client.post("/api/sessions", json={"source": "ftp"}), 400, "source")
    _error(client.post(f"/api/sessions/{sid}/propagate", json={"frame": 0}), 400, "paint")
    _error(client.post(f"/api/sessions/{sid}/propagate", json={"frame": "0"}), 400, "integer")
    _error(client.post(f"/api/sessions/{sid}/propagate", json={"frame": 0, "direction": "up"}), 400, "direction")
    _error(client.post(f"/api/sessions/{sid}/export", json={"kind": "gif"}), 400, "kind")
    _error(client.get("/api/sessions/0123456789abcdef"), 404, "no session")
    _error(client.get("/no/such/page"), 404)


# ---- bounds -------------------------------------------------------------------------------------------


def test_sessions_are_bounded_evicted_when_idle_and_share_one_model_and_decode(make_client, model_loads, monkeypatch):
    client = make_client(max_sessions=2, idle_seconds=60)
    ctx = client.app.state.ctx
    decodes = mock.Mock(wraps=media.decode_video)
    monkeypatch.setattr(media, "decode_video", decodes)
    a, b = _demo(client)["id"], _demo(client)["id"]
    assert decodes.call_count == 1  # the second session reuses the decoded video
    c = _demo(client)["id"]  # no room: the least recently used (a) goes to disk
    assert ctx.sessions.ids() == {b, c}
    ctx.sessions.get(b).last_used -= 120  # b unused for 2 minutes
    assert ctx.sessions.evict_idle() == [b]
    assert "minutes unused" in client.get(f"/api/sessions/{b}").json()["notice"]  # reopened from disk
    assert decodes.call_count == 1  # c kept the video decoded
    assert "make room" in client.get(f"/api/sessions/{a}").json()["notice"]
    assert model_loads.call_count <= 1


def test_decoded_videos_are_bounded(make_client):
    client = make_client(max_video_bytes=1000)
    _error(client.post("/api/sessions", json={"source": "demo"}), 413, "too large", "--max-video-mb")


# ---- propagation round trip ----------------------------------------------------------------------------


def test_propagate_correct_both_directions_and_export(make_client, tmp_path, model_loads):
    out = tmp_path / "out"
    client = make_client(out=out)
    sid = _demo(client)["id"]
    mask = _two_boxes()
    assert client.put(f"/api/sessions/{sid}/masks/10", content=mask.tobytes()).status_code == 200

    job = client.post(f"/api/sessions/{sid}/propagate", json={"frame": 10, "direction": "both"}).json()
    assert job["total"] == 48  # every frame once: the start frame is not counted twice
    _error(client.post(f"/api/sessions/{sid}/propagate", json={"frame": 10}), 409, "already running")
    end = _wait(client, sid, job["id"])
    assert (end["state"], end["done"]) == ("finished", 48)
    info = client.get(f"/api/sessions/{sid}").json()
    assert info["results"] == list(range(48)) and info["annotated"] == [10] and info["objects"] == [1, 2]

    before = np.frombuffer(client.get(f"/api/sessions/{sid}/masks/31").content, np.uint8).reshape(H, W)
    # a correction at frame 30: object 2 is not visible there, object 1 moved
    fix = np.zeros((H, W), np.uint8)
    fix[20:60, 200:260] = 1
    client.put(f"/api/sessions/{sid}/masks/30", content=fix.tobytes())
    job = client.post(f"/api/sessions/{sid}/propagate", json={"frame": 30, "direction": "forward"}).json()
    assert _wait(client, sid, job["id"])["state"] == "finished"
    got = np.frombuffer(client.get(f"/api/sessions/{sid}/masks/31").content, np.uint8).reshape(H, W)
    # the engine took the correction: object 1 follows its new mask, object 2 shrinks (its memory still
    # holds frame 10, so this box-shaped non-object need not vanish at once)
    assert (got[20:60, 200:260] == 1).mean() > 0.5 and (got == 2).sum() < 0.5 * (before == 2).sum()

    # backward from an unpainted frame after the last painted one: no object reaches frames 47..31 in
    # that direction, so they keep their masks (and the page is told why)
    kept = client.get(f"/api/sessions/{sid}/masks/40").content
    job = client.post(f"/api/sessions/{sid}/propagate", json={"frame": 47, "direction": "backward"}).json()
    end = _wait(client, sid, job["id"])
    assert end["state"] == "finished" and "no painted frame before them" in end["message"]
    assert client.get(f"/api/sessions/{sid}/masks/40").content == kept

    # cancel: the frames done before it keep their results
    job = client.post(f"/api/sessions/{sid}/propagate", json={"frame": 10, "direction": "forward"}).json()
    client.post(f"/api/sessions/{sid}/cancel")
    end = _wait(client, sid, job["id"])
    assert end["state"] in ("cancelled", "finished") and end["done"] <= 38

    r = client.post(f"/api/sessions/{sid}/export", json={"kind": "masks"}).json()
    assert r["saved"] == str(out / "demo-000-masks.zip") and Path(r["saved"]).is_file()
    with zipfile.ZipFile(io.BytesIO(client.get(r["url"]).content)) as z:
        names = sorted(z.namelist())
        assert len(names) == 48 and names[0] == "demo-000/00000.png"
        first = np.array(Image.open(z.open("demo-000/00010.png")))
    np.testing.assert_array_equal(first, mask)
    r = client.post(f"/api/sessions/{sid}/export", json={"kind": "objects"}).json()
    with zipfile.ZipFile(out / r["name"]) as z:
        assert sorted({n.split("/")[0] for n in z.namelist()}) == ["1", "2"]
        one = np.array(Image.open(z.open("1/00010.png")))
    assert set(np.unique(one)) == {0, 255} and ((one == 255) == (mask == 1)).all()
    r = client.post(f"/api/sessions/{sid}/export", json={"kind": "overlay"}).json()
    from tamvt.data.video import probe_video

    assert probe_video(out / r["name"])[:2] == (48, (H, W))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    assert model_loads.call_count == 1


def test_delete_an_object_from_every_frame(make_client):
    client = make_client()
    sid = _demo(client)["id"]
    client.put(f"/api/sessions/{sid}/masks/0", content=_two_boxes().tobytes())
    job = client.post(f"/api/sessions/{sid}/propagate", json={"frame": 0, "direction": "forward"}).json()
    client.post(f"/api/sessions/{sid}/cancel")
    _wait(client, sid, job["id"])
    info = client.delete(f"/api/sessions/{sid}/objects/2").json()
    assert info["objects"] == [1]
    for k in [0, *info["results"]]:
        assert 2 not in np.frombuffer(client.get(f"/api/sessions/{sid}/masks/{k}").content, np.uint8)
