"""Memory policies (``inference.memory``): what the bank holds after many clips, the RTE rows of
non-contiguous entries, confidence gating, and the predictor's outputs equal to FIFO while the bank
never fills."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tamvt.checkpoint import save_checkpoint
from tamvt.config import InferenceConfig, TamvtConfig, apply_overrides, load_preset
from tamvt.errors import TamvtError
from tamvt.inference.predictor import Predictor
from tamvt.memory import OUTSIDE_LOGIT, MemoryBank, confident, mask_confidence, search_region, step_clip
from tamvt.models.matching import rte_rows
from tamvt.models.tamvt import MemoryEntry, build_tamvt

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def dummy(objects: int = 1) -> MemoryEntry:
    return MemoryEntry(keys=(torch.zeros(4, 8),), values=(torch.zeros(objects, 4, 8),))


def fill(bank: MemoryBank, clips: int, clip_length: int = 2) -> MemoryBank:
    """Reference at frame 0, then the last frame of each of ``clips`` clips (2, 4, ..., as the predictor)."""
    bank.add(dummy(), reference=True, frame=0)
    for k in range(1, clips + 1):
        bank.add(dummy(), frame=clip_length * k)
    return bank


def test_fifo_after_50_clips():
    bank = fill(MemoryBank(9), 50)
    assert bank.policy == "fifo"
    assert bank.frames == [0, 86, 88, 90, 92, 94, 96, 98, 100]


def test_spread_after_50_clips():
    # default: the 2 newest by FIFO, 6 long-term slots spread between the reference and them
    bank = fill(MemoryBank(9, "spread"), 50)
    assert bank.recent == 2
    assert bank.frames == [0, 16, 24, 36, 52, 66, 80, 98, 100]
    gaps = np.diff(bank.frames[:8])
    assert gaps.max() <= 2.5 * gaps.min()  # evenly spread: no gap much larger than another
    bank = fill(MemoryBank(9, "spread", recent=4), 50)
    assert bank.frames == [0, 16, 38, 52, 72, 94, 96, 98, 100]
    gaps = np.diff(bank.frames[:6])
    assert gaps.max() <= 2 * gaps.min()
    assert fill(MemoryBank(9, "spread", recent=6), 50).frames == [0, 26, 50, 90, 92, 94, 96, 98, 100]


@pytest.mark.parametrize("policy", ["fifo", "spread"])
def test_bounded_reference_kept_and_time_ordered(policy):
    bank = MemoryBank(9, policy)
    bank.add(dummy(), reference=True, frame=0)
    for k in range(1, 200):
        bank.add(dummy(), frame=2 * k)
        assert len(bank) == min(k + 1, 9)
        assert bank.frames[0] == 0
        assert bank.frames == sorted(bank.frames)  # memory order stays time order
        assert bank.frames[-1] == 2 * k


def test_spread_equals_fifo_until_full():
    # equal while the bank is not full, and at the first eviction (evenly spaced: the oldest goes)
    for clips in range(10):
        assert fill(MemoryBank(9, "spread"), clips).frames == fill(MemoryBank(9), clips).frames
    assert fill(MemoryBank(9, "spread"), 10).frames == [0, 4, 8, 10, 12, 14, 16, 18, 20]
    assert fill(MemoryBank(9), 10).frames == [0, 6, 8, 10, 12, 14, 16, 18, 20]


def test_spread_without_frames_uses_insertion_order():
    bank = MemoryBank(5, "spread", recent=2)
    for _ in range(12):
        bank.add(dummy())
    assert bank.frames == [None] * 5
    assert bank.entry_ids == [0, 4, 7, 10, 11]


def test_spread_with_a_correction():
    bank = fill(MemoryBank(9, "spread"), 20)
    bank.add(dummy(), reference=True, frame=41)
    assert bank.num_references == 2 and len(bank) == 9
    assert bank.frames[:2] == [0, 41]
    assert bank.frames[-2:] == [38, 40]  # the short-term part is never the one evicted
    bank.add(dummy(), frame=42)
    assert bank.frames[:2] == [0, 41] and bank.frames[-1] == 42 and len(bank) == 9


def test_rte_rows_of_non_contiguous_entries_are_by_rank():
    """The RTE of a long-term entry is its rank in memory order (like the reference's), not its
    frame distance: the rows are those of any bank of that many entries."""
    bank = fill(MemoryBank(9, "spread", recent=4), 50)
    assert bank.rte_rows() == rte_rows(9) == [44, 43, 42, 41, 40, 39, 38, 37, 36]
    # offset 0 (row 36) = the newest frame 100, offset 8 (row 44) = the reference, frame 0;
    # the long-term entry at frame 16 (offset 7) is encoded as "the oldest after the reference"
    offsets = {f: r - 36 for f, r in zip(bank.frames, bank.rte_rows(), strict=True)}
    assert offsets == {0: 8, 16: 7, 38: 6, 52: 5, 72: 4, 94: 3, 96: 2, 98: 1, 100: 0}


def test_bad_policy_and_recent():
    with pytest.raises(ValueError):
        MemoryBank(9, "lifo")
    with pytest.raises(ValueError):
        MemoryBank(9, "spread", recent=0)


def test_mask_confidence_hand_checked():
    crisp = torch.zeros(1, 1, 4, 4)
    crisp[..., :2, :2] = 1.0
    soft = torch.full((1, 1, 4, 4), 0.75)
    empty = torch.full((1, 1, 4, 4), 0.4)
    mixed = torch.tensor([0.9, 0.6, 0.1, 0.0]).reshape(1, 1, 2, 2)  # (0.8 + 0.2) / 2
    conf = mask_confidence(torch.cat([crisp, soft, empty]))
    assert torch.allclose(conf, torch.tensor([1.0, 0.5, 0.0]))
    assert torch.allclose(mask_confidence(mixed), torch.tensor([0.5]))


def test_gate_needs_every_object_confident():
    crisp = torch.zeros(1, 1, 4, 4)
    crisp[..., :2, :2] = 1.0
    empty = torch.zeros(1, 1, 4, 4)
    assert confident(crisp, 0.9) and confident(empty, 0.0)
    assert not confident(torch.cat([crisp, empty]), 0.5)  # one empty mask blocks the shared entry
    assert confident(torch.cat([crisp, crisp]), 1.0)


def test_config_overrides():
    cfg = apply_overrides(
        TamvtConfig(), ["inference.memory=spread", "inference.memory_recent=3", "inference.memory_gate=0.4"]
    )
    assert (cfg.inference.memory, cfg.inference.memory_recent, cfg.inference.memory_gate) == ("spread", 3, 0.4)
    assert InferenceConfig().memory == "fifo" and InferenceConfig().memory_gate == 0.0
    with pytest.raises(TamvtError):
        apply_overrides(TamvtConfig(), ["inference.memory=lifo"])
    with pytest.raises(TamvtError):
        apply_overrides(TamvtConfig(), ["inference.memory_gate=1.5"])


# ---- a tiny random model ---------------------------------------------------------------------------


def video(length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``length`` frames 48x64 of a bright square moving right on noise, and its first mask."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 60, (length, 48, 64, 3), dtype=np.uint8)
    for t in range(length):
        frames[t, 10:26, 5 + t : 21 + t] = 220
    mask = np.zeros((48, 64), bool)
    mask[10:26, 5:21] = True
    return frames, mask


def propagate(predictor: Predictor, frames: np.ndarray, mask: np.ndarray):
    session = predictor.start(frames)
    predictor.add_mask(session, 0, 1, mask)
    out = {i: r.probs[0].clone() for i, r in predictor.propagate(session)}
    return out, session.groups[0].bank


def test_predictor_records_frames_and_uses_the_policy(small_model):
    frames, mask = video(24)
    fifo = Predictor(small_model, InferenceConfig(short_side=None, bank_size=5), clip_length=2)
    spread = Predictor(
        small_model, InferenceConfig(short_side=None, bank_size=5, memory="spread", memory_recent=2), clip_length=2
    )
    _, bank = propagate(fifo, frames, mask)
    # clips [1,2] ... [21,22] write their last frame; clip [23] ends the video
    assert bank.policy == "fifo" and bank.frames == [0, 16, 18, 20, 22]
    _, bank = propagate(spread, frames, mask)
    assert bank.policy == "spread" and bank.frames == [0, 8, 14, 20, 22]
    assert bank.frames == fill(MemoryBank(5, "spread", recent=2), 11).frames


def test_predictor_outputs_equal_fifo_while_the_bank_never_fills(small_model):
    frames, mask = video(15)  # reference + 6 entries (clip [13,14] ends the video): never full at N=9
    base, _ = propagate(Predictor(small_model, InferenceConfig(short_side=None), clip_length=2), frames, mask)
    spread, bank = propagate(
        Predictor(small_model, InferenceConfig(short_side=None, memory="spread"), clip_length=2), frames, mask
    )
    assert len(bank) == 7
    for i in base:
        assert torch.equal(base[i], spread[i])


def test_gate_zero_and_gate_effect(small_model):
    frames, mask = video(11)
    base, bank = propagate(Predictor(small_model, InferenceConfig(short_side=None), clip_length=2), frames, mask)
    assert bank.frames == [0, 2, 4, 6, 8]
    gated, bank = propagate(
        Predictor(small_model, InferenceConfig(short_side=None, memory_gate=1.0), clip_length=2), frames, mask
    )
    assert bank.frames == [0]  # a random model is never fully confident: nothing is written
    assert torch.equal(base[1], gated[1]) and torch.equal(base[2], gated[2])  # the first clip sees the same memory


def test_step_clip_gate(small_model):
    feats = small_model.encode_frames(torch.randn(3, 3, 32, 32))
    with torch.no_grad():
        bank = MemoryBank(4)
        bank.add(small_model.encode_memory(feats.select(0), torch.ones(1, 1, 32, 32)), frame=0)
        clip = feats.select(slice(1, 3))
        out = step_clip(small_model, bank, clip, update_memory=False)
        conf = float(mask_confidence(out.memory_mask)[0])
        assert not out.written and 0 < conf < 1
        out = step_clip(small_model, bank, clip, frame=2, min_confidence=conf + 1e-6)
        assert not out.written and bank.frames == [0]
        out = step_clip(small_model, bank, clip, frame=2, min_confidence=conf - 1e-6)
        assert out.written and bank.frames == [0, 2]
        out = step_clip(small_model, bank, clip, frame=4)  # 0: always written
        assert out.written and bank.frames == [0, 2, 4]


def load_script(name: str, monkeypatch) -> object:
    """A benchmark script as a module (registered in ``sys.modules`` for the test: dataclasses need it)."""
    spec = importlib.util.spec_from_file_location(name[:-3], BENCHMARKS / name)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_accuracy_benchmark_settings_per_model(tmp_path, monkeypatch):
    """``benchmarks/accuracy.py --set [NAME:]KEY=VALUE``: one checkpoint under two memory settings."""
    bench = load_script("accuracy.py", monkeypatch)
    torch.manual_seed(0)
    cfg = load_preset("tamvt-mini")
    ckpt = save_checkpoint(tmp_path / "random.safetensors", build_tamvt(cfg.model), cfg)
    work = tmp_path / "work"
    assert (
        bench.main(
            [
                "--work",
                str(work),
                "--num",
                "1",
                "--no-shipped",
                "--short-side",
                "48",
                "--model",
                f"fifo={ckpt}",
                "--model",
                f"spread={ckpt}",
                "--set",
                "spread:memory=spread",
                "--set",
                "memory_gate=0.2",
                "--set",
                "spread:memory_recent=2",
            ]
        )
        == 0
    )
    stamps = {n: json.loads((work / "pred" / n / ".made-by.json").read_text())["inference"] for n in ("fifo", "spread")}
    assert stamps["fifo"] == {"short_side": 48, "settings": ["memory_gate=0.2"]}
    assert stamps["spread"] == {"short_side": 48, "settings": ["memory=spread", "memory_gate=0.2", "memory_recent=2"]}


def test_long_videos_diagnostic_runs(tmp_path, monkeypatch):
    """``benchmarks/long_videos.py`` end to end on one short video with a random model: three runs
    (FIFO, spread, ground-truth memory), a plot and the JSON report."""
    pytest.importorskip("matplotlib")
    bench = load_script("long_videos.py", monkeypatch)
    torch.manual_seed(0)
    cfg = load_preset("tamvt-mini")
    cfg = apply_overrides(cfg, ["inference.short_side=48"])
    ckpt = save_checkpoint(tmp_path / "random.safetensors", build_tamvt(cfg.model), cfg)
    out = tmp_path / "report.json"
    assert (
        bench.main(
            [
                "--work",
                str(tmp_path / "work"),
                "--num",
                "1",
                "--videos",
                "val-000",
                "--checkpoint",
                str(ckpt),
                "--run",
                "fifo",
                "--run",
                "spread:memory=spread,bank_size=3",
                "--run",
                "oracle:oracle_memory=true",
                "--plots",
                str(tmp_path / "plots"),
                "--json",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())["val-000"]
    assert set(report) == {"fifo", "spread", "oracle"} and report["oracle"]["oracle"]
    obj = next(iter(report["fifo"]["objects"].values()))
    assert len(obj["J"]) == len(obj["gt_area"]) == len(obj["conf"]) >= 36
    held = [c["memory"] for c in report["spread"]["clips"]]
    assert max(len(m) for m in held) == 3 and all(m[0] == 0 for m in held)
    assert (tmp_path / "plots" / "val-000.png").stat().st_size > 1000


# ---- top-k memory reading (inference.top_k) ---------------------------------------------------------


def test_top_k_keeps_the_k_largest_weights_renormalised():
    """Each query's weights under top-k are its k largest dense attention weights, rescaled to sum 1."""
    from tamvt.models.matching import MatchingBlock

    torch.manual_seed(0)
    block = MatchingBlock(32, 4).eval()
    q, k, v = torch.randn(10, 32), torch.randn(20, 32), torch.randn(3, 20, 32)
    seen = []
    block.attention_hook = seen.append
    with torch.no_grad():
        dense_out = block.attend(q, k, v)
        sparse_out = block.attend(q, k, v, top_k=5)
        assert torch.equal(block.attend(q, k, v, top_k=20), dense_out)  # k >= all keys: the paper's reading
    dense, sparse = seen[0], seen[1]
    assert ((sparse > 0).sum(-1) == 5).all()
    top, index = dense.topk(5, dim=-1)
    torch.testing.assert_close(sparse.gather(-1, index), top / top.sum(-1, keepdim=True))
    assert not torch.allclose(sparse_out, dense_out, atol=1e-3)


def test_predictor_top_k(small_model):
    frames, mask = video(9)
    base, _ = propagate(Predictor(small_model, InferenceConfig(short_side=None), clip_length=2), frames, mask)
    # 48x64 frames, 5 memory entries at most: every scale holds fewer than 10**4 memory tokens
    wide, _ = propagate(
        Predictor(small_model, InferenceConfig(short_side=None, top_k=10**4), clip_length=2), frames, mask
    )
    one, _ = propagate(Predictor(small_model, InferenceConfig(short_side=None, top_k=1), clip_length=2), frames, mask)
    assert all(torch.equal(base[i], wide[i]) for i in base)
    assert not torch.equal(base[1], one[1]) and torch.equal(base[0], one[0])
    assert apply_overrides(TamvtConfig(), ["inference.top_k=30"]).inference.top_k == 30
    assert InferenceConfig().top_k is None
    with pytest.raises(TamvtError):
        apply_overrides(TamvtConfig(), ["inference.top_k=0"])


# ---- local search (inference.search_window) ----------------------------------------------------------


def test_search_region_hand_checked():
    masks = torch.zeros(3, 64, 64, dtype=torch.bool)
    masks[0, 10:20, 20:25] = True  # box 10 x 5: margin ceil(0.5 * 10) + 8 = 13
    masks[2, 60:64, 0:2] = True  # box 4 x 4 at the corner: margin 2 + 8 = 10
    region = search_region(masks, 0.5)
    assert region.shape == (3, 1, 64, 64) and region.dtype == torch.bool
    expected = torch.zeros(64, 64, dtype=torch.bool)
    expected[0:33, 7:38] = True
    assert torch.equal(region[0, 0], expected)
    assert bool(region[1].all())  # empty mask: a lost object is searched everywhere
    expected = torch.zeros(64, 64, dtype=torch.bool)
    expected[50:64, 0:12] = True
    assert torch.equal(region[2, 0], expected)


def test_step_clip_region(small_model):
    feats = small_model.encode_frames(torch.randn(3, 3, 32, 32))
    region = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    region[..., 8:24, 0:16] = True  # at the input size; the stride-4 logits are 8 x 8: cells 2..5, 0..3
    with torch.no_grad():
        bank = MemoryBank(4)
        bank.add(small_model.encode_memory(feats.select(0), torch.ones(1, 1, 32, 32)), frame=0)
        clip = feats.select(slice(1, 3))
        free = step_clip(small_model, bank, clip, update_memory=False)
        held = step_clip(small_model, bank, clip, update_memory=False, region=region)
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[2:6, 0:4] = True
    assert torch.equal(held.pred_logits[..., inside], free.pred_logits[..., inside])
    assert bool((held.pred_logits[..., ~inside] == OUTSIDE_LOGIT).all())
    assert all(
        torch.equal(a, b) for a, b in zip(held.logits[:-1], free.logits[:-1], strict=True)
    )  # auxiliary outputs untouched
    far = torch.ones(32, 32, dtype=torch.bool)
    far[4:28, 0:20] = False  # the region and one logit cell around it (bilinear upsampling)
    assert float(held.memory_mask[..., far].max()) < 1e-6  # the memory never sees beyond the region
    assert float(free.memory_mask[..., far].max()) > 1e-3


def test_predictor_search_window(small_model):
    frames, mask = video(9)
    base, _ = propagate(Predictor(small_model, InferenceConfig(short_side=None), clip_length=2), frames, mask)
    wide, _ = propagate(
        Predictor(small_model, InferenceConfig(short_side=None, search_window=100.0), clip_length=2), frames, mask
    )
    assert all(torch.equal(base[i], wide[i]) for i in base)  # a window wider than the frame: the paper's output
    tight = Predictor(small_model, InferenceConfig(short_side=None, search_window=0.0), clip_length=2)
    session = tight.start(frames)
    tight.add_mask(session, 0, 1, mask)
    out = {i: r.probs[0] for i, r in tight.propagate(session)}
    # frame 1 and 2 are searched around the given box (rows 10:26, cols 5:21) grown by 8 px; "far" is
    # 8 px further (the region is applied to the stride-4 logits, then upsampled bilinearly)
    far = torch.ones(48, 64, dtype=torch.bool)
    far[0:42, 0:37] = False
    assert float(out[1][far].max()) < 1e-6 and float(out[2][far].max()) < 1e-6
    assert float(base[1][far].max()) > 1e-3  # the random model does put mass there without the window
    # a correction elsewhere moves the search there
    moved = np.zeros_like(mask)
    moved[30:40, 45:55] = True
    tight.add_mask(session, 4, 1, moved)
    out = {i: r.probs[0] for i, r in tight.propagate(session, start=4)}
    far = torch.ones(48, 64, dtype=torch.bool)
    far[14:48, 29:64] = False
    assert float(out[5][far].max()) < 1e-6
    assert InferenceConfig().search_window is None
    assert apply_overrides(TamvtConfig(), ["inference.search_window=0.5"]).inference.search_window == 0.5
    with pytest.raises(TamvtError):
        apply_overrides(TamvtConfig(), ["inference.search_window=-1"])


def test_search_window_remove_object(small_model):
    frames, mask = video(9)
    other = np.zeros_like(mask)
    other[30:40, 40:50] = True
    predictor = Predictor(small_model, InferenceConfig(short_side=None, search_window=0.0), clip_length=2)
    session = predictor.start(frames)
    predictor.add_mask(session, 0, 1, mask)
    predictor.add_mask(session, 0, 2, other)
    results = predictor.propagate(session)
    for i, _ in results:
        if i == 3:
            break
    assert session.walk.groups[0].last_masks.shape[0] == 2
    predictor.remove_object(session, 1)
    assert session.walk.groups[0].last_masks.shape[0] == 1
    rest = dict(predictor.propagate(session))
    assert max(rest) == 8 and all(r.object_ids == (2,) for i, r in rest.items() if i > 4)
