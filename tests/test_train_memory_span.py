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

    cfg = load_train_config(tiny_config(), [f"data.window_length={window}", f"data.num_memory={num_memory}",
                                            f"data.clip_length={clip}", f"model.bank_size={bank}"])
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
