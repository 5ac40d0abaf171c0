"""Driving `tamvt app` in Debian's Chromium through Selenium: the server and browser fixtures, a
:class:`Page` with the user's gestures (clicks, strokes, keys), and mask helpers. Imported by the
browser tests after their skips (outside CI a machine without Selenium skips them)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

CI = bool(os.environ.get("CI"))
SEQ = "demo-000"


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        message = "Chromium and chromedriver are needed: apt-get install -y chromium chromium-driver"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    return chromium, driver


@contextlib.contextmanager
def serve_app(tmp_path: Path, *extra: str) -> Iterator[str]:
    """`tamvt app --port 0` (the shipped model, the demo video; ``extra`` options) in a subprocess;
    yields its URL as printed, with its ``?token=`` (a browser opening it gets the token's cookie; for
    HTTP calls of the test's own, :func:`api_client`). The work folder is ``tmp_path/work`` unless
    ``extra`` names one (never the user's own, which another server may hold)."""
    workdir = [] if "--workdir" in extra else ["--workdir", str(tmp_path / "work")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tamvt.cli", "app", "--port", "0", "--out", str(tmp_path / "out"), *workdir, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    url: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            m = re.search(r"serving (http://\S+)", line)
            if m:
                url.append(m.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(120) and url, "the server did not start:\n" + "".join(lines)
        yield url[0]
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        assert not any("Traceback" in line for line in lines), "".join(lines)


def api_client(url: str, timeout: float = 60) -> httpx.Client:
    """An HTTP client of the server whose printed URL is ``url``: paths relative to it, its token in a header."""
    parts = urlsplit(url)
    token = parse_qs(parts.query).get("token", [None])[0]
    headers = {"Authorization": f"token {token}"} if token else {}
    return httpx.Client(base_url=f"{parts.scheme}://{parts.netloc}", headers=headers, timeout=timeout)


@contextlib.contextmanager
def chromium(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium under chromedriver, downloads into ``tmp_path/downloads`` (``driver.downloads``)."""
    chromium, driver_path = _browser_paths()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,950",
        "--force-device-scale-factor=1",
    ):
        opts.add_argument(arg)
    opts.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for downloads
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=driver_path))
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def reference_jf(data: Path, pred: Path) -> float:
    """J&F of the shipped model on the demo video from the ground-truth first mask (as `tamvt demo`)."""
    from tamvt.checkpoint import shipped_model_path
    from tamvt.data.palette import read_index_png, write_index_png
    from tamvt.data.registry import read_dataset
    from tamvt.evaluation.evaluate import evaluate
    from tamvt.inference import Predictor

    seqs = read_dataset("davis", data, "val")
    predictor = Predictor.from_checkpoint(shipped_model_path())
    for seq in seqs:
        gt, palette = read_index_png(seq.mask_paths[0])
        session = predictor.start(seq)
        predictor.add_index_mask(session, 0, gt)
        for idx, result in predictor.propagate(session, start=0):
            write_index_png(pred / seq.name / f"{seq.frame_names[idx]}.png", result.mask, palette)
    return 100 * evaluate(seqs, pred, "davis", workers=1).global_scores()["J&F-Mean"]


class Page:
    """The app's page: the canvas in image coordinates, the tools, waits."""

    def __init__(self, driver, url: str, shots: Path) -> None:
        self.d, self.url, self.shots = driver, url, shots
        self.n = 0

    def shot(self, name: str) -> Path:
        self.n += 1
        path = self.shots / f"{self.n:02d}-{name}.png"
        self.d.save_screenshot(str(path))
        return path

    def js(self, script: str, *args):
        return self.d.execute_script(script, *args)

    def state(self, expr: str):
        """The value of ``expr``, JavaScript over the page's state ``S`` (app.js, a module, exports it: the
        page has no globals)."""
        return self.d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"import('/static/app.js').then(({{ S }}) => done({expr}), (err) => done(`no state: ${{err}}`));"
        )

    def wait(self, cond, timeout: float = 60, what: str = "") -> None:
        try:
            WebDriverWait(self.d, timeout, poll_frequency=0.05).until(lambda d: cond())
        except TimeoutException:
            self.shot("timeout")
            shown = self.js("return document.getElementById('message').textContent")
            raise AssertionError(f"{what or 'timed out'} (the page says: {shown!r})") from None

    def body(self, key: str) -> str:
        return self.js(f"return document.body.dataset.{key}")

    def click(self, element_id: str) -> None:
        self.d.find_element(By.ID, element_id).click()

    def to_screen(self, points):
        """Image pixels -> viewport pixels (the canvas is scaled to fit the window)."""
        left, top, width, height, w, h = self.js(
            "const v = document.getElementById('view'), r = v.getBoundingClientRect();"
            "return [r.left, r.top, r.width, r.height, v.width, v.height];"
        )
        return [(round(left + x * width / w), round(top + y * height / h)) for x, y in points]

    def clicks(self, points) -> None:
        builder = ActionBuilder(self.d, duration=0)
        for x, y in self.to_screen(points):
            builder.pointer_action.move_to_location(x, y).pointer_down().pointer_up()
        builder.perform()

    def strokes(self, strokes) -> None:
        """Each stroke: press at its first point, move through the others, release."""
        builder = ActionBuilder(self.d, duration=0)
        for stroke in strokes:
            pts = self.to_screen(stroke)
            builder.pointer_action.move_to_location(*pts[0]).pointer_down()
            for p in pts[1:]:
                builder.pointer_action.move_to_location(*p)
            builder.pointer_action.pointer_up()
        builder.perform()

    def keys(self, *keys) -> None:
        self.js("document.getElementById('view').focus()")
        ActionChains(self.d).send_keys(*keys).perform()

    def step(self, n: int) -> None:
        """Step ``n`` frames on with the keyboard: Shift+→ (10 frames) and → (1)."""
        self.js("document.getElementById('view').focus()")
        chain = ActionChains(self.d)
        for _ in range(n // 10):
            chain.key_down(Keys.SHIFT).send_keys(Keys.ARROW_RIGHT).key_up(Keys.SHIFT)
        for _ in range(n % 10):
            chain.send_keys(Keys.ARROW_RIGHT)
        chain.perform()

    def saved(self) -> None:
        time.sleep(0.4)  # edits are sent 250 ms after the last one
        self.wait(lambda: self.body("saving") == "0", 30, "the painted mask was not saved")

    def frame(self) -> int:
        return int(self.d.find_element(By.ID, "scrub").get_attribute("value"))

    def propagate(self, button: str, timeout: float = 180) -> list[int]:
        """Click a propagate button, wait for the end; returns the progress values seen meanwhile."""
        previous = self.body("jobId")
        self.click(button)
        seen = []
        deadline = time.monotonic() + timeout
        while self.body("jobId") == previous or self.body("job") != "finished":
            shown = self.js("return document.getElementById('message').textContent")
            assert self.body("job") not in ("failed", "cancelled"), shown
            started = self.body("jobId") != previous
            assert started or time.monotonic() < deadline - timeout + 20, f"{button} started no propagation ({shown!r})"
            assert time.monotonic() < deadline, f"propagation did not finish in {timeout} s ({shown!r})"
            value = int(float(self.d.find_element(By.ID, "progress").get_attribute("value")))
            if not seen or seen[-1] != value:
                seen.append(value)
                if len(seen) == 3:
                    self.shot("propagating")
            time.sleep(0.05)
        seen.append(int(float(self.d.find_element(By.ID, "progress").get_attribute("value"))))
        return seen


def polygons(mask: np.ndarray) -> list[list[tuple[float, float]]]:
    """Outer contours of a binary mask as polygons in image coordinates (pixel centres)."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        if cv2.contourArea(c) < 12:
            continue
        c = cv2.approxPolyDP(c, 0.6, True)[:, 0, :]
        pts = [(float(x) + 0.5, float(y) + 0.5) for x, y in c]
        # a click near the first vertex closes the polygon: keep the later ones away from it; and two
        # clicks close together would be a double click
        kept = pts[:1]
        for p in pts[1:]:
            if (
                np.hypot(p[0] - pts[0][0], p[1] - pts[0][1]) > 4
                and np.hypot(p[0] - kept[-1][0], p[1] - kept[-1][1]) > 1.5
            ):
                kept.append(p)
        out.append(kept)
    return out


def brush_strokes(mask: np.ndarray, radius: float) -> list[list[tuple[float, float]]]:
    """Horizontal strokes whose discs of ``radius`` stay inside ``mask``: the runs of the mask eroded by
    the radius, one row in two."""
    import cv2

    k = int(np.ceil(radius))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    inner = cv2.erode(mask.astype(np.uint8), disk) > 0
    strokes = []
    for y in range(0, mask.shape[0], 2):
        xs = np.flatnonzero(inner[y])
        if not len(xs):
            continue
        breaks = np.flatnonzero(np.diff(xs) > 1)
        for a, b in zip(np.r_[0, breaks + 1], np.r_[breaks, len(xs) - 1], strict=True):
            strokes.append([(xs[a] + 0.5, y + 0.5), (xs[b] + 0.5, y + 0.5)])
    return strokes


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def demo_ground_truth(tmp_path: Path) -> tuple[Path, Any, list[np.ndarray]]:
    """The demo video the server shows, written with its ground truth under ``tmp_path/data``: the folder,
    the sequence (a ``VideoSequence``) and the index mask of every frame."""
    from tamvt.data.palette import read_index_png
    from tamvt.data.registry import read_dataset
    from tamvt.data.synthetic import preset_suite
    from tamvt.data.synthetic.dataset import write_dataset

    data = tmp_path / "data"
    write_dataset(data, preset_suite("demo"), overwrite=True, progress=False)
    seq = read_dataset("davis", data, "val")[0]
    return data, seq, [read_index_png(seq.mask_paths[k])[0] for k in range(len(seq))]


@contextlib.contextmanager
def demo_page(tmp_path: Path, page_class: type[Page] = Page) -> Iterator[tuple[Page, webdriver.Chrome]]:
    """A fresh server and Chromium with the page open on the demo video, ready to paint; screenshots go to
    ``tmp_path/screens``."""
    shots = tmp_path / "screens"
    shots.mkdir(exist_ok=True)
    with serve_app(tmp_path) as url, chromium(tmp_path) as browser:
        page = page_class(browser, url, shots)
        browser.get(url)
        page.wait(lambda: page.body("state") == "ready", 60, "the demo video did not open")
        yield page, browser
