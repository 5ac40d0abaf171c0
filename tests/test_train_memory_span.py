"""Training windows and the memory sizes they train (issue 15, item 3).

The RTE table has one block per memory size; a block is trained only when some clip of a training
window is matched against that many entries. ``TrainConfig.window_memory_sizes`` predicts those
sizes from the config; here it is checked against what the unroll actually does, and the note
``tamvt train`` prints is checked for the shipped preset (windows of 12 frames fill the memory to 6
of 9 entries) and for the long-span preset (18 frames: all 9).
"""

from __future__ import annotations

import pytest
import torch

from tamvt.train.config import load_train_config
from tamvt.train.unroll import unroll_window


@pytest.mark.parametrize("window,num_memory,clip,bank", [(12, 2, 2, 9), (9, 2, 2, 4), (7, 1, 3, 4), (6, 3, 1, 3)])
def test_predicted_sizes_match_the_unroll(tiny_config, window, num_memory, clip, bank):
    from tamvt.models.tamvt import build_tamvt

    cfg = load_train_config(
        tiny_config(),
        [
            f"data.window_length={window}",
            f"data.num_memory={num_memory}",
            f"data.clip_length={clip}",
            f"model.bank_size={bank}",
        ],
    )
    torch.manual_seed(0)
    net = build_tamvt(cfg.model).eval()
    frames = torch.randn(window, 3, 64, 64)
    masks = (torch.rand(1, num_memory, 64, 64) > 0.5).float()
    with torch.inference_mode():
        out = unroll_window(net, frames, masks, num_memory, cfg.clip_length)
    assert out.memory_sizes == cfg.window_memory_sizes()
    assert max(out.memory_sizes) <= bank


def test_note_for_the_shipped_and_long_span_presets():
    short = load_train_config("synthetic-small")
    assert short.window_memory_sizes() == [2, 3, 4, 5, 6]
    note = short.untrained_rte_note()
    assert note is not None and "7..9" in note and "data.window_length >= 17" in note
    # the smallest window the note asks for really does fill the bank
    assert max(load_train_config("synthetic-small", ["data.window_length=17"]).window_memory_sizes()) == 9
    assert max(load_train_config("synthetic-small", ["data.window_length=16"]).window_memory_sizes()) == 8
    long = load_train_config("synthetic-long")
    assert max(long.window_memory_sizes()) == long.model.bank_size == 9
    assert long.untrained_rte_note() is None
    assert load_train_config("synthetic-small", ["model.rte=none"]).untrained_rte_note() is None


def test_rte_table_gets_its_own_learning_rate(tiny_config):
    from tamvt.models.matching import RTE_KEY
    from tamvt.models.tamvt import build_tamvt
    from tamvt.train.optim import StepSchedule, param_groups

    cfg = load_train_config(tiny_config(), ["optim.lr_rte=3e-3"])
    net = build_tamvt(cfg.model)
    o = cfg.optim
    groups = param_groups(net, o.lr, o.lr_backbone, o.weight_decay, lr_rte=o.lr_rte)
    by_name = {g["name"]: g for g in groups}
    rte = dict(net.named_parameters())[RTE_KEY]
    assert [id(p) for p in by_name["rte"]["params"]] == [id(rte)]
    assert all(id(p) != id(rte) for g in groups if g["name"] != "rte" for p in g["params"])
    assert sum(len(g["params"]) for g in groups) == len([p for p in net.parameters() if p.requires_grad])
    opt = torch.optim.AdamW(groups)
    StepSchedule("paper", 10, milestones=(5,)).apply(opt, 5)  # the schedule scales it like the others
    assert {g["name"]: g["lr"] for g in opt.param_groups}["rte"] == pytest.approx(3e-4)
    # one AdamW step moves the RTE scalars by about their own learning rate
    rte.grad = torch.ones_like(rte)
    before = rte.detach().clone()
    for g in opt.param_groups:
        g["lr"] = g["base_lr"]
    opt.step()
    assert (before - rte.detach()).abs().mean().item() == pytest.approx(3e-3, rel=0.05)
    # without lr_rte the table stays in the main group
    assert [g["name"] for g in param_groups(net, o.lr, o.lr_backbone, o.weight_decay)] == ["rest", "backbone"]
    with pytest.raises(Exception, match="lr_rte"):
        load_train_config(tiny_config(), ["optim.lr_rte=0"])
