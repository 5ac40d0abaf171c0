"""MemoryBank ordering / eviction, RTE slot assignment and the clip step's memory update."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from tamvt.config import load_preset
from tamvt.memory import MemoryBank, step_clip
from tamvt.models.matching import rte_rows
from tamvt.models.tamvt import MemoryEntry, build_tamvt


def dummy(objects: int = 1) -> MemoryEntry:
    return MemoryEntry(keys=(torch.zeros(4, 8),), values=(torch.zeros(objects, 4, 8),))


def test_fifo_keeps_reference():
    bank = MemoryBank(3)
    entries = [dummy() for _ in range(6)]
    evicted = [bank.add(e) for e in entries]
    assert bank.entry_ids == [0, 4, 5]
    assert bank.entries == (entries[0], entries[4], entries[5])
    assert evicted == [None, None, None, entries[1], entries[2], entries[3]]
    assert len(bank) == 3


def test_authors_eviction_sequence():
    """Vector D's memory keys: clip k <= 8 sees [0..k]; then key 1, then key 2 are evicted."""
    bank = MemoryBank(9)
    bank.add(dummy())
    seen = []
    for _ in range(11):
        seen.append(bank.entry_ids)
        bank.add(dummy())
    assert seen[8] == list(range(9))
    assert seen[9] == [0, 2, 3, 4, 5, 6, 7, 8, 9]
    assert seen[10] == [0, 3, 4, 5, 6, 7, 8, 9, 10]


def test_capacity_one_keeps_only_reference():
    bank = MemoryBank(1)
    ref = dummy()
    bank.add(ref)
    late = dummy()
    assert bank.add(late) is late
    assert bank.entries == (ref,)


def test_bank_rejects_mismatched_objects_and_bad_capacity():
    bank = MemoryBank(3)
    bank.add(dummy(2))
    with pytest.raises(ValueError):
        bank.add(dummy(3))
    with pytest.raises(ValueError):
        MemoryBank(0)


def test_rte_rows_hand_checked():
    # block for size n starts at n(n-1)/2; newest = offset 0, reference = offset n-1
    assert rte_rows(1) == [0]
    assert rte_rows(2) == [2, 1]
    assert rte_rows(3) == [5, 4, 3]
    assert rte_rows(9) == [44, 43, 42, 41, 40, 39, 38, 37, 36]  # vector D clip 8: rows 36-44
    bank = MemoryBank(4)
    for _ in range(3):
        bank.add(dummy())
    assert bank.rte_rows() == [5, 4, 3]


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    cfg = dataclasses.replace(load_preset("tamvt-small").model, decoder_layers=2)
    return build_tamvt(cfg).eval()


def test_step_clip_appends_last_frame_with_soft_mask(tiny_model):
    g = torch.Generator().manual_seed(1)
    frames = torch.randn(3, 3, 64, 64, generator=g)
    mask = (torch.rand(2, 1, 64, 64, generator=g) > 0.5).float()
    with torch.no_grad():
        feats = tiny_model.encode_frames(frames)
        bank = MemoryBank(4)
        bank.add(tiny_model.encode_memory(feats.select(0), mask))
        out = step_clip(tiny_model, bank, feats.select(slice(1, 3)))
        assert bank.entry_ids == [0, 1]
        expected_mask = torch.sigmoid(
            F.interpolate(out.logits[-1][:, 1:2], size=(64, 64), mode="bilinear", align_corners=False)
        )
        assert torch.allclose(out.memory_mask, expected_mask)
        assert out.memory_mask.shape == (2, 1, 64, 64)
        expected = tiny_model.encode_memory(feats.select(2), expected_mask)
        new = bank.entries[-1]
        for a, b in zip(new.keys + new.values, expected.keys + expected.values, strict=True):
            assert torch.allclose(a, b, atol=1e-6)
        step_clip(tiny_model, bank, feats.select(slice(1, 3)), update_memory=False)
        assert bank.entry_ids == [0, 1]


def test_step_clip_memory_mask_is_detached(tiny_model):
    frames = torch.randn(3, 3, 64, 64)
    feats = tiny_model.encode_frames(frames)
    bank = MemoryBank(4)
    bank.add(tiny_model.encode_memory(feats.select(0), torch.ones(1, 1, 64, 64)))
    out = step_clip(tiny_model, bank, feats.select(slice(1, 3)))
    assert out.logits[-1].requires_grad
    assert not out.memory_mask.requires_grad
