"""The training summary shipped beside an exported model is computed from metrics.jsonl correctly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_training_summary_counts_time_and_resumes(tmp_path):
    from tamvt.train.export import training_summary

    _write(
        tmp_path / "metrics.jsonl",
        [
            {"event": "start", "step": 0},
            {"event": "train", "step": 10, "total": 9.0, "steps_per_s": 2.0},  # 5 s
            {"event": "train", "step": 20, "total": 8.0, "steps_per_s": 1.0},  # 10 s
            {"event": "val", "step": 20, "J": 0.5, "J&F": 0.55, "J_tr": 0.4, "seconds": 3.0},
            {"event": "train", "step": 30, "total": 7.0, "steps_per_s": 0.5},  # lost: killed before a checkpoint
            {"event": "start", "step": 20},  # resumed from step 20
            {"event": "train", "step": 30, "total": 6.5, "steps_per_s": 4.0},  # 2.5 s, replaces the lost record
            {"event": "train", "step": 40, "total": 6.0, "steps_per_s": 5.0},  # 2 s
            {"event": "val", "step": 40, "J": 0.7, "J&F": 0.75, "J_tr": 0.6, "seconds": 3.0},
        ],
    )
    s = training_summary(tmp_path)
    assert s["steps"] == 40 and s["resumes"] == 1 and s["final_loss"] == 6.0
    assert s["train_seconds"] == pytest.approx(19.5)
    assert s["val"] == [
        {"step": 20, "J": 0.5, "J&F": 0.55, "J_tr": 0.4},
        {"step": 40, "J": 0.7, "J&F": 0.75, "J_tr": 0.6},
    ]


def test_training_summary_needs_metrics(tmp_path):
    from tamvt.errors import InputError
    from tamvt.train.export import training_summary

    with pytest.raises(InputError, match="metrics.jsonl"):
        training_summary(tmp_path)


def test_reproducing_command_gives_back_the_config():
    """The summary's command: the preset plus the overrides that turn it into the run's config; parsed
    back (as a shell would) and loaded, it gives the same config. Not a preset: the run's config.yaml."""
    import shlex

    from tamvt.train.config import config_to_dict, load_train_config
    from tamvt.train.export import reproducing_command

    overrides = [
        "optim.lr=1.0e-05",
        "data.crop_size=[64,80]",
        "init_from=runs/a b/x.safetensors",
        "optim.lr_rte=null",
        "run.seed=3",
        "data.hflip_prob=0.25",
    ]
    cfg = load_train_config("synthetic-small", overrides)
    command = reproducing_command(Path("runs/x"), cfg)
    words = shlex.split(command)
    assert words[:5] == ["tamvt", "train", "synthetic-small", "--out", "runs/x"]
    assert len(words) == 5 + 5  # optim.lr_rte=null is the preset's own value: not an override
    again = load_train_config("synthetic-small", [*words[5:], f"run.out_dir={cfg.run.out_dir}"])
    assert config_to_dict(again) == config_to_dict(cfg)
    plain = load_train_config("synthetic-small")
    assert reproducing_command(Path("runs/y"), plain) == "tamvt train synthetic-small --out runs/y"
