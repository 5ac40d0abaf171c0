"""Training with the matching's positions dropped (``optim.position_drop``): a share of the clips of a
training window read the memory by appearance alone (``step_clip(free=True)``), every clip or only those
right after a frame where the target is out of view (``optim.position_drop_when=lost``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.train_tiny import write_tiny

from tamvt.errors import TamvtError
from tamvt.memory import MemoryBank, step_clip
from tamvt.train import unroll as unroll_module
from tamvt.train.config import load_train_config
from tamvt.train.trainer import WindowModel
from tamvt.train.unroll import unroll_window


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny(tmp_path_factory.mktemp("drop") / "tiny.yaml")


@pytest.fixture(scope="module")
def net(tiny):
    from tamvt.models.tamvt import build_tamvt

    torch.manual_seed(0)
    return build_tamvt(load_train_config(tiny).model).eval()


@pytest.fixture()
def clips_read_freely(monkeypatch):
    """The ``free`` of every clip step the unroll makes, in order (the real step runs)."""
    seen: list[bool] = []

    def spy(*args, free=False, **kwargs):
        seen.append(free)
        return step_clip(*args, free=free, **kwargs)

    monkeypatch.setattr(unroll_module, "step_clip", spy)
    return seen


def _window(t: int = 8):
    torch.manual_seed(1)
    return torch.randn(t, 3, 64, 64), (torch.rand(1, 2, 64, 64) > 0.5).float()


def test_step_clip_free_reads_by_appearance(net):
    frames, masks = _window()
    with torch.no_grad():
        feats = net.encode_frames(frames[:3], free=True)
        entry = net.encode_memory(feats.select(0), masks[:, :1])
        clip = feats.select(2)
        bank = MemoryBank(capacity=4)
        bank.add(entry, frame=0)
        plain = step_clip(net, bank, clip, update_memory=False)
        free = step_clip(net, bank, clip, update_memory=False, free=True)
        by_look = net.decode(clip, net.match(clip, [entry], free=True))
    assert torch.equal(free.logits[-1], by_look[-1])
    assert (free.logits[-1] - plain.logits[-1]).abs().max() > 1e-3


def test_which_clips_drop_the_positions(net, clips_read_freely):
    frames, masks = _window()  # 2 memory frames, 6 query frames: clips start at window frames 2, 4, 6
    with torch.no_grad():
        unroll_window(net, frames, masks, 2, 2)
        assert clips_read_freely == [False] * 3
        clips_read_freely.clear()
        unroll_window(net, frames, masks, 2, 2, position_drop=1.0)
        assert clips_read_freely == [True] * 3
        clips_read_freely.clear()
        shown = torch.tensor([True, True, True, False, True, True, True, True])  # out of view in frame 3
        unroll_window(net, frames, masks, 2, 2, position_drop=1.0, shown=shown)
        assert clips_read_freely == [False, True, False]  # only the clip that starts after frame 3
        clips_read_freely.clear()
        torch.manual_seed(0)
        for _ in range(20):
            unroll_window(net, frames, masks, 2, 2, position_drop=0.5)
        assert 15 <= sum(clips_read_freely) <= 45  # 60 draws at 0.5
        with pytest.raises(ValueError, match="shown must be"):
            unroll_window(net, frames, masks, 2, 2, position_drop=1.0, shown=shown[:5])


def test_window_model_drops_only_in_training(net, clips_read_freely):
    frames, masks = _window()
    window = WindowModel(net, 2, None, position_drop=1.0)
    with torch.no_grad():
        window(frames, masks, 2)  # the net is in eval mode: validation never drops
        assert clips_read_freely == [False] * 3
        net.train()
        try:
            window(frames, masks, 2)
        finally:
            net.eval()
    assert clips_read_freely[3:] == [True] * 3


def test_config(tiny):
    cfg = load_train_config(tiny, ["optim.position_drop=0.5", "optim.position_drop_when=lost"])
    assert (cfg.optim.position_drop, cfg.optim.position_drop_when) == (0.5, "lost")
    assert load_train_config(tiny).optim.position_drop == 0.0
    with pytest.raises(TamvtError, match="position_drop"):
        load_train_config(tiny, ["optim.position_drop=1.5"])
    with pytest.raises(TamvtError):
        load_train_config(tiny, ["optim.position_drop_when=sometimes"])
