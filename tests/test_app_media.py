"""`tamvt app` and its media: a cut-off upload is said in the page's info (frames that decode, frames the
header announces), a variable-frame-rate video keeps each frame's time through to the overlay export,
exports never overwrite each other, names are right, decoded frames are dropped when no session uses them,
and Fill stops at the region of similar colour (paint.js, run by node)."""

from __future__ import annotations

import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

if not os.environ.get("CI"):  # in CI the app extra is installed: a missing one must fail, not skip
    pytest.importorskip("fastapi")
from helpers.app import app_clients

from tamvt.app.engine import Engine
from tamvt.checkpoint import shipped_model_path
from tamvt.data.video import inspect_video, iter_video_timed

SLOTS = [0, 1, 4, 5, 9, 15, 16, 22, 29]  # frame times in tenths of a second: 9 frames over 3.0 s


@pytest.fixture(scope="module")
def engine():
    return Engine(shipped_model_path())


@pytest.fixture()
def make_client(tmp_path, engine):
    with app_clients(engine, lambda n: tmp_path / f"work{n}") as make:
        yield make


def write_video(path: Path, slots: list[int], options: dict | None = None) -> Path:
    """An mpeg4 video of 96x64 noise frames shown at ``slots`` (tenths of a second), written with PyAV."""
    import av

    rng = np.random.default_rng(0)
    container = av.open(str(path), "w", options=options or {})
    stream = container.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
    stream.codec_context.time_base = Fraction(1, 10)
    for slot in slots:
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8), format="rgb24")
        frame.pts, frame.time_base = slot, Fraction(1, 10)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    return path


def upload(client, path: Path, name: str) -> dict:
    r = client.post("/api/sessions/upload", params={"name": name}, content=path.read_bytes())
    assert r.status_code == 200, r.text
    return r.json()


def test_a_cut_off_mp4_opens_with_a_warning_saying_the_counts(make_client, tmp_path):
    full = write_video(tmp_path / "full.mp4", list(range(30)), {"movflags": "faststart"})  # the index first
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    n = inspect_video(cut).frames
    assert 0 < n < 30
    info = upload(make_client(), cut, "cut.mp4")
    assert info["video"]["frames"] == n and info["video"]["name"] == "cut.mp4"
    (notice,) = info["video"]["notices"]
    assert (notice["kind"], notice["frames"], notice["header_frames"]) == ("truncated", n, 30)
    assert f"{n} frames decode" in notice["text"] and "announces 30" in notice["text"]
    # a whole file says nothing
    assert upload(make_client(), full, "full.mp4")["video"]["notices"] == []


@pytest.mark.parametrize("ext", ["avi", "mp4"])
def test_variable_frame_rate_keeps_the_times_to_the_overlay_export(make_client, tmp_path, ext):
    src = write_video(tmp_path / f"vfr.{ext}", SLOTS)  # AVI: empty slots between frames, as tree.avi
    client = make_client(out=tmp_path / "out")
    info = upload(client, src, f"vfr.{ext}")
    video = info["video"]
    assert video["frames"] == len(SLOTS) and video["variable_rate"]
    assert video["seconds"] == pytest.approx(3.0, abs=0.01)
    assert [n["kind"] for n in video["notices"]] == ["variable_rate"]  # not called cut off
    r = client.post(f"/api/sessions/{info['id']}/export", json={"kind": "overlay"}).json()
    out = Path(r["saved"])
    times = [t for _, _, t in iter_video_timed(out)]
    assert len(times) == len(SLOTS)
    np.testing.assert_allclose(times, [s / 10 for s in SLOTS], atol=0.002)
    got = inspect_video(out)
    assert got.end == pytest.approx(3.0, abs=0.1)  # as long as the source, within one frame (0.1 s)


def test_exports_never_overwrite_and_both_counts_each_frame_once(make_client, tmp_path):
    out = tmp_path / "out"
    client = make_client(out=out)
    sid = client.post("/api/sessions", json={"source": "demo"}).json()["id"]
    names = [client.post(f"/api/sessions/{sid}/export", json={"kind": "masks"}).json()["name"] for _ in range(3)]
    assert names == ["demo-000-masks.zip", "demo-000-masks-2.zip", "demo-000-masks-3.zip"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names) and all((out / n).stat().st_size for n in names)


def test_the_name_is_right_after_upload_and_reopen(make_client, tmp_path):
    src = write_video(tmp_path / "clip.avi", list(range(6)))
    client = make_client()
    info = upload(client, src, "my clip (2).avi")
    assert info["video"]["name"] == "my clip (2).avi"
    assert client.get(f"/api/sessions/{info['id']}").json()["video"]["name"] == "my clip (2).avi"


def test_decoded_frames_are_dropped_when_no_session_uses_them(make_client, tmp_path):
    src = write_video(tmp_path / "clip.avi", list(range(20)))
    client = make_client()
    cache = client.app.state.ctx.videos
    info = upload(client, src, "clip.avi")
    raw = 20 * 64 * 96 * 3
    assert cache.nbytes >= raw
    jpeg = client.get(f"/api/sessions/{info['id']}/frames/3").content
    client.delete(f"/api/sessions/{info['id']}")
    assert cache.nbytes == 0  # the session went to disk: nothing of its video stays in memory
    again = upload(client, src, "clip.avi")  # decoded again from the kept upload
    assert again["video"]["frames"] == 20 and cache.nbytes >= raw
    assert client.get(f"/api/sessions/{again['id']}/frames/3").content == jpeg


# ---- Fill (paint.js, pure): run by node ----------------------------------------------------------------

FILL_CHECK = r"""
import { fill } from "./paint.mjs";
const w = 10, h = 10, rgb = new Uint8Array(w * h * 4);
for (let i = 0; i < w * h; i++) {  // left half dark grey with noise, right half white; a black line at x = 3
  const x = i % w, v = x === 3 ? 0 : x < 5 ? 60 + (i % 3) * 5 : 250;
  rgb.set([v, v, v, 255], 4 * i);
}
const out = {};
let mask = new Uint8Array(w * h);
out.colour = fill(mask, w, h, 1, 1, 1, rgb, 32, 0.5);          // x 0..2: stops at the line
out.left = [...mask].filter((v, i) => v === 1 && i % w > 2).length;
mask = new Uint8Array(w * h);
out.big = fill(mask, w, h, 8, 8, 1, rgb, 442, 0.5);            // every colour similar: refused, unchanged
out.bigUnchanged = mask.every((v) => v === 0);
mask = new Uint8Array(w * h);
out.half = fill(mask, w, h, 8, 8, 1, rgb, 32, 0.5);             // the white half: 50 pixels, allowed
mask = new Uint8Array(w * h); mask[0] = 2;
out.ids = fill(mask, w, h, 0, 5, 1, null, 32, 1);               // no colours: the region of equal id
console.log(JSON.stringify(out));
"""


def test_fill_stops_at_the_region_of_similar_colour(tmp_path):
    import json

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: paint.js's fill is checked in the browser only")
    static = Path(__file__).resolve().parents[1] / "src" / "tamvt" / "app" / "static"
    shutil.copy(static / "paint.js", tmp_path / "paint.mjs")
    (tmp_path / "check.mjs").write_text(FILL_CHECK)
    done = subprocess.run([node, "check.mjs"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["colour"] == 30 and out["left"] == 0  # 3 columns of 10, nothing past the black line
    assert out["big"] == -100 and out["bigUnchanged"]
    assert out["half"] == 50
    assert out["ids"] == 99
