"""The shipped default model and `tamvt demo` (the README's main command)."""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

TAMVT = [sys.executable, "-m", "tamvt.cli"]


@pytest.mark.parametrize("name", ["mini-synthetic", "mini-synthetic-base"])
def test_shipped_models_are_small_trained_and_described(name):
    """Each model in the package: small, EMA weights of the tamvt-mini preset, and described by its .json
    with a command whose preset and overrides give back the training config it was trained with."""
    from tamvt.checkpoint import read_checkpoint, shipped_model_path
    from tamvt.config import load_preset, to_dict
    from tamvt.hub.registry import resolve_checkpoint

    path = resolve_checkpoint(name)
    assert path.stat().st_size <= 25 * 2**20
    _, cfg, meta = read_checkpoint(path)
    assert to_dict(cfg.model) == to_dict(load_preset("tamvt-mini").model)
    summary = json.loads(path.with_suffix(".json").read_text())
    assert meta["weights"] == "ema" and meta["run"] == summary["run"]
    assert summary["steps"] == meta["step"] and summary["train_seconds"] > 0
    assert summary["val"] and summary["val"][-1]["step"] == summary["steps"]
    # the settings it runs with by default (a summary older than a setting lacks it)
    assert summary["inference"].items() <= to_dict(cfg.inference).items()
    command = shlex.split(summary["command"])
    assert command[:3] == ["tamvt", "train", summary["run"]] and command[3] == "--out"
    overrides = command[5:]
    if name == "mini-synthetic":  # the default: fine-tuned from the base at 160 px, run at 192 with spread memory
        assert path == shipped_model_path() and "data.synthetic_size=[160,213]" in overrides  # and local search
        assert (cfg.inference.short_side, cfg.inference.memory, cfg.inference.search_window) == (192, "spread", 0.5)
        assert cfg.inference.presence  # lost and found: re-found 80 -> 90 % and 53.7 -> 70.7 % on the two suites
        # the look bound (an unlike mask that shrank, two frames in a row) and the search by look: re-found
        # 73.2 -> 80.5 % on the second suite, every lost-and-found target met on both suites
        inf = cfg.inference
        assert (inf.presence_likeness, inf.presence_likeness_peak, inf.presence_likeness_frames) == (0.8, 0.3, 2)
        assert inf.presence_find == 0.8 and not inf.presence_likeness_recent
    else:  # trained from scratch by the preset as shipped
        assert overrides == [] and summary["run"] == "synthetic-small" and cfg.inference.memory == "fifo"
    # the shipped training preset with those overrides still reproduces the model (nobody changed it after)
    from tamvt.train.config import config_to_dict, load_train_config

    run = summary["train"]["run"]  # where it was written and whether it drew progress bars: not training
    preset = load_train_config(
        summary["run"], [*overrides, f"run.out_dir={run['out_dir']}", f"run.progress={run['progress']}"]
    )
    now = config_to_dict(preset)
    # settings added to the schema after training must hold their defaults (which keep the old behaviour)
    import dataclasses

    from tamvt.train.config import TrainConfig

    for field in dataclasses.fields(TrainConfig):
        section, then = now.get(field.name), summary["train"].get(field.name)
        if not isinstance(section, dict) or not isinstance(then, dict):
            continue
        added = {k: v for k, v in section.items() if k not in then}
        defaults = to_dict(field.default_factory())
        assert added == {k: v for k, v in defaults.items() if k in added}, field.name
        now[field.name] = {k: v for k, v in section.items() if k not in added}
    assert now == summary["train"]


def j_tr_by_hand(gt_pngs: list, pred_pngs: list) -> float:
    """VOST's J_tr of one DAVIS-layout sequence from its PNGs, in numpy: for each object id of the first
    ground truth, IoU on the annotated frames but the first and the last (1 when both masks are
    empty), averaged over the last N - floor(0.75 N) of them; then the mean over objects."""
    gts = [np.array(Image.open(p)) for p in gt_pngs]
    preds = {p.stem: np.array(Image.open(p)) for p in pred_pngs}
    evaluated = list(zip(gt_pngs, gts, strict=True))[1:-1]
    scores = []
    for obj in range(1, int(gts[0][gts[0] != 255].max()) + 1):
        ious = []
        for path, gt in evaluated:
            g, q = gt == obj, preds[path.stem] == obj
            union = np.count_nonzero(g | q)
            ious.append(1.0 if union == 0 else np.count_nonzero(g & q) / union)
        scores.append(np.mean(ious[math.floor(0.75 * len(ious)) :]))
    return float(np.mean(scores))


def test_demo_end_to_end(tmp_path):
    """Synthetic video -> shipped model -> palette PNGs, a decodable overlay video, a report whose
    scores only a trained model reaches (an untrained one scores J&F < 0.2 here) and whose J_tr is
    the one recomputed here from the PNGs."""
    from tamvt.data.palette import read_index_png
    from tamvt.data.video import probe_video

    out = tmp_path / "demo"
    r = subprocess.run([*TAMVT, "demo", "--out", str(out)], check=False, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "J&F" in r.stdout and "frame" in r.stderr  # the report table and the progress bars
    seq = out / "pred" / "demo-000"
    pngs = sorted(seq.glob("*.png"))
    assert len(pngs) == 48
    mask, _ = read_index_png(pngs[-1])
    assert mask.shape == (240, 320) and set(np.unique(mask)) <= {0, 1, 2}
    frames, size, _ = probe_video(out / "overlay.mp4")
    assert frames == 48 and size == (240, 320)
    report = json.loads((out / "report.json").read_text())
    g = report["global"]
    assert g["J&F-Mean"] > 0.5
    j_tr = g["J_tr-Mean"]  # JSON null would mean NaN: no object had an evaluated frame
    assert isinstance(j_tr, float) and math.isfinite(j_tr) and 0.0 < j_tr <= 1.0
    assert report["per_object"] and all(o["J_tr-Mean"] is not None for o in report["per_object"])
    gt_pngs = sorted((out / "data" / "Annotations" / "480p" / "demo-000").glob("*.png"))
    assert len(gt_pngs) == 48
    assert j_tr == pytest.approx(j_tr_by_hand(gt_pngs, pngs), abs=1e-9)


def test_demo_bad_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    r = subprocess.run(
        [*TAMVT, "demo", "--out", str(tmp_path / "o"), "--checkpoint", str(bad), "--quiet"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "bad.safetensors" in r.stderr
