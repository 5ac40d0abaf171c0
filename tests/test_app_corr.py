"""`tamvt app` at the HTTP level: removing a painted frame (``DELETE /api/sessions/{sid}/masks/{k}``) drops
it from the page's masks and from the objects' memories in the engine."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

if not os.environ.get("CI"):  # in CI the app extra is installed: a missing one must fail, not skip
    pytest.importorskip("fastapi")
from helpers.app import app_clients

H, W = 240, 320  # the demo video


@pytest.fixture()
def client(tmp_path):
    with app_clients(None, lambda n: tmp_path / "work") as make:
        yield make()


def _boxes(*boxes: tuple[int, int, int, int, int]) -> bytes:
    mask = np.zeros((H, W), np.uint8)
    for obj, y0, y1, x0, x1 in boxes:
        mask[y0:y1, x0:x1] = obj
    return mask.tobytes()


def _propagate(client, sid: str, frame: int, direction: str = "forward") -> dict:
    job = client.post(f"/api/sessions/{sid}/propagate", json={"frame": frame, "direction": direction}).json()
    with client.stream("GET", f"/api/sessions/{sid}/events?job={job['id']}") as r:
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    assert events[-1]["type"] == "end" and events[-1]["state"] == "finished", events[-1]
    return events[-1]


def _mask(client, sid: str, k: int) -> tuple[bytes, str]:
    r = client.get(f"/api/sessions/{sid}/masks/{k}")
    return r.content, r.headers["X-Mask-Source"]


def test_remove_a_painted_frame(client):
    sid = client.post("/api/sessions", json={"source": "demo"}).json()["id"]
    client.put(f"/api/sessions/{sid}/masks/0", content=_boxes((1, 60, 120, 40, 110), (2, 140, 200, 180, 260)))
    _propagate(client, sid, 0)
    first = {k: _mask(client, sid, k)[0] for k in range(1, 48)}

    # two corrections, propagated: both are painted frames, both show their masks
    fix20, fix30 = _boxes((1, 20, 60, 200, 260)), _boxes((1, 30, 70, 150, 210), (2, 100, 140, 10, 60))
    client.put(f"/api/sessions/{sid}/masks/20", content=fix20)
    client.put(f"/api/sessions/{sid}/masks/30", content=fix30)
    _propagate(client, sid, 20, "both")
    assert client.get(f"/api/sessions/{sid}").json()["annotated"] == [0, 20, 30]
    assert _mask(client, sid, 20) == (fix20, "annotation") and _mask(client, sid, 30) == (fix30, "annotation")

    info = client.delete(f"/api/sessions/{sid}/masks/20").json()
    assert info["annotated"] == [0, 30] and info["objects"] == [1, 2] and 20 not in info["results"]
    assert _mask(client, sid, 20) == (b"", "none")  # no mask until a propagation reaches it again
    for k, status, words in ((20, 404, "not painted"), (48, 404, "out of range"), (-1, 404, "out of range")):
        r = client.delete(f"/api/sessions/{sid}/masks/{k}")
        assert r.status_code == status and words in r.json()["error"], r.text

    # a painted frame cannot be removed while a propagation runs
    job = client.post(f"/api/sessions/{sid}/propagate", json={"frame": 0, "direction": "forward"}).json()
    r = client.delete(f"/api/sessions/{sid}/masks/30")
    if r.status_code == 409:  # (unless the run was already over)
        assert "cancel it" in r.json()["error"]
        client.post(f"/api/sessions/{sid}/cancel")
        with client.stream("GET", f"/api/sessions/{sid}/events?job={job['id']}") as events:
            list(events.iter_lines())
        r = client.delete(f"/api/sessions/{sid}/masks/30")
    assert r.status_code == 200 and r.json()["annotated"] == [0], r.text
    with client.stream("GET", f"/api/sessions/{sid}/events?job={job['id']}") as events:
        list(events.iter_lines())

    # the engine forgot both corrections: from frame 0 alone the masks are those of the first run
    _propagate(client, sid, 0)
    assert all(_mask(client, sid, k)[0] == first[k] for k in range(1, 48))

    # the last painted frame: its objects leave the engine (nothing left to propagate)
    info = client.delete(f"/api/sessions/{sid}/masks/0").json()
    assert info["annotated"] == [] and info["objects"] == []
    r = client.post(f"/api/sessions/{sid}/propagate", json={"frame": 0, "direction": "forward"})
    assert r.status_code == 400 and "paint" in r.json()["error"]
