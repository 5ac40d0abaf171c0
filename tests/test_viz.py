"""`tamvt viz` and `tamvt eval --html`: the numbers each picture draws, read back from the matplotlib
artists and compared with values computed here independently (by hand or from the model's tensors)."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tamvt.checkpoint import load_checkpoint, save_checkpoint
from tamvt.cli import main
from tamvt.config import load_preset
from tamvt.data.generic import read_generic
from tamvt.data.palette import write_index_png
from tamvt.inference.predictor import Predictor
from tamvt.inference.transforms import prepare_frame
from tamvt.models.matching import Matching
from tamvt.models.tamvt import build_tamvt
from tamvt.viz.attention import capture_attention, plot_attention, token_coverage
from tamvt.viz.loss_weights import loss_weight_curves, plot_loss_weights
from tamvt.viz.rte import plot_rte, rte_table
from tamvt.viz.scores import object_curves, plot_j_over_time, plot_sequence_bars, sequence_scores
from tamvt.viz.training import plot_training, training_curves

pytest.importorskip("matplotlib")  # the tamvt.viz modules import it only when drawing

THETA = torch.arange(45, dtype=torch.float32) / 5 + 0.5  # distinct RTE scalars 0.5 .. 9.3 (bank 9)


def artist(fig, gid: str):
    found = [a for ax in fig.axes for a in [*ax.images, *ax.lines, *ax.patches] if a.get_gid() == gid]
    assert len(found) == 1, gid
    return found[0]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A random tamvt-mini (bank 9, 3 scales) whose RTE scalars are THETA."""
    torch.manual_seed(0)
    cfg = load_preset("tamvt-mini")
    model = build_tamvt(cfg.model)
    with torch.no_grad():
        model.matching.rte.theta.copy_(THETA)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "mini.safetensors", model, cfg)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """8 frames 64x80 (a textured square moving right over noise) + the mask of frame 0 (object 1)."""
    root = tmp_path_factory.mktemp("video")
    rng = np.random.default_rng(0)
    frames, masks = [], []
    for t in range(8):
        img = rng.integers(0, 80, (64, 80, 3), dtype=np.uint8)
        mask = np.zeros((64, 80), np.uint8)
        mask[20:44, 10 + 4 * t : 34 + 4 * t] = 1
        img[mask == 1] = (200, 40 + 10 * t, 60)
        Image.fromarray(img).save(root / f"{t:05d}.png")
        frames.append(img)
        masks.append(mask)
    write_index_png(root.parent / "mask0.png", masks[0])
    return root, root.parent / "mask0.png", np.stack(frames), np.stack(masks)


