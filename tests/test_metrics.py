"""J / F / statistics on hand-computed arrays, and the single-frame picks of the official fixture."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from tamvt.data.palette import read_index_png
from tamvt.evaluation.metrics import (
    bound_pix,
    boundary_f,
    db_statistics,
    decay_bin_edges,
    dilate_disk,
    disk,
    j_tr_values,
    region_similarity,
    seg2bmap,
)

FIX = Path(__file__).parent / "fixtures" / "davis_metrics"


def square(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[rows, cols] = True
    return m


def test_region_similarity_two_squares() -> None:
    gt = square((20, 20), slice(0, 10), slice(0, 10))  # 100 px
    pred = square((20, 20), slice(0, 10), slice(5, 15))  # 100 px, 50 shared
    assert region_similarity(gt, pred) == pytest.approx(50 / 150, abs=1e-15)
    assert region_similarity(gt, gt) == 1.0


def test_region_similarity_empty_conventions() -> None:
    empty = np.zeros((8, 8), bool)
    assert region_similarity(empty, empty) == 1.0
    assert region_similarity(empty, square((8, 8), slice(1, 3), slice(1, 3))) == 0.0


def test_seg2bmap_square_ring_offset_to_origin() -> None:
    # a 3x3 square at rows/cols 1..3 -> the 4x4 ring at rows/cols 0..3 (offset half a pixel to the origin)
    seg = square((6, 6), slice(1, 4), slice(1, 4))
    expected = np.zeros((6, 6), bool)
    expected[0:4, 0:4] = True
    expected[1:3, 1:3] = False
    assert np.array_equal(seg2bmap(seg), expected)


def test_seg2bmap_image_border_is_not_a_boundary() -> None:
    full = np.ones((5, 7), bool)
    assert not seg2bmap(full).any()
    # object filling the last column: only its left edge (column 2) is a boundary, the corner rule
    # of the last row included
    seg = square((4, 4), slice(0, 4), slice(3, 4))
    expected = np.zeros((4, 4), bool)
    expected[:, 2] = True
    assert np.array_equal(seg2bmap(seg), expected)


def _toolkit_seg2bmap(seg: np.ndarray) -> np.ndarray:
    """The toolkit's formulation (shifted copies, then the last row / column / corner fixed up)."""
    e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    e[:, :-1], s[:-1, :], se[:-1, :-1] = seg[:, 1:], seg[1:, :], seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def test_seg2bmap_equals_toolkit_formulation() -> None:
    rng = np.random.default_rng(2)
    for shape in [(1, 1), (1, 5), (5, 1), (7, 9), (30, 20)]:
        for p in (0.1, 0.5, 0.9):
            seg = rng.random(shape) < p
            assert np.array_equal(seg2bmap(seg), _toolkit_seg2bmap(seg))


def test_boundary_f_hand_computed() -> None:
    # gt: 3x3 square rows 1..3, cols 1..3 -> ring rows 0..3 cols 0..3 (12 px);
    # pred: same square 2 px to the right -> ring cols 2..5 (12 px).
    # With a radius-1 disk (a plus) 8 of 12 pred ring pixels touch the gt ring and vice versa:
    # precision = recall = 2/3, F = 2/3. With radius 2 every pixel matches: F = 1.
    gt = square((6, 12), slice(1, 4), slice(1, 4))
    pred = square((6, 12), slice(1, 4), slice(3, 6))
    assert boundary_f(gt, pred, 1) == pytest.approx(2 / 3, abs=1e-15)
    assert boundary_f(gt, pred, 2) == 1.0
    assert region_similarity(gt, pred) == pytest.approx(3 / 15, abs=1e-15)


def test_boundary_f_empty_conventions() -> None:
    empty = np.zeros((30, 30), bool)
    obj = square((30, 30), slice(5, 15), slice(5, 15))
    assert boundary_f(empty, empty, 3) == 1.0
    assert boundary_f(empty, obj, 3) == 0.0  # GT empty, prediction not
    assert boundary_f(obj, empty, 3) == 0.0  # missed object
    far = square((30, 30), slice(20, 28), slice(20, 28))
    assert boundary_f(obj, far, 2) == 0.0


