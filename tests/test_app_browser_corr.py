"""`tamvt app` in Chromium: corrections stick. Paint the demo's first frame, propagate, correct two
frames, propagate from the first correction: both corrected frames keep their painted masks and the
timeline marks the three painted frames; the × of one mark removes that frame's painting."""

from __future__ import annotations

import os

import numpy as np
import pytest

CI = bool(os.environ.get("CI"))
if not CI:  # in CI every piece is installed by .ci/run: a missing one must fail, not skip
    pytest.importorskip("selenium")
    pytest.importorskip("fastapi")

# after the skips above: outside CI a machine without Selenium skips this file instead of failing to import it
from helpers.browser import Page, demo_ground_truth, demo_page, polygons  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

pytestmark = pytest.mark.slow


def page_mask(page: Page, k: int) -> tuple[np.ndarray | None, str]:
    """Frame ``k``'s mask on the server and where it comes from, fetched by the page (its credentials)."""
    data, source = page.d.execute_async_script(
        "const [k, done] = arguments;"
        "import('/static/app.js').then(async ({ S }) => {"
        "  const r = await fetch(`/api/sessions/${S.sid}/masks/${k}`);"
        "  const bytes = new Uint8Array(await r.arrayBuffer());"
        "  done([Array.from(bytes), r.headers.get('X-Mask-Source')]);"
        "});",
        k,
    )
    h, w = page.state("[S.video.height, S.video.width]")
    return (np.array(data, np.uint8).reshape(h, w) if data else None), source


def paint_polygons(page: Page, obj: int, mask: np.ndarray) -> None:
    page.click(f"obj-{obj}")
    page.click("tool-polygon")
    for poly in polygons(mask):
        page.clicks(poly)
        page.keys(Keys.ENTER)
        assert page.state("S.poly.length") == 0
    page.saved()


def go(page: Page, k: int) -> None:
    page.keys(Keys.HOME)
    page.wait(lambda: page.frame() == 0)
    page.step(k)
    page.wait(lambda: page.frame() == k, 10, f"keyboard stepping did not reach frame {k}")


def test_two_corrections_hold_and_a_painted_frame_can_be_removed(tmp_path):

    data, seq, gt = demo_ground_truth(tmp_path)  # the same video the server shows, with its ground truth
    with demo_page(tmp_path) as (page, browser):
        paint_polygons(page, 1, gt[0] == 1)
        page.click("add-object")
        paint_polygons(page, 2, gt[0] == 2)
        page.propagate("propagate-forward")

        painted = {}
        for k, obj in ((20, 1), (35, 2)):  # two corrections, one object each
            go(page, k)
            paint_polygons(page, obj, gt[k] == obj)
            painted[k], source = page_mask(page, k)
            assert source == "annotation"
        go(page, 20)
        page.propagate("propagate-forward")  # passes the second correction: it must hold there
        page.shot("two-corrections")
        for k in (20, 35):
            mask, source = page_mask(page, k)
            assert source == "annotation" and np.array_equal(mask, painted[k]), k
        # one script: the timeline rebuilds its marks on redraw, which can make element handles stale
        marks = page.js("return [...document.querySelectorAll('#marks .mark')].map((m) => m.id)")
        assert marks == ["mark-0", "mark-20", "mark-35"]

        page.click("unmark-35")  # the × of the last mark
        page.wait(lambda: page.js("return document.getElementById('marks').dataset.frames") == "0,20")
        assert page.state("[...S.annotated].sort((a, b) => a - b)") == [0, 20]
        assert page_mask(page, 35) == (None, "none")
        assert "Removed the painting of frame 35" in browser.find_element(By.ID, "message").text
        page.shot("mark-removed")
