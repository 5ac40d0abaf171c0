"""Finding a lost object again by its look (tamvt.refind, the presence rule's find_look): the pieces by
hand, the clip step with a stand-in network, the config and the engine's record from clip to clip."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tamvt.config import TamvtConfig, apply_overrides
from tamvt.errors import TamvtError
from tamvt.memory import LOOK_LEVEL, OUTSIDE_LOGIT, MemoryBank, PresenceRule, step_clip
from tamvt.refind import FIND_LOGIT, FIND_MIN_CELLS, find_lost, grow, look_map, main_region, regions

sys.path.insert(0, str(Path(__file__).parent))
from test_likeness import _Clip, _FixedModel, carried  # noqa: E402  (the look bound's stand-in network)
from test_presence import _render  # noqa: E402  (the hand-made videos of the presence tests)


def _mask(h: int, w: int, *cells: tuple[int, int]) -> torch.Tensor:
    out = torch.zeros(h, w, dtype=torch.bool)
    for y, x in cells:
        out[y, x] = True
    return out


def test_regions_are_eight_connected():
    m = _mask(4, 5, (0, 0), (1, 1), (3, 4), (3, 3))  # a diagonal pair, and a pair in a row apart from it
    label = regions(m)
    assert int(label[0, 0]) == int(label[1, 1]) > 0
    assert int(label[3, 3]) == int(label[3, 4]) > 0
    assert int(label[0, 0]) != int(label[3, 3])
    assert not label[~m].any()


def test_main_region_needs_the_share():
    assert main_region(torch.zeros(4, 4, dtype=torch.bool)) is None
    two = _mask(4, 6, (0, 0), (0, 1), (3, 4), (3, 5))  # two regions of 2 cells: neither holds 70 %
    assert main_region(two) is None
    big = two.clone()
    big[1, 0] = big[1, 1] = big[2, 0] = True  # 5 of 7 cells (71 %) in the first
    region = main_region(big)
    assert region is not None and int(region.sum()) == 5 and not region[3].any()
    assert main_region(big, share=0.8) is None


def test_grow_by_one_cell():
    grown = grow(_mask(5, 5, (2, 2)))
    assert int(grown.sum()) == 9 and bool(grown[1:4, 1:4].all())
    batched = grow(torch.stack([_mask(3, 3, (0, 0)), _mask(3, 3)]))
    assert batched.shape == (2, 3, 3) and int(batched[0].sum()) == 4 and not batched[1].any()


def test_look_map_by_hand():
    level = torch.ones(2, 3, 2, 2)  # T=2 frames, C=3: background [1, 1, 1]
    level[1, :, 0, 0] = torch.tensor([4.0, 0, 0])  # the object's look in frame 1, top-left
    level[1, :, 1, 1] = torch.tensor([-2.0, 2, 2])  # its opposite from the centre, bottom-right
    look, centre = torch.tensor([[4.0, 0, 0]]), torch.tensor([[1.0, 1, 1]])
    cos = look_map(level, look, centre)
    assert cos.shape == (1, 2, 2, 2)
    assert float(cos[0, 1, 0, 0]) == pytest.approx(1.0)
    assert float(cos[0, 1, 1, 1]) == pytest.approx(-1.0)
    assert float(cos[0, 0].abs().max()) == 0.0  # the background is the centre: cosine 0


def test_find_lost_by_hand():
    h, w = 6, 6
    like = torch.zeros(2, 1, h, w, dtype=torch.bool)  # two objects, one frame
    like[:, 0, 0:2, 0:2] = True  # a 2x2 patch like both (4 cells, 1/9 of the frame)
    like[0, 0, 4:6, 4:6] = True  # another like object 0, the one left where it was lost
    stale = torch.zeros(2, h, w, dtype=torch.bool)
    stale[0] = grow(_mask(h, w, (5, 5)))  # ... recorded there
    taken = torch.zeros(2, 1, h, w, dtype=torch.bool)
    searched = torch.tensor([[True], [True]])
    peak = torch.tensor([0.1, 0.1])
    found = find_lost(like, searched, taken, stale, peak)
    assert bool(found[0, 0, 0:2, 0:2].all()) and int(found[0].sum()) == 4  # the new patch, not the stale one
    assert not found[1].any()  # object 1's only region is object 0's now
    # without the record object 0's two regions are alike in size: ambiguous, none taken; object 1 then
    # takes the patch
    none = find_lost(like, searched, taken, torch.zeros_like(stale), peak)
    assert not none[0].any() and int(none[1].sum()) == 4
    # not searched, under another object's mask, or too small for the peak: not found
    assert not find_lost(like, torch.tensor([[False], [False]]), taken, stale, peak).any()
    assert not find_lost(like, searched, torch.ones_like(taken), stale, peak).any()
    assert not find_lost(like, searched, taken, stale, torch.tensor([4.0, 4.0])).any()  # 1/9 < 0.05 * 4
    assert not find_lost(like, searched, taken, stale, torch.tensor([0.05, 0.05])).any()  # 1/9 > 1.5 * 0.05
    # a speck (one or two cells) is not taken, even where its area fits the object's peak (2/36 = 0.56 x 0.1)
    assert FIND_MIN_CELLS == 3
    speck = torch.zeros_like(like)
    speck[:, 0, 0, 0:2] = True
    assert not find_lost(speck, searched, taken, torch.zeros_like(stale), peak).any()
    speck[:, 0, 1, 0] = True
    assert find_lost(speck, searched, taken, torch.zeros_like(stale), peak)[0].sum() == 3


def _feature_clip(patch_at: tuple[int, int] | None) -> SimpleNamespace:
    """A 2-frame clip of 8x8 stride-8 features (64x64 image): background ``[1, 1, 1]`` and, when given,
    a 2x2 patch like the object (``[4, 0, 0]``) at ``patch_at`` in both frames."""
    level = torch.ones(2, 3, 8, 8)
    if patch_at is not None:
        y, x = patch_at
        level[:, :, y : y + 2, x : x + 2] = torch.tensor([4.0, 0, 0])[:, None, None]
    return _Clip(levels={LOOK_LEVEL: level}, image_size=(64, 64))


def _blank_bank() -> MemoryBank:
    from tamvt.models.tamvt import MemoryEntry

    bank = MemoryBank(4)
    bank.add(MemoryEntry(keys=(torch.zeros(4, 8),), values=(torch.zeros(1, 4, 8),)), frame=0)
    return bank


NOTHING = torch.full((1, 2, 16, 16), -5.0)  # a readout that sees nothing (logits at stride 4, 64x64 image)
LOOK = (torch.tensor([[4.0, 0, 0]]), torch.tensor([[1.0, 1, 1]]))


def _step(patch_at, *, lost=True, stale=None, logits=NOTHING, bank=None, look=LOOK, find=0.8):
    """One clip step of the stand-in network over :func:`_feature_clip` ``(patch_at)``, for one object of
    peak area 1/16 lost (or not) before the clip, with the search at ``find`` (None: off)."""
    return step_clip(
        _FixedModel(logits),
        _blank_bank() if bank is None else bank,
        _feature_clip(patch_at),
        frame=4,
        lost=torch.tensor([lost]),
        stale=stale,
        presence_rule=PresenceRule(0.5, 0.2, find_look=find),
        expected_area=torch.tensor([0.05]),
        peak_area=torch.tensor([0.0625]),
        look=look,
    )


def test_step_clip_finds_a_lost_object_by_its_look():
    # just lost: not searched in this clip; the record is what looks like it now (the patch at 2, 2)
    first = _step((2, 2), lost=False)
    assert first.present is not None and not first.present.any() and first.stale is not None
    cells, kept = first.stale
    assert kept.tolist() == [True] and int(cells[0].sum()) == 16 and bool(cells[0, 1:5, 1:5].all())
    # lost before the clip: the same patch is stale, not found; a patch somewhere new is found and written
    still = _step((2, 2), stale=first.stale)
    assert still.present is not None and not still.present.any() and not still.written
    memory = _blank_bank()
    moved = _step((5, 5), stale=first.stale, bank=memory)
    assert moved.present is not None and moved.present.tolist() == [[True, True]]
    final = moved.pred_logits[0]  # (2, 16, 16) at stride 4: the patch is cells 10..13
    assert bool((final[:, 10:14, 10:14] == FIND_LOGIT).all())
    assert int((final > 0).sum()) == 2 * 16 and float(final.min()) == OUTSIDE_LOGIT
    assert moved.areas is not None and moved.areas[0].tolist() == pytest.approx([16 / 256] * 2)
    assert moved.written and len(memory) == 2
    assert moved.stale is not None and moved.stale[1].tolist() == [True]  # found by its look: the record stays
    # without the search, the same clip leaves it absent; without looks, a clear error
    off = _step((5, 5), find=None)
    assert off.present is not None and not off.present.any() and off.stale is None
    with pytest.raises(ValueError, match="looks and peak areas"):
        _step((5, 5), look=None)
    # with two looks (given, recent) the cells like either count: a given look of something else, the
    # recent one of the patch
    two = (torch.tensor([[[0.0, 4, 0], [4.0, 0, 0]]]), torch.tensor([[[1.0, 1, 1], [1.0, 1, 1]]]))
    either = _step((5, 5), stale=first.stale, look=two)
    assert either.present is not None and either.present.all()
    other = _step((5, 5), stale=first.stale, look=(two[0][:, :1], two[1][:, :1]))
    assert other.present is not None and not other.present.any()
    # the readout finds it at the clip's end: the record goes
    seen = NOTHING.clone()
    seen[0, :, 10:14, 10:14] = 5.0
    back = _step((5, 5), stale=moved.stale, logits=seen)
    assert back.present is not None and back.present.all() and back.stale is not None
    assert back.stale[1].tolist() == [False]


def test_config():
    assert TamvtConfig().inference.presence_find is None
    assert apply_overrides(TamvtConfig(), ["inference.presence_find=0.8"]).inference.presence_find == 0.8
    with pytest.raises(TamvtError, match="presence_find must be in"):
        apply_overrides(TamvtConfig(), ["inference.presence_find=1.5"])


def test_engine_keeps_the_record_from_clip_to_clip():
    """The record the clip step returns is the one the next clip gets; without the search none is kept."""
    # the square leaves on the right at frame 4 and stays out: lost, with a record
    frames, truth = _render([150 + 12 * t for t in range(12)], 80, None, seed=4)
    calls = carried("stale", frames, truth, presence_find=0.8)
    assert len(calls) >= 3 and calls[0][0] is None
    for (_, given_out), (taken_in, _) in zip(calls[:-1], calls[1:], strict=True):
        assert taken_in is not None and all(torch.equal(a, b) for a, b in zip(taken_in, given_out, strict=True))
    assert bool(calls[-1][1][1].all())  # gone for good: recorded
    calls = carried("stale", frames[:6], truth[:6], presence_find=None)  # the shipped model's search off
    assert calls and all(before is None and after is None for before, after in calls)