def test_boundary_f_crop_equals_full_frame() -> None:
    # the bounding-box crop must give the full-frame result also at the image borders
    rng = np.random.default_rng(0)
    for _ in range(20):
        gt = np.zeros((40, 50), np.uint8)
        pred = np.zeros((40, 50), np.uint8)
        for m in (gt, pred):
            y, x = rng.integers(-5, 40), rng.integers(-5, 50)
            cv2.circle(m, (int(x), int(y)), int(rng.integers(2, 15)), 1, -1)
        r = int(rng.integers(1, 5))
        gb, pb = seg2bmap(gt), seg2bmap(pred)
        gd, pd = cv2.dilate(gb.astype(np.uint8), disk(r)), cv2.dilate(pb.astype(np.uint8), disk(r))
        n_g, n_p = gb.sum(), pb.sum()
        if n_g and n_p:
            p, rc = (pb & (gd > 0)).sum() / n_p, (gb & (pd > 0)).sum() / n_g
            ref = 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)
        else:
            ref = 1.0 if n_g == n_p == 0 else 0.0
        assert boundary_f(gt.astype(bool), pred.astype(bool), r) == ref


def test_disk_and_its_rectangle_decomposition() -> None:
    assert disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert disk(2).sum() == 13
    rng = np.random.default_rng(1)
    for r in range(0, 13):
        b = (rng.random((40, 45)) < 0.03).astype(np.uint8)
        assert np.array_equal(dilate_disk(b, r), cv2.dilate(b, disk(r)))


@pytest.mark.parametrize("hw,expected", [((480, 854), 8), ((480, 910), 9), ((480, 1152), 10), ((100, 100), 2)])
def test_bound_pix(hw: tuple[int, int], expected: int) -> None:
    assert bound_pix(hw) == expected


def test_statistics_small_hand_computed() -> None:
    v = np.array([1.0, 0.5, 0.6, 0.0, 0.2])
    mean, recall, decay = db_statistics(v)
    assert mean == pytest.approx(2.3 / 5, abs=1e-15)
    assert recall == pytest.approx(2 / 5)  # strictly > 0.5: 1.0 and 0.6
    # edges round(linspace(1,5,5))-1 = [0,1,2,3,4]: bins [1,.5] and [0,.2] -> 0.75 - 0.1
    assert decay == pytest.approx(0.65, abs=1e-15)
    assert all(math.isnan(x) for x in db_statistics(np.array([])))


def test_decay_300_frames_int64_indices() -> None:
    # linspace(1,300,5) = 1, 75.75, 150.5, 225.25, 300 -> rounded - 1 = 0, 75, 150, 224, 299
    assert decay_bin_edges(300).tolist() == [0, 75, 150, 224, 299]
    step = np.r_[np.ones(150), np.zeros(150)]
    assert db_statistics(step)[2] == 1.0  # the official uint8 indices give NaN here (299 -> 43)
    ramp = np.arange(300) / 299.0
    # bin 0 = frames 0..75 (mean 37.5), bin 3 = frames 224..299 (mean 261.5)
    assert db_statistics(ramp)[2] == pytest.approx((37.5 - 261.5) / 299, abs=1e-12)


def test_decay_edges_match_fixture_long_case() -> None:
    exp = json.loads((FIX / "expected.json").read_text())["long"]
    assert decay_bin_edges(exp["num_evaluated_frames"]).tolist() == exp["decay_ids_int64"]


def test_j_tr_is_last_quarter() -> None:
    v = np.arange(10.0)
    assert j_tr_values(v).tolist() == [7.0, 8.0, 9.0]  # floor(7.5) = 7
    info = json.loads((FIX / "expected.json").read_text())["vost"]["sequence_info"]
    for s in info.values():
        assert j_tr_values(np.zeros(s["num_evaluated_frames"])).size == s["num_last_frames"]


def test_single_frame_picks_of_the_official_toolkit() -> None:
    exp = json.loads((FIX / "expected.json").read_text())["frames"]
    for pick in exp:
        gt, _ = read_index_png(FIX / "gt" / "Annotations" / "480p" / pick["sequence"] / f"{pick['frame']}.png")
        pred, _ = read_index_png(FIX / "pred" / pick["sequence"] / f"{pick['frame']}.png")
        k = pick["object"]
        assert bound_pix(gt.shape) == pick["bound_pix"]
        assert region_similarity(gt == k, pred == k) == pytest.approx(pick["J"], abs=1e-9)
        assert boundary_f(gt == k, pred == k, pick["bound_pix"]) == pytest.approx(pick["F"], abs=1e-9)
