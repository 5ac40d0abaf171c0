"""`tamvt app` keeps the work of a page in Chromium: paint the demo, open a second video (the first is kept
and the message says so), Back returns to the first with its mask, then the server is restarted on the same
--workdir and the first session is reopened from Recent with its mask."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

CI = bool(os.environ.get("CI"))
if not CI:  # in CI every piece is installed by .ci/run: a missing one must fail, not skip
    pytest.importorskip("selenium")
    pytest.importorskip("fastapi")

from helpers.browser import Page, chromium, serve_app  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.slow

SQUARE = [(60.5, 60.5), (140.5, 60.5), (140.5, 140.5), (60.5, 140.5)]


def _sid(url: str) -> str:
    return re.search(r"s=([0-9a-f]{16})", url).group(1)


def _painted(page: Page) -> int:
    """Pixels of object 1 in the shown frame's mask, once the page shows it as painted."""
    page.wait(lambda: page.d.find_element(By.ID, "frame-source").text == "painted", 30, "no painted mask shown")
    return page.state("S.masks.get(S.cur).mask.reduce((n, v) => n + (v === 1), 0)")


def test_work_survives_another_video_back_and_a_restart(tmp_path):
    from tamvt.data.video import VideoWriter

    work = tmp_path / "work"
    clip = tmp_path / "walk.mp4"
    with VideoWriter(clip, fps=10) as w:
        for t in range(8):
            frame = np.full((96, 128, 3), 30, np.uint8)
            frame[20:60, 10 + 5 * t : 40 + 5 * t] = (200, 80, 40)
            w.write(frame)
    shots = tmp_path / "screens"
    shots.mkdir()
    with chromium(tmp_path) as browser:
        page = Page(browser, "", shots)
        message = lambda: browser.find_element(By.ID, "message").text  # noqa: E731
        with serve_app(tmp_path, "--workdir", str(work)) as url:
            browser.get(url)
            page.wait(lambda: page.body("state") == "ready", 60, "the demo video did not open")
            first = _sid(browser.current_url)
            page.click("obj-1")
            page.click("tool-polygon")
            page.clicks(SQUARE + SQUARE[:1])
            page.saved()
            painted = _painted(page)
            assert 6000 < painted < 6800, painted  # the 80 x 80 square

            # another video: the first session is kept, and the page says so
            browser.find_element(By.ID, "upload").send_keys(str(clip))
            page.wait(lambda: page.state("S.video && S.video.name") == "walk.mp4", 60, "the upload did not open")
            page.wait(lambda: "kept in Recent" in message(), 30)
            second = _sid(browser.current_url)
            assert second != first
            page.shot("second-video")

            # Back returns to the first session, with its mask
            browser.back()
            page.wait(lambda: page.state("S.sid") == first, 60, "Back did not reopen the first session")
            assert _painted(page) == painted
            page.shot("back")

        # a restart on the same folder: the bare URL reopens the latest session, Recent the others
        with serve_app(tmp_path, "--workdir", str(work)) as url:
            browser.get(url)
            page.wait(lambda: page.body("state") == "ready", 60, "the page did not open after the restart")
            assert "server restarted" in message(), message()
            # the list is rebuilt as the page refreshes it: read and choose through one script each, never
            # through element handles that a refresh can make stale between two WebDriver calls
            listed = "return [...document.getElementById('recent').options].map((o) => o.value)"
            page.wait(lambda: set(page.js(listed)) == {first, second}, 30, "Recent does not list both sessions")

            def choose(sid: str) -> None:
                page.js("document.getElementById('recent').value = arguments[0]", sid)
                assert page.js("return document.getElementById('recent').value") == sid

            opened = page.state("S.sid")
            other = first if opened == second else second
            choose(other)
            page.click("open-recent")
            page.wait(lambda: page.state("S.sid") == other, 60, "Recent did not reopen the session")
            if other != first:  # reopen the first too
                choose(first)
                page.click("open-recent")
                page.wait(lambda: page.state("S.sid") == first, 60, "Recent did not reopen the first session")
            page.wait(lambda: page.body("state") == "ready")
            assert _painted(page) == painted
            assert "kept in Recent" in message(), message()
            page.shot("reopened-after-restart")
