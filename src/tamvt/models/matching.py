"""Multi-scale matching encoder with relative time encoding (SPEC §1.4-1.5, paper eq. 3).

Per matching scale, every query-frame token attends to the tokens of all memory frames:
``Q = fc_q(LN(frame feat + pos))``, ``K = fc_k(LN(memory frame feat + pos))`` (the same LayerNorm),
``V = fc_v(memory mask feat + pos)`` (no LayerNorm), no biases, logits scaled by ``1/sqrt(d)`` (not
per head), one softmax over all memory tokens, ``O = LN(concat heads)``, ``Z = O + GELU(fc_o(O))``
(no residual to the query).

Memory order is ``[reference, oldest, ..., newest]``. The relative time encoding (RTE) is one scalar
per memory slot, with a separate block of ``n`` scalars for every memory size ``n = 1..N``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Above this many attention-matrix elements (heads x queries x keys) the queries are processed in
# chunks, so the non-fused (CPU) attention path never materialises more than ~256 MB of fp32 logits.
# Softmax is per query, so chunking over queries is exact.
MAX_ATTENTION_ELEMENTS = 64 * 1024 * 1024


RTE_KEY = "matching.rte.theta"  # the RTE table's name in a TamVT state dict


def rte_table_size(bank_size: int) -> int:
    """Number of RTE scalars for capacity ``N``: blocks of size 1..N, ``N(N+1)/2``."""
    return bank_size * (bank_size + 1) // 2


def rte_bank_size(table_size: int) -> int | None:
    """The capacity ``N >= 1`` whose table has ``table_size = N(N+1)/2`` scalars (None if there is none)."""
    n = round((math.sqrt(8 * table_size + 1) - 1) / 2)
    return n if n >= 1 and rte_table_size(n) == table_size else None


def rte_rows(num_entries: int) -> list[int]:
    """RTE table rows of the ``n`` memory entries, in memory order ``[reference, oldest, ..., newest]``.

    The block for size ``n`` starts at row ``n(n-1)/2``; inside it, slot offset 0 is the newest entry
    and offset ``n-1`` the reference (authors' code: ``rel = n - i``, ``row = rel + n(n-1)/2 - 1``).
    """
    n = num_entries
    base = n * (n - 1) // 2
    return [base + (n - i) - 1 for i in range(n)]


def resize_rte_table(table: Tensor, old_bank: int, new_bank: int) -> Tensor:
    """An RTE table trained for capacity ``old_bank``, resized to capacity ``new_bank`` (SPEC §1.5).

    The one implementation of RTE resizing: :meth:`RelativeTimeEncoding.resize` (a live model) and
    :func:`adapt_rte_state` (a state dict) both use it. Blocks for sizes ``<= min(old_bank, new_bank)``
    are kept; a smaller capacity just drops the larger blocks. RTE interpolation (a larger capacity):
    the block for size ``i`` is linearly resampled from the block for size ``i-1`` at positions
    ``jj * (i-2)/(i-1)`` (``jj = 0..i-1``; endpoints aligned: newest -> newest, reference ->
    reference). Arithmetic as in the authors' code: the position in double precision, the weights
    ``r`` and ``1-r`` rounded to float32, the blend in float32.

    Args:
        table: ``(old_bank*(old_bank+1)/2,)`` float tensor.
    Returns:
        ``(new_bank*(new_bank+1)/2,)``, same dtype/device (a new tensor).
    """
    if table.ndim != 1 or table.numel() != rte_table_size(old_bank):
        raise ValueError(f"RTE table of shape {tuple(table.shape)} does not fit bank size {old_bank}")
    if new_bank <= old_bank:
        return table.detach()[: rte_table_size(new_bank)].clone()
    rows = list(table.detach().float().unbind(0))
    for i in range(old_bank + 1, new_bank + 1):
        last = rows[-(i - 1) :]  # the block of size i-1, slot offsets 0 (newest) .. i-2 (reference)
        ratio = (i - 2) / (i - 1)
        for jj in range(i):
            x = jj * ratio
            f = min(math.floor(x), len(last) - 1)
            c = min(math.ceil(x), len(last) - 1)
            r = x - math.floor(x)
            r32 = torch.tensor(r, dtype=torch.float32)
            s32 = torch.tensor(1 - r, dtype=torch.float32)
            rows.append(r32 * last[c] + s32 * last[f])
    return torch.stack(rows).to(dtype=table.dtype, device=table.device)


def adapt_rte_state(state: Mapping[str, Tensor], old_bank: int, new_bank: int, key: str = RTE_KEY) -> dict[str, Tensor]:
    """A copy of the state dict ``state`` (trained with capacity ``old_bank``) whose RTE table ``key``
    is resized to capacity ``new_bank`` by :func:`resize_rte_table`; without that key, an unchanged
    copy. The table comes back flat, in float32 (the strict loader casts it to the model's dtype)."""
    out = dict(state)
    if key in out:
        out[key] = resize_rte_table(out[key].reshape(-1).float(), old_bank, new_bank)
    return out


class RelativeTimeEncoding(nn.Module):
    """Learnable per-slot scalars ``theta`` (``mul``: init 1, multiplies the logits of a memory frame;
    ``add``: init 0, added to them; ``none``: no parameters).

    Args:
        mode: ``none`` / ``mul`` / ``add``.
        bank_size: largest memory size ``N`` the table covers.
    """

    def __init__(self, mode: str, bank_size: int) -> None:
        super().__init__()
        if mode not in ("none", "mul", "add"):
            raise ValueError(f"unknown RTE mode {mode!r}")
        self.mode = mode
        self.bank_size = bank_size
        init = torch.ones if mode == "mul" else torch.zeros
        self.theta = nn.Parameter(init(rte_table_size(bank_size))) if mode != "none" else None

    def for_entries(self, num_entries: int) -> Tensor | None:
        """The ``(n,)`` scalars of the ``n`` memory entries in memory order (``None`` for mode ``none``)."""
        if self.theta is None:
            return None
        if num_entries > self.bank_size:
            raise ValueError(
                f"memory holds {num_entries} entries but the RTE table covers only "
                f"{self.bank_size}; expand it (RTE interpolation) first"
            )
        return self.theta[rte_rows(num_entries)]

    @torch.no_grad()
    def resize(self, bank_size: int) -> None:
        """Cover capacity ``bank_size``: the table is resized by :func:`resize_rte_table` (resampled
        when larger, cut when smaller) into a new parameter with the same ``requires_grad``."""
        if self.theta is not None and bank_size != self.bank_size:
            new = resize_rte_table(self.theta.data, self.bank_size, bank_size)
            self.theta = nn.Parameter(new, requires_grad=self.theta.requires_grad)
        self.bank_size = bank_size


class MatchingBlock(nn.Module):
    """Cross-attention of query-frame tokens to memory tokens at one scale (SPEC §1.4).

    Args:
        dim: token width d.
        heads: attention heads (d/heads channels each); the logit scale is ``1/sqrt(d)``.
        dropout: attention-weight dropout (training only).
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dim, self.heads, self.dropout = dim, heads, dropout
        self.pre_ln = nn.LayerNorm(dim)  # shared by Q and K (the authors' pre_ln_q is pre_ln_k)
        self.fc_q = nn.Linear(dim, dim, bias=False)
        self.fc_k = nn.Linear(dim, dim, bias=False)
        self.fc_v = nn.Linear(dim, dim, bias=False)
        self.fc_o = nn.Linear(dim, dim, bias=False)
        self.ln = nn.LayerNorm(dim)
        # Set by Matching.hook_attention: receives the (H, Lq, Lk) attention weights of every call.
        self.attention_hook: Callable[[Tensor], None] | None = None

    def project_queries(self, x: Tensor) -> Tensor:
        """``(..., d)`` tokens -> ``fc_q(LN(x))``."""
        return self.fc_q(self.pre_ln(x))

    def project_keys(self, x: Tensor) -> Tensor:
        """``(..., d)`` tokens -> ``fc_k(LN(x))`` (cached per memory entry)."""
        return self.fc_k(self.pre_ln(x))

    def project_values(self, x: Tensor) -> Tensor:
        """``(..., d)`` tokens -> ``fc_v(x)`` (cached per memory entry)."""
        return self.fc_v(x)

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, key_bias: Tensor | None = None, top_k: int | None = None
    ) -> Tensor:
        """Attention of projected queries to projected keys/values, then ``LN`` and the GELU branch.

        Q and K do not depend on the object, so the attention weights are shared by all ``B``
        objects: the objects are stacked in the value channels and the attention runs once.

        Args:
            q: ``(Lq, d)`` projected query tokens.
            k: ``(Lk, d)`` projected key tokens (multiplicative RTE already folded in).
            v: ``(B, Lk, d)`` projected value tokens, one set per object.
            key_bias: ``(Lk,)`` additive logit bias per key (additive RTE) or ``None``.
            top_k: each query reads only its ``top_k`` most similar keys (softmax over those logits,
                zero weight elsewhere: XMem / STCN's top-k memory reading); ``None``: all (the paper's).
        Returns:
            ``(B, Lq, d)``.
        """
        (lq, d), (b, lk, _) = q.shape, v.shape
        h = self.heads
        dh = d // h
        qh = q.reshape(lq, h, dh).transpose(0, 1)  # (H, Lq, dh)
        kh = k.reshape(lk, h, dh).transpose(0, 1)  # (H, Lk, dh)
        vh = v.reshape(b, lk, h, dh).permute(2, 1, 0, 3).reshape(h, lk, b * dh)  # (H, Lk, B*dh)
        mask = None if key_bias is None else key_bias.to(q.dtype).reshape(1, 1, lk)
        p = self.dropout if self.training else 0.0
        chunk = max(1, MAX_ATTENTION_ELEMENTS // max(1, h * lk))
        sparse = top_k is not None and top_k < lk
        if self.attention_hook is None and not sparse:
            outs = [
                F.scaled_dot_product_attention(
                    qh[:, s : s + chunk], kh, vh, attn_mask=mask, dropout_p=p, scale=1.0 / math.sqrt(d)
                )
                for s in range(0, lq, chunk)
            ]
        else:  # the same attention unfused, so that its weights exist; the output is computed from them
            weights = []
            for s in range(0, lq, chunk):
                logits = qh[:, s : s + chunk] @ kh.transpose(1, 2) / math.sqrt(d)  # (H, chunk, Lk)
                logits = logits if mask is None else logits + mask
                if top_k is not None and sparse:  # softmax over the k largest logits of each query, zero elsewhere
                    top, index = logits.topk(top_k, dim=-1)
                    weights.append(torch.zeros_like(logits).scatter_(-1, index, top.softmax(-1)))
                else:
                    weights.append(logits.softmax(-1))
            if self.attention_hook is not None:
                self.attention_hook(torch.cat(weights, dim=1).detach())
            outs = [F.dropout(w, p) @ vh for w in weights]
        o = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]  # (H, Lq, B*dh)
        o = o.reshape(h, lq, b, dh).permute(2, 1, 0, 3).reshape(b, lq, d)
        o = self.ln(o)
        return o + F.gelu(self.fc_o(o))


class Matching(nn.Module):
    """One :class:`MatchingBlock` per scale (coarse to fine: stride 32, 16, 8) + the RTE table.

    Args:
        dim: token width d.
        heads: heads per block.
        num_scales: 1..3.
        dropout: attention dropout.
        rte: ``none`` / ``mul`` / ``add``.
        bank_size: memory capacity covered by the RTE table.
    """

    def __init__(self, dim: int, heads: int, num_scales: int, dropout: float, rte: str, bank_size: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MatchingBlock(dim, heads, dropout) for _ in range(num_scales))
        self.rte = RelativeTimeEncoding(rte, bank_size)

    def scale_blocks(self) -> list[MatchingBlock]:
        """The blocks, coarse to fine (``nn.ModuleList`` hands them out untyped)."""
        return [cast(MatchingBlock, block) for block in self.blocks]

    @contextmanager
    def hook_attention(self, fn: Callable[[int, Tensor], None]) -> Iterator[None]:
        """While active, every forward calls ``fn(scale, weights)`` per matching scale, where ``weights``
        ``(H, T*h*w, n*h*w)`` are the softmax attention of the query tokens (frame-major) over the
        memory tokens (entries in memory order, each ``h*w`` row-major), RTE included. The attention
        then runs unfused (same logits, softmax and output, float rounding aside); for analysis only."""
        for s, block in enumerate(self.scale_blocks()):
            block.attention_hook = lambda w, s=s: fn(s, w)
        try:
            yield
        finally:
            for block in self.scale_blocks():
                block.attention_hook = None

    def forward(
        self,
        queries: Sequence[Tensor],
        keys: Sequence[Sequence[Tensor]],
        values: Sequence[Sequence[Tensor]],
        top_k: int | None = None,
    ) -> list[Tensor]:
        """Match the query frames against the memory at every scale.

        Args:
            queries: per scale ``(T, d, h, w)`` query-frame features (projection + position).
            keys: per scale, per memory entry (memory order), ``(h*w, d)`` projected keys.
            values: per scale, per memory entry, ``(B, h*w, d)`` projected values.
            top_k: top-k memory reading at every scale (:meth:`MatchingBlock.attend`); ``None``: off.
        Returns:
            per scale ``Z``: ``(B*T, d, h, w)``, objects major (index ``b*T + t``).
        """
        n = len(keys[0])
        theta = self.rte.for_entries(n)
        out = []
        for block, q_map, k_list, v_list in zip(self.scale_blocks(), queries, keys, values, strict=True):
            t, d, hh, ww = q_map.shape
            q = block.project_queries(q_map.flatten(2).transpose(1, 2).reshape(t * hh * ww, d))
            bias = None
            if self.rte.mode == "mul":
                assert theta is not None  # mode mul / add always has a table
                # theta multiplies the scaled logits of all tokens of its memory frame
                # (L = clip(QK^T/sqrt(d), +-1e4) * theta in the authors' code); it is folded into that
                # frame's keys so that fused attention can be used. The +-1e4 clip is a no-op here:
                # |QK^T|/sqrt(d) of LayerNorm-ed, projected tokens is many orders of magnitude below 1e4.
                k = torch.cat([kk * theta[i].to(kk.dtype) for i, kk in enumerate(k_list)])
            else:
                k = torch.cat(list(k_list))
                if self.rte.mode == "add":
                    assert theta is not None
                    bias = torch.cat([theta[i].expand(kk.shape[0]) for i, kk in enumerate(k_list)])
            v = torch.cat(list(v_list), dim=1)
            z = block.attend(q, k, v, bias, top_k)  # (B, T*h*w, d)
            b = z.shape[0]
            out.append(z.reshape(b * t, hh, ww, d).permute(0, 3, 1, 2))
        return out
