"""RTE table resizing (SPEC §1.5): one table function behind the live module, state dicts and loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tamvt.models.matching import (
    RTE_KEY,
    RelativeTimeEncoding,
    adapt_rte_state,
    resize_rte_table,
    rte_bank_size,
    rte_rows,
    rte_table_size,
)

# capacity 3: blocks [t0], [t1, t2], [t3, t4, t5]; inside a block slot offset 0 = newest, last = reference
BANK3 = [1.0, 2.0, 4.0, 1.0, 3.0, 7.0]
# worked by hand: block 4 samples block 3 = [1, 3, 7] at 0, 2/3, 4/3, 2 -> [1, 1 + 2/3*2, 3 + 1/3*4, 7];
# block 5 samples block 4 = [1, 7/3, 13/3, 7] at 0, 3/4, 3/2, 9/4, 3 -> [1, 1 + 3/4*4/3, 7/3 + 1/2*2, 13/3 + 1/4*8/3, 7]
BLOCK4 = [1.0, 7 / 3, 13 / 3, 7.0]
BLOCK5 = [1.0, 2.0, 10 / 3, 5.0, 7.0]


def _numpy_interpolation(table: np.ndarray, old: int, new: int) -> np.ndarray:
    """Independent reference: block i = np.interp of block i-1 at positions jj*(i-2)/(i-1)."""
    out = list(table.astype(np.float64))
    for i in range(old + 1, new + 1):
        prev = np.asarray(out[-(i - 1) :])
        out += list(np.interp(np.arange(i) * (i - 2) / (i - 1), np.arange(i - 1), prev))
    return np.asarray(out)


def test_table_sizes_and_their_inverse():
    assert [rte_table_size(n) for n in (1, 2, 3, 5, 9)] == [1, 3, 6, 15, 45]
    assert [rte_bank_size(k) for k in (1, 3, 6, 15, 45, 66)] == [1, 2, 3, 5, 9, 11]
    assert [rte_bank_size(k) for k in (0, 2, 7, 44)] == [None, None, None, None]


def test_resize_3_to_5_hand_checked():
    out = resize_rte_table(torch.tensor(BANK3), 3, 5)
    assert out.shape == (15,) and out.dtype == torch.float32
    expected = BANK3 + BLOCK4 + BLOCK5
    assert torch.equal(out[:6], torch.tensor(BANK3))  # trained blocks kept bit for bit
    assert out.tolist() == pytest.approx(expected, rel=1e-6)
    # endpoints aligned: newest -> newest, reference -> reference (memory order is [reference, ..., newest])
    assert out[rte_rows(5)].tolist() == pytest.approx([7.0, 5.0, 10 / 3, 2.0, 1.0], rel=1e-6)


def test_resize_matches_numpy_interp():
    table = torch.rand(rte_table_size(4), generator=torch.Generator().manual_seed(0)) + 0.5
    out = resize_rte_table(table, 4, 9)
    np.testing.assert_allclose(out.numpy(), _numpy_interpolation(table.numpy(), 4, 9), rtol=1e-6)


def test_resize_to_a_smaller_or_equal_capacity_keeps_the_first_blocks():
    table = torch.tensor(BANK3 + BLOCK4, dtype=torch.float64)
    assert torch.equal(resize_rte_table(table, 4, 2), table[:3])
    same = resize_rte_table(table, 4, 4)
    assert torch.equal(same, table) and same.data_ptr() != table.data_ptr()  # a copy, not a view
    assert resize_rte_table(table, 4, 6).dtype == torch.float64
    with pytest.raises(ValueError, match="does not fit bank size 3"):
        resize_rte_table(table, 3, 5)


def test_live_module_and_state_dict_use_the_same_table():
    rte = RelativeTimeEncoding("mul", 3)
    with torch.no_grad():
        rte.theta.copy_(torch.tensor(BANK3))
    state = {RTE_KEY: torch.tensor(BANK3).reshape(6, 1).half(), "other": torch.arange(3)}
    adapted = adapt_rte_state(state, 3, 5)
    rte.resize(5)
    assert rte.bank_size == 5 and rte.theta.requires_grad
    assert torch.equal(rte.theta.detach(), resize_rte_table(torch.tensor(BANK3), 3, 5))
    assert torch.equal(adapted[RTE_KEY], rte.theta.detach())  # flat, float32
    assert adapted["other"] is state["other"] and state[RTE_KEY].shape == (6, 1)  # input untouched
    rte.resize(2)
    assert rte.bank_size == 2 and rte.theta.tolist() == BANK3[:3]
    assert adapt_rte_state({"other": state["other"]}, 3, 5) == {"other": state["other"]}  # no table: a copy
    none = RelativeTimeEncoding("none", 3)
    none.resize(5)
    assert none.bank_size == 5 and none.theta is None


def test_expand_bank_grows_only():
    from tamvt.config import load_preset
    from tamvt.models.tamvt import build_tamvt

    model = build_tamvt(load_preset("tamvt-small", ["model.decoder_layers=1", "model.bank_size=3"]).model)
    with torch.no_grad():
        model.matching.rte.theta.copy_(torch.tensor(BANK3))
    model.expand_bank(2)  # smaller: nothing to do
    assert model.bank_size == 3 and model.matching.rte.theta.numel() == 6
    model.expand_bank(5)
    assert model.bank_size == 5
    assert model.matching.rte.theta.tolist() == pytest.approx(BANK3 + BLOCK4 + BLOCK5, rel=1e-6)
