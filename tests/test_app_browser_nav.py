"""Navigation in the page (Debian's Chromium through Selenium, on the demo video): Play / Pause with Space, the
frame-number box (a number, nonsense, a number past the end, a space typed there does not play), playback
stopping at the last frame; zoom 4x with the wheel about a point, a brush stroke and an eraser stroke (after a
middle-button pan) painted at known image positions and found there in the server's saved mask, the Pan tool,
Fit. The screen positions are worked out here from the canvas's on-screen rectangle, not by the page.
"""

from __future__ import annotations

import base64
import os
import time

import numpy as np
import pytest

CI = bool(os.environ.get("CI"))
if not CI:  # in CI every piece is installed by .ci/run: a missing one must fail, not skip
    pytest.importorskip("selenium")
    pytest.importorskip("fastapi")

from helpers.browser import Page, demo_page  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.actions.mouse_button import MouseButton  # noqa: E402
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

pytestmark = pytest.mark.slow


class NavPage(Page):
    """The page with the navigation gestures."""

    def rect(self) -> tuple[float, float, float, float]:
        """The canvas's rectangle on screen (left, top, width, height), zoom and pan included."""
        script = "const r = document.getElementById('view').getBoundingClientRect();"
        return tuple(self.js(script + "return [r.left, r.top, r.width, r.height]"))

    def message(self) -> str:
        return self.d.find_element(By.ID, "message").text

    def type_frame(self, *keys) -> None:
        box = self.d.find_element(By.ID, "frame-box")
        box.click()
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(*keys)

    def wheel(self, x: int, y: int, dy: int) -> None:
        ActionChains(self.d).scroll_from_origin(ScrollOrigin.from_viewport(x, y), 0, dy).perform()

    def drag(self, start: tuple[int, int], by: tuple[int, int], button: int = MouseButton.LEFT) -> None:
        builder = ActionBuilder(self.d, duration=0)
        builder.pointer_action.move_to_location(*start).pointer_down(button)
        for t in (0.25, 0.5, 0.75, 1.0):
            builder.pointer_action.move_to_location(round(start[0] + by[0] * t), round(start[1] + by[1] * t))
        builder.pointer_action.pointer_up(button)
        builder.perform()

    def server_mask(self, k: int, shape: tuple[int, int]) -> np.ndarray:
        """The mask of frame ``k`` as the server holds it (fetched by the page, which holds the session)."""
        data = self.d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "import('/static/app.js').then(async ({ S }) => {"
            f"  const r = await fetch(`/api/sessions/${{S.sid}}/masks/{k}`);"
            "  const b = new Uint8Array(await r.arrayBuffer()); let s = '';"
            "  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));"
            "  done(btoa(s));"
            "}, (err) => done(`no state: ${err}`));"
        )
        raw = base64.b64decode(data)
        return np.frombuffer(raw, np.uint8).reshape(shape) if raw else np.zeros(shape, np.uint8)


def expected_stroke(shape, a, b, r: float) -> np.ndarray:
    """The pixels whose centres lie within ``r`` of the segment a-b (image px): what the brush paints."""
    ys, xs = np.mgrid[: shape[0], : shape[1]] + 0.5
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    t = np.clip(((xs - a[0]) * d[0] + (ys - a[1]) * d[1]) / max(float(d @ d), 1e-12), 0, 1)
    return np.hypot(xs - (a[0] + t * d[0]), ys - (a[1] + t * d[1])) <= r


