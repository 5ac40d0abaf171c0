"""The training summary shipped beside an exported model is computed from metrics.jsonl correctly."""

from __future__ import annotations

import json

import pytest


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_training_summary_counts_time_and_resumes(tmp_path):
    from tamvt.train.export import training_summary

    _write(tmp_path / "metrics.jsonl", [
        {"event": "start", "step": 0},
        {"event": "train", "step": 10, "total": 9.0, "steps_per_s": 2.0},   # 5 s
        {"event": "train", "step": 20, "total": 8.0, "steps_per_s": 1.0},   # 10 s
        {"event": "val", "step": 20, "J": 0.5, "J&F": 0.55, "J_tr": 0.4, "seconds": 3.0},
        {"event": "train", "step": 30, "total": 7.0, "steps_per_s": 0.5},   # lost: killed before a checkpoint
        {"event": "start", "step": 20},                                     # resumed from step 20
        {"event": "train", "step": 30, "total": 6.5, "steps_per_s": 4.0},   # 2.5 s, replaces the lost record
        {"event": "train", "step": 40, "total": 6.0, "steps_per_s": 5.0},   # 2 s
        {"event": "val", "step": 40, "J": 0.7, "J&F": 0.75, "J_tr": 0.6, "seconds": 3.0},
    ])
    s = training_summary(tmp_path)
    assert s["steps"] == 40 and s["resumes"] == 1 and s["final_loss"] == 6.0
    assert s["train_seconds"] == pytest.approx(19.5)
    assert s["val"] == [{"step": 20, "J": 0.5, "J&F": 0.55, "J_tr": 0.4}, {"step": 40, "J": 0.7, "J&F": 0.75, "J_tr": 0.6}]


def test_training_summary_needs_metrics(tmp_path):
    from tamvt.errors import InputError
    from tamvt.train.export import training_summary

    with pytest.raises(InputError, match="metrics.jsonl"):
        training_summary(tmp_path)
