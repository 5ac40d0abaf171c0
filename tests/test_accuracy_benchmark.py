"""benchmarks/accuracy.py end to end on a two-video slice of its validation suite."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

from tamvt.checkpoint import save_checkpoint
from tamvt.config import load_preset
from tamvt.models.tamvt import build_tamvt

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy.py"


def _script(name: str = "accuracy"):
    """A script of benchmarks/ as a module (default accuracy.py)."""
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", SCRIPT.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_accuracy_benchmark_scores_reuses_and_respects_inference_settings(tmp_path, capsys):
    torch.manual_seed(0)
    cfg = load_preset("tamvt-mini")
    ckpt = save_checkpoint(tmp_path / "random.safetensors", build_tamvt(cfg.model), cfg)
    bench = _script()
    work, out = tmp_path / "work", tmp_path / "all.json"
    base = [
        "--work",
        str(work),
        "--num",
        "2",
        "--no-shipped",
        "--model",
        f"rand={ckpt}",
        "--short-side",
        "64",
        "--reuse",
        "--json",
        str(out),
    ]
    assert bench.main([*base, "--bank-size", "3"]) == 0
    results = json.loads(out.read_text())
    assert set(results) == {"copy-first-mask", "rand"}
    # the baseline reproduces frame 0 exactly, so it is far from zero; every object is scored
    assert results["copy-first-mask"]["global"]["J&F-Mean"] > 0.2
    assert len(results["rand"]["per_object"]) == len(results["copy-first-mask"]["per_object"]) >= 2
    stamp = json.loads((work / "pred" / "rand" / ".made-by.json").read_text())
    assert stamp["inference"] == {"short_side": 64, "bank_size": 3}
    capsys.readouterr()
    assert bench.main([*base, "--bank-size", "3"]) == 0  # same file and settings: reused
    assert "rand: reusing" in capsys.readouterr().out
    assert bench.main([*base, "--bank-size", "2"]) == 0  # other settings: predicted again
    assert "rand: reusing" not in capsys.readouterr().out
    assert json.loads((work / "pred" / "rand" / ".made-by.json").read_text())["inference"]["bank_size"] == 2


def test_grid_oracle_is_exact_at_full_size_and_loses_detail_on_a_coarse_grid(tmp_path):
    bench = _script()
    work, out = tmp_path / "work", tmp_path / "all.json"
    base = ["--work", str(work), "--num", "2", "--no-shipped", "--json", str(out)]
    assert bench.main([*base, "--grid-oracle", "240x320"]) == 0  # the suite's frame size: the ground truth itself
    full = json.loads(out.read_text())["gt-at-240x320"]["global"]
    assert full["J-Mean"] == 1.0 and full["F-Mean"] == 1.0
    assert bench.main([*base, "--grid-oracle", "8x10"]) == 0
    coarse = json.loads(out.read_text())["gt-at-8x10"]["global"]
    assert 0.2 < coarse["J-Mean"] < 0.95


def test_the_shipped_model_row_beats_copying_the_first_mask(tmp_path):
    bench = _script()
    out = tmp_path / "all.json"
    assert bench.main(["--work", str(tmp_path / "work"), "--num", "1", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    shipped, copy = results["shipped"]["global"]["J&F-Mean"], results["copy-first-mask"]["global"]["J&F-Mean"]
    assert shipped > copy + 0.2, (shipped, copy)


def test_crops_script(tmp_path, capsys):
    from PIL import Image

    from tamvt.data.palette import write_index_png

    spec = importlib.util.spec_from_file_location("crops_benchmark", SCRIPT.parent / "crops.py")
    crops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(crops)
    data, good, empty = tmp_path / "data", tmp_path / "good", tmp_path / "empty"
    (data / "JPEGImages/480p/v").mkdir(parents=True)
    gt = np.zeros((60, 80), np.uint8)
    gt[20:30, 50:60] = 2
    for frame in (0, 3):
        Image.fromarray(np.full((60, 80, 3), 90, np.uint8)).save(data / f"JPEGImages/480p/v/{frame:05d}.jpg")
        write_index_png(data / f"Annotations/480p/v/{frame:05d}.png", gt)
        write_index_png(good / f"v/{frame:05d}.png", gt)
        write_index_png(empty / f"v/{frame:05d}.png", np.zeros_like(gt))
    out = tmp_path / "crops.png"
    assert (
        crops.main(
            [
                "--data",
                str(data),
                "--video",
                "v",
                "--object",
                "2",
                "--frames",
                "0,3",
                "--size",
                "32",
                "--zoom",
                "2",
                "--pred",
                f"good={good}",
                "--pred",
                f"empty={empty}",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    image = np.asarray(Image.open(out))
    assert image.shape == (2 * (64 + 4), 3 * (64 + 4), 3)  # rows: frames; columns: frame + 2 predictions
    # the crop (32 px) is centred on the object (rows 20:30, cols 50:60; mean 24, 54): top 8, left 38
    inner = image[2 + 2 * (25 - 8), 68 + 2 + 2 * (55 - 38)]  # the object's centre, "good" column: tinted red
    assert inner[0] > 150 and inner[1] < 100
    edge = image[2 + 2 * (20 - 8), 68 + 2 + 2 * (55 - 38)]  # its top edge: the green outline
    assert tuple(edge) == (0, 255, 0)
    untinted = image[2 + 2 * (25 - 8), 2 * 68 + 2 + 2 * (55 - 38)]  # "empty" column: no red
    assert abs(int(untinted[0]) - int(untinted[1])) < 10


def test_second_suite_rows_have_refound_and_the_ground_truth_refinds_everything(tmp_path, capsys):
    bench = _script()
    work, out = tmp_path / "work", tmp_path / "all.json"
    args = ["--suite", "second", "--work", str(work), "--num", "1", "--no-shipped", "--json", str(out)]
    assert bench.main([*args, "--grid-oracle", "240x427"]) == 0  # the suite's frame size: the ground truth
    results = json.loads(out.read_text())
    attrs = json.loads((work / "data" / "attributes.json").read_text())["videos"]["s2-000"]
    # every invisible run that ends before the last frame (the protocol does not score it) is a reappearance
    expected = sum(b <= attrs["length"] - 2 for o in attrs["objects"].values() for _, b in o["invisible"])
    assert expected >= 2  # the long videos hide object 1 twice
    oracle = results["gt-at-240x427"]["refound"]["global"]
    assert oracle == {"events": expected, "found": expected, "rate": 1.0}
    assert results["copy-first-mask"]["refound"]["global"]["events"] == expected
    assert "tag:sweep" in results["copy-first-mask"]["subsets"]
    table = capsys.readouterr().out
    assert "second suite: 1 videos" in table and "RF" in table and "reapp" in table


def test_lost_suite_gives_every_video_a_lost_event_and_counts_its_reappearances(tmp_path, capsys):
    """``--suite lost``: the first suite's recipes at another seed, each with a lost-and-found event (the
    tuning suite of the lost-and-found study); the ground truth re-finds every reappearance it scores."""
    bench = _script()
    work, out = tmp_path / "work", tmp_path / "all.json"
    args = ["--suite", "lost", "--work", str(work), "--num", "3", "--no-shipped", "--json", str(out)]
    assert bench.main([*args, "--grid-oracle", "240x320"]) == 0  # the suite's frame size: the ground truth
    videos = json.loads((work / "data" / "attributes.json").read_text())["videos"]
    assert len(videos) == 3
    for attrs in videos.values():
        assert {"hide", "exit", "decoy"} & set(attrs["tags"]), attrs["tags"]
    oracle = json.loads(out.read_text())["gt-at-240x320"]["refound"]["global"]
    assert oracle["events"] >= 1 and oracle["found"] == oracle["events"]
    assert "lost suite: 3 videos" in capsys.readouterr().out


def test_exits_suite_gives_every_video_an_exit_and_no_look_alikes(tmp_path, capsys):
    """``--suite exits``: the first suite's recipes at a third seed, each with an exit and nothing else of
    the lost-and-found events (a tuning suite for re-finding an object that comes back elsewhere)."""
    bench = _script()
    work, out = tmp_path / "work", tmp_path / "all.json"
    args = ["--suite", "exits", "--work", str(work), "--num", "2", "--no-shipped", "--json", str(out)]
    assert bench.main(args) == 0
    videos = json.loads((work / "data" / "attributes.json").read_text())["videos"]
    assert len(videos) == 2
    for video in videos.values():
        assert "exit" in video["tags"] and not {"hide", "decoy"} & set(video["tags"]), video["tags"]
    found = json.loads(out.read_text())["copy-first-mask"]["refound"]["global"]
    assert found["events"] >= 2  # each video's exit at least
    assert "exits suite: 2 videos" in capsys.readouterr().out


def _write_work(work: Path, frames: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """An accuracy.py work folder with one video ``v`` (grey frames), its ground truth and prediction ``p``:
    ``frames`` is ``[(truth, prediction), ...]`` as index masks."""
    from PIL import Image

    from tamvt.data.palette import write_index_png

    data, pred = work / "data", work / "pred" / "p" / "v"
    (data / "JPEGImages/480p/v").mkdir(parents=True)
    (data / "ImageSets/2017").mkdir(parents=True)
    (data / "ImageSets/2017/val.txt").write_text("v\n")
    for t, (gt, mask) in enumerate(frames):
        Image.fromarray(np.full((*gt.shape, 3), 90, np.uint8)).save(data / f"JPEGImages/480p/v/{t:05d}.jpg")
        write_index_png(data / f"Annotations/480p/v/{t:05d}.png", gt)
        write_index_png(pred / f"{t:05d}.png", mask)


def test_part_stillness_script_finds_the_still_false_part(tmp_path, capsys):
    stillness = _script("part_stillness")
    frames = []
    for t in range(10):  # object 1 moves 3 px right per frame; the prediction adds a still square far away
        gt = np.zeros((60, 120), np.uint8)
        gt[20:30, 5 + 3 * t : 15 + 3 * t] = 1
        mask = gt.copy()
        mask[20:30, 90:100] = 1
        frames.append((gt, mask))
    _write_work(tmp_path, frames)
    assert stillness.main(["--work", str(tmp_path), "--pred", "p"]) == 0
    out = capsys.readouterr().out
    assert "4 parts in frames with two or more: 2 false, 2 true" in out  # frames 8 and 9
    assert "false k=1: stillness quantiles 10/25/50/75/90 %: 1.00 1.00 1.00 1.00 1.00" in out
    assert "true  k=1: stillness quantiles 10/25/50/75/90 %: 0.70 0.70 0.70 0.70 0.70" in out  # 7 of 10 columns
    assert "k=8: the false part is the stiller one in 2 of 2 frames" in out


def test_refound_misses_names_what_each_missed_return_shows(tmp_path, capsys):
    misses = _script("refound_misses")
    frames = []
    for t in range(16):  # four still squares, all hidden in frames 5-7; each prediction does something else after
        gt, mask = np.zeros((40, 160), np.uint8), np.zeros((40, 160), np.uint8)
        for k in range(4):
            if not 5 <= t <= 7:
                gt[10:20, 10 + 40 * k : 20 + 40 * k] = k + 1
        mask[gt == 1] = 1  # object 1 followed throughout: re-found
        if t < 5:
            mask[gt > 1] = gt[gt > 1]
        else:
            mask[30:36, 100:106] = 3  # object 3: a blob elsewhere; object 2: nothing
            if t >= 8:
                mask[10:20, 130:133] = 4  # object 4: a third of it (J 0.3)
        frames.append((gt, mask))
    _write_work(tmp_path, frames)
    assert misses.main(["--work", str(tmp_path), "--pred", "p"]) == 0
    out = capsys.readouterr().out
    assert "p v:2 frame 8 (absent 3): 00000000 -> empty" in out
    assert "p v:3 frame 8 (absent 3): xxxxxxxx -> elsewhere" in out
    assert "p v:4 frame 8 (absent 3): pppppppp -> partial" in out
    assert "v:1 frame" not in out
    assert "p: 1 of 4 re-found; missed 3: empty 1, elsewhere 1, partial 1" in out
    (tmp_path / "pred/p/v/00009.png").unlink()  # a missing mask: one line naming it, exit 1
    assert misses.main(["--work", str(tmp_path), "--pred", "p"]) == 1
    assert "00009.png" in capsys.readouterr().err
