"""The Box and Click tools' pure logic (``static/prompt.js``: a proposal put into the frame's index mask, a drag
to a box, which button is a background click), run under node as an ES module; skipped without node."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources

import pytest

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (the page's prompt.js runs under it)")

SCRIPT = """
import * as P from %(url)s;
const out = {};

// a 4 x 2 frame: ids 0 0 1 2 / 1 1 0 2; the proposal for object 1 covers the first three columns
const mask = Uint8Array.from([0, 0, 1, 2, 1, 1, 0, 2]);
const proposal = Uint8Array.from([1, 1, 1, 1, 0, 1, 1, 0]);
out.applied = Array.from(P.applyProposal(mask, proposal, 1));
out.untouched = Array.from(mask);  // a new array: the frame's own mask is left as it was
out.fromNone = Array.from(P.applyProposal(null, proposal, 3));

out.boxes = [
  P.dragBox([10.2, 20.7], [50.5, 40.1], 100, 80),   // whole pixels around the drag
  P.dragBox([50.5, 40.1], [10.2, 20.7], 100, 80),   // dragged up and left: the same box
  P.dragBox([-5, -5], [150, 90], 100, 80),          // clipped to the frame
  P.dragBox([10, 10], [11.5, 40], 100, 80),         // under 3 px wide: a click, not a box
];
out.kinds = [
  P.clickKind({ button: 0, shiftKey: false }), P.clickKind({ button: 0, shiftKey: true }),
  P.clickKind({ button: 2, shiftKey: false }), P.clickKind({ button: 1, shiftKey: false }),
];
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    prompt = resources.files("tamvt.app") / "static" / "prompt.js"
    script = tmp_path_factory.mktemp("promptjs") / "check.mjs"
    script.write_text(
        SCRIPT % {"url": json.dumps(prompt.as_uri() if hasattr(prompt, "as_uri") else f"file://{prompt}")}
    )
    done = subprocess.run([NODE, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_proposal_replaces_its_object_and_spares_the_others(out):
    # object 1 becomes the proposal where it is not object 2's: pixel 4 (1, not proposed) goes, 0, 1, 6
    # (background, proposed) come, 2 and 5 stay; object 2's pixels 3 and 7 stay though 3 is proposed
    assert out["applied"] == [1, 1, 1, 2, 0, 1, 1, 2]
    assert out["untouched"] == [0, 0, 1, 2, 1, 1, 0, 2]
    assert out["fromNone"] == [3, 3, 3, 3, 0, 3, 3, 0]


def test_a_drag_is_a_box_of_whole_pixels_in_the_frame(out):
    assert out["boxes"] == [[10, 20, 51, 41], [10, 20, 51, 41], [0, 0, 100, 80], None]


def test_right_or_shift_click_is_background(out):
    assert out["kinds"] == ["positive", "negative", "negative", None]
