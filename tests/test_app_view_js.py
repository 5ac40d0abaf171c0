"""The page's view arithmetic (``static/view.js``: fit, clamp, zoom about a point, screen <-> image, the wheel,
the frame-number box, the playback rate), run under node as an ES module; skipped without node."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources

import pytest

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (the page's view.js runs under it)")

SCRIPT = """
import * as V from %(url)s;
const out = {};

// a 4K frame in a 1000 x 600 box: the width decides, the frame is centred vertically
out.fit = V.fitView(3840, 2160, 1000, 600);

// zoom 4x about a screen point: the image point under it stays under it
const v0 = V.fitView(320, 240, 1040, 780);
const p = [400, 300];
const before = V.screenToImage(v0, ...p);
const v1 = V.zoomAt(v0, 4, ...p, 320, 240, 1040, 780);
out.zoom4 = { ratio: v1.scale / v0.scale, before, after: V.screenToImage(v1, ...p) };
out.roundTrip = V.imageToScreen(v1, ...V.screenToImage(v1, 123.25, 456.5));

// the scale stays within [fit, 16] (4K: 1:1 and 16:1 reachable), and never shows beyond the frame's edges
const big = V.fitView(3840, 2160, 1000, 600);
const one = V.zoomAt(big, 1 / big.scale, 500, 300, 3840, 2160, 1000, 600);
const max = V.zoomAt(big, 1e6, 0, 0, 3840, 2160, 1000, 600);
const out1 = V.zoomAt(big, 1e-6, 500, 300, 3840, 2160, 1000, 600);
out.scales = { one: one.scale, max: max.scale, min: out1.scale, fit: big.scale, minView: out1 };
out.maxCorner = max;  // zoomed about the top-left corner: the corner stays
out.smallMax = V.zoomAt(V.fitView(32, 24, 1000, 750), 1e6, 0, 0, 32, 24, 1000, 750).scale;  // 8 x fit

// clamp: a pan past the edge stops at it; a frame smaller than the box is centred
out.clampBig = V.clampView({ scale: 2, x: 50, y: -5000 }, 1000, 500, 800, 600);
out.clampSmall = V.clampView({ scale: 0.5, x: 300, y: 7 }, 1000, 500, 800, 600);

out.wheel = [V.wheelFactor(-300), V.wheelFactor(300), V.wheelFactor(-3, 1), V.wheelFactor(0)];
out.parse = ["12", " 7 ", "+3", "-4", "48", "999", "abc", "", "3.5", "1e3"].map((t) => V.parseFrame(t, 48));
out.fps = [V.playbackFps(25), V.playbackFps(0), V.playbackFps(undefined), V.playbackFps(240), V.playbackFps(NaN)];
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    view = resources.files("tamvt.app") / "static" / "view.js"
    script = tmp_path_factory.mktemp("viewjs") / "check.mjs"
    script.write_text(SCRIPT % {"url": json.dumps(view.as_uri() if hasattr(view, "as_uri") else f"file://{view}")})
    done = subprocess.run([NODE, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_fit_centres_the_whole_frame(out):
    assert out["fit"]["scale"] == pytest.approx(1000 / 3840)
    assert out["fit"]["x"] == pytest.approx(0, abs=1e-9) and out["fit"]["y"] == pytest.approx(
        (600 - 2160 * 1000 / 3840) / 2
    )


def test_zoom_keeps_the_point_under_the_cursor(out):
    z = out["zoom4"]
    assert z["ratio"] == pytest.approx(4)
    assert z["after"] == pytest.approx(z["before"])
    assert out["roundTrip"] == pytest.approx([123.25, 456.5])


def test_zoom_limits_reach_one_to_one_on_4k(out):
    s = out["scales"]
    assert s["one"] == pytest.approx(1) and s["max"] == 16 and s["min"] == pytest.approx(s["fit"])
    assert s["minView"]["x"] == pytest.approx(0, abs=1e-9) and s["minView"]["y"] == pytest.approx(out["fit"]["y"])
    assert out["maxCorner"] == pytest.approx({"scale": 16, "x": 0, "y": 0}, abs=1e-9)
    assert out["smallMax"] == pytest.approx(8 * 1000 / 32)


def test_clamp_keeps_the_frame_on_screen(out):
    assert out["clampBig"] == {"scale": 2, "x": 0, "y": 600 - 1000}
    assert out["clampSmall"] == {"scale": 0.5, "x": 150, "y": 175}


def test_wheel_frame_box_and_playback_rate(out):
    assert out["wheel"] == pytest.approx([2, 0.5, 2 ** (120 / 300), 1])
    parsed = out["parse"]
    assert [p.get("frame") for p in parsed[:6]] == [12, 7, 3, 0, 47, 47]
    assert "note" not in parsed[0] and "start at 0" in parsed[3]["note"] and "last frame is 47" in parsed[5]["note"]
    assert all("error" in p and "0 to 47" in p["error"] for p in parsed[6:])
    assert out["fps"] == [25, 24, 24, 60, 24]
