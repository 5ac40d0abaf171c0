"""Unit tests of the trainer's parts: schedules, parameter groups, EMA, config presets, data order,
RNG capture, atomic checkpoints. Expected numbers are worked out by hand in the comments."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from tamvt.errors import InputError, TamvtError
from tamvt.train.optim import StepSchedule, build_schedule, clip_grad_norm, param_groups

# ------------------------------------------------------------------------------------ schedules


def test_paper_schedule_drops_at_epochs_8_and_16():
    # 20 epochs of 10 steps, x0.1 at epochs 8 and 16, no warm-up
    s = build_schedule("paper", 200, 10, True, (8, 16), 0.1, 0, 0.0)
    assert s.warmup_steps == 0
    assert [s.factor(i) for i in (0, 79)] == [1.0, 1.0]
    assert s.factor(80) == pytest.approx(0.1) and s.factor(159) == pytest.approx(0.1)
    assert s.factor(160) == pytest.approx(0.01) and s.factor(199) == pytest.approx(0.01)


def test_authors_schedule_warmup_milestones_and_final_drop():
    # 150 epochs of 2 steps = 300 steps; 1 % warm-up = 3 steps; x0.1 at 60, 120 and for the last 10 epochs
    s = build_schedule("authors", 300, 2, True, (60, 120), 0.1, 10, 0.01)
    assert s.warmup_steps == 3
    assert [s.factor(i) for i in (0, 1, 2)] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert s.factor(119) == 1.0  # epoch 59
    assert s.factor(120) == pytest.approx(0.1)  # epoch 60
    assert s.factor(240) == pytest.approx(0.01)  # epoch 120
    assert s.factor(279) == pytest.approx(0.01)  # epoch 139
    assert s.factor(280) == pytest.approx(0.001)  # epoch 140 = 150 - 10
    assert s.factor(299) == pytest.approx(0.001)


def test_step_counted_schedule_and_constant():
    s = build_schedule("paper", 100, 7, False, (50,), 0.5, 0, 0.1)  # milestones in steps
    assert s.steps_per_epoch == 1 and s.warmup_steps == 10
    assert s.factor(4) == pytest.approx(0.5) and s.factor(49) == 1.0 and s.factor(50) == 0.5
    c = StepSchedule("constant", 10, warmup_steps=2)
    assert [c.factor(i) for i in range(4)] == [0.5, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError):
        StepSchedule("cosine", 10)


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.ModuleDict({"conv1": nn.Linear(2, 2), "layer2": nn.Linear(2, 2)})
        self.head = nn.Linear(2, 1)
        self.backbone["conv1"].requires_grad_(False)  # frozen stem
        self.register_buffer("count", torch.zeros((), dtype=torch.long))


def test_param_groups_and_schedule_apply():
    m = _Toy()
    groups = param_groups(m, lr=1e-4, lr_backbone=2e-5, weight_decay=1e-4)
    assert [g["name"] for g in groups] == ["rest", "backbone"]
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in m.head.parameters()}
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in m.backbone["layer2"].parameters()}
    opt = torch.optim.AdamW(groups)
    StepSchedule("paper", 10, milestones=(5,)).apply(opt, 5)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-5, 2e-6])
    # lr_backbone = 0: the authors freeze the backbone
    m2 = _Toy()
    groups = param_groups(m2, 1e-4, 0.0, 1e-4)
    assert len(groups) == 1 and not any(p.requires_grad for p in m2.backbone.parameters())


def test_clip_grad_norm_reports_the_norm_before_clipping():
    p = nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([3.0, 4.0])
    assert clip_grad_norm([p], 0.0) == pytest.approx(5.0)
    assert torch.equal(p.grad, torch.tensor([3.0, 4.0]))
    assert clip_grad_norm([p], 0.1) == pytest.approx(5.0)
    assert p.grad.norm().item() == pytest.approx(0.1, rel=1e-4)


# ------------------------------------------------------------------------------------------ EMA


def test_ema_update_and_load():
    from tamvt.train.ema import ModelEma

    m = _Toy()
    with torch.no_grad():
        m.head.weight.zero_()
    ema = ModelEma(m, decay=0.9)
    with torch.no_grad():
        m.head.weight.fill_(1.0)
    m.count.fill_(7)
    ema.update(m)  # 0.9 * 0 + 0.1 * 1
    assert torch.allclose(ema.state["head.weight"], torch.full((1, 2), 0.1))
    ema.update(m)  # 0.9 * 0.1 + 0.1 * 1 = 0.19
    assert torch.allclose(ema.state["head.weight"], torch.full((1, 2), 0.19))
    assert ema.state["count"].item() == 7  # integer buffers are copied
    other = _Toy()
    ema.copy_to(other)
    assert torch.allclose(other.head.weight, torch.full((1, 2), 0.19))
    with pytest.raises(KeyError):
        ema.load_state_dict({"head.weight": torch.zeros(1, 2)})


# --------------------------------------------------------------------------------------- config


def test_presets_load_with_the_recipes():
    from tamvt.train.config import load_train_config, train_preset_names

    assert set(train_preset_names()) >= {
        "pretrain-static",
        "finetune-vost",
        "finetune-vost-authors",
        "finetune-davis",
        "synthetic-small",
    }
    paper = load_train_config("finetune-vost")
    o = paper.optim
    assert (o.lr, o.lr_backbone, o.weight_decay, o.epochs, o.milestones, o.schedule) == (
        2e-4,
        1e-5,
        1e-4,
        20,
        (8, 16),
        "paper",
    )
    assert paper.data.window_length == 12 and paper.data.num_memory == 2 and paper.clip_length == 2
    authors = load_train_config("finetune-vost-authors")
    o = authors.optim
    assert (
        o.lr,
        o.lr_backbone,
        o.epochs,
        o.milestones,
        o.final_drop,
        o.warmup_fraction,
        o.grad_clip,
        o.ema_decay,
        o.schedule,
    ) == (1e-4, 2e-5, 150, (60, 120), 10, 0.01, 0.1, 0.9998, "authors")
    assert authors.model.backbone == "resnet50" and authors.model.bank_size == 9
    static = load_train_config("pretrain-static")
    assert (static.data.source, static.data.window_length, static.data.num_memory, static.clip_length) == (
        "static",
        6,
        2,
        3,
    )
    small = load_train_config("synthetic-small")
    assert small.model.backbone == "resnet18" and small.data.source == "synthetic" and small.val.source == "synthetic"


def test_overrides_and_errors(tmp_path):
    from tamvt.train.config import load_train_config

    cfg = load_train_config(
        "finetune-vost", ["optim.lr=3e-4", "data.reverse_prob=0.5", "model_preset=tamvt-small", "optim.steps=50"]
    )
    assert cfg.optim.lr == 3e-4 and cfg.data.reverse_prob == 0.5 and cfg.optim.steps == 50
    assert cfg.model.backbone == "resnet18" and cfg.model.bank_size == 7  # the file's model fields still win
    with pytest.raises(TamvtError, match="unknown config key"):
        load_train_config("finetune-vost", ["optim.learning_rate=1"])
    with pytest.raises(TamvtError, match="invalid value"):
        load_train_config("finetune-vost", ["optim.schedule=cosine"])
    assert load_train_config("synthetic-small", ["data.max_skip=3"]).data.max_skip == 3
    with pytest.raises(TamvtError, match="data.max_skip must be >= 1"):
        load_train_config("synthetic-small", ["data.max_skip=0"])
    with pytest.raises(InputError, match="unknown training preset"):
        load_train_config("no-such-preset")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {epochs: 0}\n")
    with pytest.raises(InputError, match="bad.yaml: optim.epochs must be >= 1"):
        load_train_config(bad)


# ----------------------------------------------------------------------------------- data order


def test_sharded_order_covers_the_epoch_and_resumes():
    from tamvt.train.data import ShardedOrder, steps_per_epoch

    r0 = list(ShardedOrder(5, 0, 2, seed=3, epoch=0))
    r1 = list(ShardedOrder(5, 1, 2, seed=3, epoch=0))
    assert len(r0) == len(r1) == steps_per_epoch(5, 2) == 3
    assert set(r0) | set(r1) == set(range(5))  # one index is repeated to pad 5 -> 6
    assert list(ShardedOrder(5, 0, 2, seed=3, epoch=0, start=2)) == r0[2:]
    assert list(ShardedOrder(5, 0, 1, seed=3, epoch=1)) != list(ShardedOrder(5, 0, 1, seed=3, epoch=0))
    assert list(ShardedOrder(4, 0, 1, seed=0, epoch=0, shuffle=False)) == [0, 1, 2, 3]


# -------------------------------------------------------------------------------------- state


def test_rng_roundtrip_through_a_weights_only_checkpoint(tmp_path):
    from tamvt.train.state import atomic_torch_save, capture_rng, load_run_state, make_checkpoint, restore_rng

    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = capture_rng()
    first = (random.random(), np.random.rand(), torch.rand(3))
    cfg = {"name": "x", "model": {"hidden_dim": 32}}
    path = tmp_path / "last.pt"
    atomic_torch_save(
        make_checkpoint(
            config=cfg,
            step=5,
            epoch=1,
            epoch_step=2,
            model={"w": torch.ones(2)},
            ema=None,
            optimizer={"state": {}, "param_groups": []},
            rng=[state],
        ),
        path,
    )
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind
    ckpt = load_run_state(path, expected_model={"hidden_dim": 32})
    assert (ckpt["step"], ckpt["epoch"], ckpt["epoch_step"]) == (5, 1, 2)
    random.random(), np.random.rand(), torch.rand(3)  # move the generators on
    restore_rng(ckpt["rng"][0])
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert again[0] == first[0] and again[1] == first[1] and torch.equal(again[2], first[2])


# ------------------------------------------------------------------------- dataset source end to end


def test_davis_layout_training_and_validation(tmp_path, tiny_config):
    """Train 2 steps on a DAVIS-layout folder (written by ``tamvt synth``) and validate on its val split."""
    from tamvt.cli import main
    from tamvt.train.data import build_train_dataset
    from tamvt.train.metrics_log import read_metrics

    root = tmp_path / "davis"
    assert main(["synth", str(root), "--preset", "tiny"]) == 0
    cfg_path = tiny_config(
        "davis.yaml",
        optim={"steps": 2},
        run={"checkpoint_every": 2},
        data={"source": "davis", "root": str(root), "split": "train", "window_length": 5, "crop_size": [64, 80]},
        val={"source": "davis", "split": "val", "num_videos": 1, "short_side": 64},
    )
    from tamvt.train.config import load_train_config

    cfg = load_train_config(cfg_path)
    ds = build_train_dataset(cfg.data, seed=0)
    assert len(ds) == 5  # tiny suite: 2 + 2 + 1 objects = (video, object) pairs
    sample = ds[0]
    assert sample.frames.shape == (5, 3, 64, 80) and sample.num_memory == 2
    out = tmp_path / "run"
    assert main(["train", str(cfg_path), "--out", str(out)]) == 0
    records = read_metrics(out / "metrics.jsonl")
    val = [r for r in records if r["event"] == "val"]
    assert len(val) == 1 and val[0]["objects"] == 2 and 0.0 <= val[0]["J"] <= 1.0
    assert [r["step"] for r in records if r["event"] == "checkpoint"] == [2]


def test_static_source_builds_pseudo_videos(tmp_path):
    from PIL import Image

    from tamvt.train.config import load_train_config
    from tamvt.train.data import build_train_dataset

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(tmp_path / "images" / f"{i}.jpg")
        mask = np.zeros((60, 80), np.uint8)
        mask[10:40, 20:50] = 255  # a binary saliency mask
        Image.fromarray(mask).save(tmp_path / "masks" / f"{i}.png")
    cfg = load_train_config("pretrain-static", [f"data.root={tmp_path}", "data.crop_size=[48, 64]"])
    ds = build_train_dataset(cfg.data, seed=0)
    sample = ds[1]
    assert len(ds) == 2 and sample.frames.shape == (6, 3, 48, 64) and sample.num_memory == 2
    assert sample.masks[0].any()


def test_validation_leaves_the_training_rng_untouched(tmp_path, tiny_config):
    """Validation builds a fresh eval model (random init draws): the training RNG streams must come out
    unchanged, or a run resumed from a checkpoint saved just before a validation would diverge."""
    from tamvt.train.config import load_train_config
    from tamvt.train.trainer import Trainer

    cfg = load_train_config(
        tiny_config(
            "t.yaml",
            val={
                "source": "synthetic",
                "synthetic_preset": "tiny",
                "num_videos": 1,
                "synthetic_size": [64, 64],
                "synthetic_frames": 12,
            },
        )
    )
    trainer = Trainer(cfg, tmp_path / "run")
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    before = (torch.get_rng_state().clone(), np.random.get_state()[1].copy(), random.getstate())
    scores = trainer.run_validation()
    assert 0.0 <= scores["J"] <= 1.0
    assert torch.equal(torch.get_rng_state(), before[0])
    assert np.array_equal(np.random.get_state()[1], before[1]) and random.getstate() == before[2]