def test_play_frame_box_zoom_pan_fit(tmp_path):
    with demo_page(tmp_path, NavPage) as (page, browser):
        w, h = page.state("[S.video.width, S.video.height]")
        last = page.state("S.video.frames") - 1

        # 1. Space plays, Space pauses; the frame then stays
        page.keys(" ")
        page.wait(lambda: page.frame() >= 3, 10, "Space did not play")
        page.keys(" ")
        page.wait(lambda: page.body("playing") == "0", 5, "Space did not pause")
        stopped = page.frame()
        time.sleep(0.3)
        assert page.frame() == stopped < last

        # 2. the frame-number box: a number (a space typed there does not play), nonsense, past the end
        page.type_frame("1", " ", "2")
        time.sleep(0.2)
        assert page.body("playing") == "0"
        page.type_frame("12", Keys.ENTER)
        page.wait(lambda: page.frame() == 12, 10, "the frame box did not go to frame 12")
        assert browser.find_element(By.ID, "frame-box").get_attribute("value") == "12"
        page.type_frame("abc", Keys.ENTER)
        page.wait(lambda: "not a frame number" in page.message(), 5, "no message for nonsense")
        assert page.frame() == 12
        page.type_frame("999", Keys.ENTER)
        page.wait(lambda: page.frame() == last, 10, "a number past the end did not go to the last frame")
        assert f"last frame is {last}" in page.message()

        # 3. playback stops at the last frame
        page.type_frame(str(last - 3), Keys.ENTER)
        page.wait(lambda: page.frame() == last - 3, 10)
        page.click("play")
        page.wait(lambda: page.frame() == last and page.body("playing") == "0", 10, "playback did not stop at the end")
        assert browser.find_element(By.ID, "frame-box").get_attribute("value") == str(last)
        page.keys(Keys.HOME)
        page.wait(lambda: page.frame() == 0)

        # 4. the wheel zooms 4x about the pointer: the image point under it stays under it
        fit = page.rect()
        s0 = fit[2] / w
        px, py = page.to_screen([(0.6 * w, 0.45 * h)])[0]
        ix, iy = (px - fit[0]) / s0, (py - fit[1]) / s0  # the image point under the pointer
        page.wheel(px, py, -600)  # 2^(600 / 300)
        zoomed = page.rect()
        s1 = zoomed[2] / w
        assert s1 / s0 == pytest.approx(4, rel=1e-3), (s0, s1)
        assert zoomed[0] + ix * s1 == pytest.approx(px, abs=0.5) and zoomed[1] + iy * s1 == pytest.approx(py, abs=0.5)
        assert browser.find_element(By.ID, "zoom-label").text == f"{round(100 * s1)} %"
        page.shot("zoomed-4x")

        # 5. a brush stroke 20 image px long through that point lands there in the server's mask
        page.click("tool-brush")
        page.js("const s = document.getElementById('brush-size'); s.value = 4; s.dispatchEvent(new Event('input'))")
        a_scr, b_scr = (round(px - 10 * s1), py), (round(px + 10 * s1), py)
        a_img = ((a_scr[0] - zoomed[0]) / s1, (a_scr[1] - zoomed[1]) / s1)
        b_img = ((b_scr[0] - zoomed[0]) / s1, (b_scr[1] - zoomed[1]) / s1)
        page.drag(a_scr, (b_scr[0] - a_scr[0], 0))
        page.saved()
        mask = page.server_mask(0, (h, w))
        want = expected_stroke((h, w), a_img, b_img, 2)
        painted = mask == 1
        assert painted.sum() and (painted & ~want).sum() <= 2 and (want & ~painted).sum() <= 2, (
            np.argwhere(painted).min(0),
            np.argwhere(painted).max(0),
            np.argwhere(want).min(0),
            np.argwhere(want).max(0),
        )
        page.shot("painted-zoomed")

        # 6. a middle-button drag pans; then an eraser stroke across the line's middle, at the panned view
        page.drag((px, py), (-150, -100), MouseButton.MIDDLE)
        panned = page.rect()
        assert (panned[0] - zoomed[0], panned[1] - zoomed[1]) == pytest.approx((-150, -100), abs=0.5)
        assert page.state("S.tool") == "brush" and (page.server_mask(0, (h, w)) == 1).sum() == painted.sum()
        page.click("tool-eraser")
        cx = round(panned[0] + ix * s1)  # the line's middle, as it is now on screen
        page.drag((cx, round(py - 100 - 4 * s1)), (0, round(8 * s1)))
        page.saved()
        erased = page.server_mask(0, (h, w)) == 1
        col = int(ix)
        assert (
            not erased[int(iy) - 2 : int(iy) + 3, col].any() and erased[int(iy), col - 6] and erased[int(iy), col + 6]
        )
        page.shot("panned-erased")

        # 7. the Pan tool drags with the left button and paints nothing; Fit and Shift+F show the whole frame
        page.click("tool-pan")
        before = page.rect()
        page.drag((px, py), (60, 40))
        after = page.rect()
        assert (after[0] - before[0], after[1] - before[1]) == pytest.approx((60, 40), abs=0.5)
        assert (page.server_mask(0, (h, w)) == 1).sum() == erased.sum()
        page.click("fit")
        assert page.rect() == pytest.approx(fit, abs=0.5)
        page.keys("+")
        assert page.rect()[2] == pytest.approx(2 * fit[2], rel=1e-3)
        page.js("document.getElementById('view').focus()")
        ActionChains(browser).key_down(Keys.SHIFT).send_keys("f").key_up(Keys.SHIFT).perform()
        assert page.rect() == pytest.approx(fit, abs=0.5)
        assert page.state("S.tool") == "pan"  # Shift+F is not F (the Fill tool)
        page.shot("fit")