# ---- the attention hook ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["mul", "add"])
def test_hooked_attention_is_the_engine_attention(mode: str) -> None:
    torch.manual_seed(1)
    matching = Matching(16, 4, 2, 0.0, mode, 3).eval()
    with torch.no_grad():
        matching.rte.theta.copy_(torch.tensor([0.5, 1.5, 0.7, 2.0, 1.2, 0.3]))
    queries = [torch.randn(2, 16, 2, 3), torch.randn(2, 16, 4, 6)]
    keys = [
        [b.project_keys(torch.randn(q.shape[2] * q.shape[3], 16)) for _ in range(3)]
        for b, q in zip(matching.blocks, queries, strict=True)
    ]
    values = [
        [b.project_values(torch.randn(2, q.shape[2] * q.shape[3], 16)) for _ in range(3)]
        for b, q in zip(matching.blocks, queries, strict=True)
    ]
    got: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        fused = matching(queries, keys, values)
        with matching.hook_attention(lambda s, w: got.__setitem__(s, w)):
            hooked = matching(queries, keys, values)
        assert all(b.attention_hook is None for b in matching.blocks)
        for a, b in zip(fused, hooked, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        # the weights by the formula of SPEC §1.4-1.5, written out here; n = 3 -> slots [5, 4, 3]
        theta = matching.rte.theta[[5, 4, 3]]
        for s, (block, q_map) in enumerate(zip(matching.blocks, queries, strict=True)):
            q = block.project_queries(q_map.flatten(2).transpose(1, 2).reshape(-1, 16))
            hw = keys[s][0].shape[0]
            want = []
            for h in range(4):
                cols = slice(4 * h, 4 * h + 4)
                logits = torch.cat([q[:, cols] @ k[:, cols].T / 4.0 for k in keys[s]], dim=1)  # 1/sqrt(16)
                t_rep = theta.repeat_interleave(hw)
                logits = logits * t_rep if mode == "mul" else logits + t_rep
                want.append(logits.softmax(-1))
            torch.testing.assert_close(got[s], torch.stack(want), atol=1e-6, rtol=1e-5)


# ---- rte --------------------------------------------------------------------------------------------


def test_rte_heatmap_and_lines_hold_the_table(checkpoint: Path, tmp_path: Path) -> None:
    model, _ = load_checkpoint(checkpoint)
    table = rte_table(model)
    theta = THETA.double().numpy()
    # block for size n starts at n(n-1)/2; slot offset 0 = newest ... n-1 = reference
    assert table.values[0, 0] == theta[0]
    np.testing.assert_array_equal(table.values[2, :3], theta[[5, 4, 3]])
    np.testing.assert_array_equal(table.values[8], theta[[44, 43, 42, 41, 40, 39, 38, 37, 36]])
    assert np.isnan(table.values[2, 3:]).all()
    fig = plot_rte(table)
    drawn = artist(fig, "rte-heatmap").get_array()
    np.testing.assert_allclose(np.ma.filled(drawn, np.nan), table.values)
    line = artist(fig, "rte-line-n3")
    np.testing.assert_array_equal(line.get_xdata(), [2, 1])  # ages of oldest, newest
    np.testing.assert_allclose(line.get_ydata(), theta[[4, 3]])
    np.testing.assert_allclose(artist(fig, "rte-ref-n3").get_ydata(), [theta[5]])
    assert main(["viz", "rte", str(checkpoint), "--out", str(tmp_path), "--dpi", "30"]) == 0
    assert Image.open(tmp_path / "rte.png").format == "PNG"


# ---- attention ----------------------------------------------------------------------------------------


def test_attention_maps_are_frame_k_attention(checkpoint: Path, video, tmp_path: Path) -> None:
    folder, mask_path, frames, masks = video
    predictor = Predictor.from_checkpoint(checkpoint, short_side=None, precision="fp32")  # as recomputed below
    seq = read_generic(folder, mask_path, 0)
    cap = capture_attention(predictor, seq, masks[0] == 1, 0, 7, 1)
    # clips [1,2] [3,4] [5,6] [7]: memory = reference + the last frame of each full clip
    assert cap.memory_frames == (0, 2, 4, 6)
    assert cap.strides == (32, 16, 8)

    # frame 7's attention computed here from the model's tensors (not through the engine)
    model, _ = load_checkpoint(checkpoint)
    with torch.no_grad():
        feats = model.encode_frames(torch.stack([prepare_frame(frames[i], (64, 80)) for i in (0, 2, 4, 6, 7)]))
        theta = model.matching.rte.theta[[9, 8, 7, 6]]  # n = 4: base 6, reference = offset 3
        for s, block in enumerate(model.matching.blocks):
            tokens = feats.match_in[s].flatten(2).transpose(1, 2)  # (5, h*w, d)
            h, w = feats.match_in[s].shape[-2:]
            q = block.project_queries(tokens[4])
            k = torch.cat([block.project_keys(tokens[i]) * theta[i] for i in range(4)])
            qh, kh = q.view(-1, 4, 32).transpose(0, 1), k.view(-1, 4, 32).transpose(0, 1)
            attn = (qh @ kh.transpose(1, 2) / math.sqrt(128)).softmax(-1).mean(0).double()  # (h*w, 4*h*w)
            assert cap.query_weights[s].shape == (h, w)
            assert cap.query_weights[s].sum() == pytest.approx(1.0)
            want = (torch.from_numpy(cap.query_weights[s].reshape(-1)) @ attn).numpy().reshape(4, h, w)
            np.testing.assert_allclose(cap.maps[s], want, rtol=2e-3, atol=1e-7)
            assert cap.entry_mass(s).sum() == pytest.approx(1.0)
    # the query weights: the share of each token covered by the object's predicted mask in frame 7
    session = predictor.start(seq)
    predictor.add_mask(session, 0, 1, masks[0] == 1)
    pred7 = dict(predictor.propagate(session))[7].binary(1)
    assert cap.on_object == pred7.any()
    for s in range(3):
        grid = cap.query_weights[s].shape
        cover = token_coverage(pred7, grid) if pred7.any() else np.ones(grid)
        np.testing.assert_allclose(cap.query_weights[s], cover / cover.sum())
    assert cap.memory_boxes[0] == (10.0, 20.0, 34.0, 44.0)  # the given mask

    fig = plot_attention(cap)
    for s in range(3):
        for i in range(4):
            np.testing.assert_array_equal(artist(fig, f"attention-s{s}-e{i}").get_array(), cap.maps[s][i])
    titles = [ax.get_title() for ax in fig.axes]
    assert f"frame 0 (ref) {100 * cap.entry_mass(2)[0]:.1f}%" in titles

    rc = main(attention_argv(checkpoint, folder, mask_path, 7, tmp_path, "--short-side", "0", "--dpi", "30"))
    assert rc == 0 and (tmp_path / "attention-frame7-obj1.png").is_file()


def attention_argv(checkpoint: Path, folder: Path, mask: Path, frame: int, out: Path, *extra: str) -> list[str]:
    where = ["--mask", str(mask), "--frame", str(frame), "--out", str(out)]
    return ["viz", "attention", str(checkpoint), str(folder), *where, *extra]


def test_token_coverage_by_hand() -> None:
    mask = np.zeros((4, 6), bool)
    mask[0:2, 0:3] = True  # the top-left cell of a 2x2 grid, whole
    mask[3, 5] = True  # 1 of the 6 pixels of the bottom-right cell
    np.testing.assert_allclose(token_coverage(mask, (2, 2)), [[1, 0], [0, 1 / 6]])


def test_attention_rejects_a_frame_before_the_mask(checkpoint: Path, video, tmp_path: Path, capsys) -> None:
    folder, mask_path, _, _ = video
    rc = main(attention_argv(checkpoint, folder, mask_path, 0, tmp_path))
    err = capsys.readouterr().err
    assert rc == 2 and "--frame must be after" in err and "Traceback" not in err


# ---- loss weights ------------------------------------------------------------------------------------


def _weights_by_hand(delta: list[float], tau: float) -> list[float]:
    mean = sum(delta) / len(delta)
    e = [math.exp(d / mean / tau) for d in delta]
    return [1.0] + [x / (sum(e) / len(e)) for x in e]


def test_loss_weights_by_hand(tmp_path: Path) -> None:
    masks = np.zeros((4, 10, 10), np.uint8)
    masks[0, 0:2, 0:2] = 1  # area 4, centroid (0.5, 0.5), 1 component
    masks[1, 0:2, 4:6] = 1  # area 4, centroid (0.5, 4.5), 1 component
    masks[2, 0:2, 4:6] = 1
    masks[2, 6:8, 6:8] = 1  # area 8, centroid (3.5, 5.5), 2 components
    masks[3, 0:4, 4:8] = 1  # area 16, centroid (1.5, 5.5), 1 component
    masks[3, 9, 9] = 2  # another object and void do not count
    masks[2, 9, 0] = 255
    frames = tuple(f"{i:05d}" for i in range(4))
    curves = loss_weight_curves(frames, masks, 1, tau=0.5)
    np.testing.assert_array_equal(curves.area, [4, 4, 8, 16])
    want = {
        "area": _weights_by_hand([1, 5, 9], 0.5),
        "centroid": _weights_by_hand([4 + 1, math.hypot(3, 1) + 1, 2 + 1], 0.5),
        "components": _weights_by_hand([1, 2, 2], 0.5),
    }
    fig = plot_loss_weights(curves)
    for kind, w in want.items():
        np.testing.assert_allclose(curves.weights[kind], w, rtol=1e-6)
        np.testing.assert_allclose(artist(fig, f"weights-{kind}").get_ydata(), w, rtol=1e-6)
    np.testing.assert_allclose(artist(fig, "area").get_ydata(), [4, 4, 8, 16])  # % of a 100-pixel frame
    windowed = loss_weight_curves(frames, masks, 1, tau=0.5, window=3)  # windows [0, 1, 2] and [3]
    np.testing.assert_allclose(windowed.weights["area"], _weights_by_hand([1, 5], 0.5) + [1.0], rtol=1e-6)

    folder = tmp_path / "gt"
    folder.mkdir()
    for name, m in zip(frames, masks, strict=True):
        write_index_png(folder / f"{name}.png", m)
    assert main(["viz", "loss-weights", str(folder), "--out", str(tmp_path / "out"), "--dpi", "30"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["loss-weights-obj1.png", "loss-weights-obj2.png"]


# ---- training ----------------------------------------------------------------------------------------


def test_training_curves_follow_the_resumed_run(tmp_path: Path) -> None:
    def train(step: int, total: float, lr: float) -> dict:
        return {
            "event": "train",
            "step": step,
            "loss_mask": total / 10,
            "loss_dice": total / 20,
            "loss_mask_0": total / 5,
            "loss_dice_0": total / 4,
            "total": total,
            "lr": lr,
        }

    records = [
        {"event": "start", "step": 0},
        train(10, 5.0, 1e-4),
        train(20, 4.0, 1e-4),
        {"event": "checkpoint", "step": 20},
        {"event": "val", "step": 20, "J&F": 0.5, "J_tr": 0.4, "J": 0.45, "F": 0.55},
        train(30, 9.9, 1e-4),  # logged, then the run died: the resumed run redoes step 30
        {"event": "start", "step": 20},
        train(30, 3.0, 1e-5),
        train(40, 2.0, 1e-5),
        {"event": "val", "step": 40, "J&F": 0.7, "J_tr": None, "J": 0.65, "F": 0.75},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    curves = training_curves(tmp_path)
    fig = plot_training(curves)
    line = artist(fig, "loss-total")
    np.testing.assert_array_equal(line.get_xdata(), [10, 20, 30, 40])
    np.testing.assert_allclose(line.get_ydata(), [5.0, 4.0, 3.0, 2.0])
    np.testing.assert_allclose(artist(fig, "loss-loss_dice_0").get_ydata(), [1.25, 1.0, 0.75, 0.5])
    np.testing.assert_allclose(artist(fig, "lr").get_ydata(), [1e-4, 1e-4, 1e-5, 1e-5])
    np.testing.assert_allclose(artist(fig, "val-J&F").get_ydata(), [0.5, 0.7])
    np.testing.assert_allclose(artist(fig, "val-J_tr").get_ydata(), [0.4, np.nan])
    assert list(curves.losses) == ["total", "loss_dice", "loss_mask", "loss_dice_0", "loss_mask_0"]
    assert main(["viz", "training", str(tmp_path), "--out", str(tmp_path / "out"), "--dpi", "30"]) == 0
    assert (tmp_path / "out" / "training.png").is_file()


# ---- scores and the HTML report -----------------------------------------------------------------------


def _davis_layout(root: Path) -> dict[tuple[str, int], list[float]]:
    """Two sequences of 6 frames 16x20 with objects 1 and 2; predictions = ground truth with object 1
    shifted right by t pixels in frame t. Returns the per-frame J of frames 1..4 by hand."""
    jf = {}
    names = ["seqa", "seqb"]
    for name in names:
        for sub in ("JPEGImages/480p", "Annotations/480p"):
            (root / "gt" / sub / name).mkdir(parents=True)
        (root / "pred" / name).mkdir(parents=True)
        for t in range(6):
            gt = np.zeros((16, 20), np.uint8)
            gt[2:8, 2:8] = 1
            gt[10:14, 12:18] = 2
            pred = gt.copy()
            pred[pred == 1] = 0
            pred[2:8, 2 + t : 8 + t] = 1
            Image.fromarray(np.zeros((16, 20, 3), np.uint8)).save(root / "gt/JPEGImages/480p" / name / f"{t:05d}.jpg")
            write_index_png(root / "gt" / "Annotations/480p" / name / f"{t:05d}.png", gt)
            write_index_png(root / "pred" / name / f"{t:05d}.png", pred)
        jf[(name, 1)] = [(6 - t) * 6 / ((6 + t) * 6) for t in range(1, 5)]  # |A∩B| / |A∪B|, shift t
        jf[(name, 2)] = [1.0] * 4
    (root / "gt" / "ImageSets" / "2017").mkdir(parents=True)
    (root / "gt" / "ImageSets" / "2017" / "val.txt").write_text("\n".join(names) + "\n")
    return jf


def test_eval_json_per_frame_scores_plots_and_html(tmp_path: Path) -> None:
    want_j = _davis_layout(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    rc = main(
        [
            "eval",
            "--protocol",
            "davis",
            "--gt",
            str(tmp_path / "gt"),
            "--pred",
            str(tmp_path / "pred"),
            "--workers",
            "1",
            "--json",
            str(out / "scores.json"),
            "--html",
            str(out / "report.html"),
        ]
    )
    assert rc == 0
    report = json.loads((out / "scores.json").read_text())
    pairs = [(e["sequence"], e["object"]) for e in report["per_object"]]
    assert [(e["sequence"], e["object"]) for e in report["per_frame"]] == pairs
    for entry, obj in zip(report["per_frame"], report["per_object"], strict=True):
        assert entry["frames"] == ["00001", "00002", "00003", "00004"]  # DAVIS: first and last excluded
        np.testing.assert_allclose(entry["J"], want_j[(entry["sequence"], entry["object"])])
        assert obj["J-Mean"] == pytest.approx(np.mean(entry["J"]))
        assert obj["F-Mean"] == pytest.approx(np.mean(entry["F"]))

    seqs = sequence_scores(report)
    fig = plot_sequence_bars(report)
    for i, s in enumerate(seqs):
        objs = [o for o in report["per_object"] if o["sequence"] == s.name]
        want = (np.mean([o["J-Mean"] for o in objs]) + np.mean([o["F-Mean"] for o in objs])) / 2
        assert artist(fig, f"jf-bar-{i}").get_width() == pytest.approx(100 * want)
    curves = object_curves(report)
    fig = plot_j_over_time("seqa", curves["seqa"])
    line = artist(fig, "j-object-1")
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(line.get_ydata(), 100 * np.array(want_j[("seqa", 1)]))

    page = (out / "report.html").read_text()
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")  # self-contained
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3  # J&F bars + J over time of the two sequences
    assert all(base64.b64decode(b).startswith(b"\x89PNG") for b in images)
    jf_global = 100 * report["global"]["J&F-Mean"]
    assert f"<td>GLOBAL</td><td>4</td><td>{jf_global:.1f}</td>" in page

    assert main(["viz", "scores", str(out / "scores.json"), "--out", str(out), "--dpi", "30"]) == 0
    assert {"scores-jf.png", "scores-j-seqa.png", "scores-j-seqb.png"} <= {p.name for p in out.iterdir()}


def test_without_matplotlib_one_line_error(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # import matplotlib -> ImportError
    rc = main(["viz", "training", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "pip install 'tamvt[viz]'" in err and "Traceback" not in err
