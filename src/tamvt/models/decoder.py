"""Space-time decoder (SPEC §1.7): one query per clip frame, refined by post-norm blocks of temporal
self-attention, frame-wise cross-attention to one FPN level, and an FFN."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tamvt.models.position_encoding import sine_time_table


class DecoderLayer(nn.Module):
    """Post-norm block: ``norm1(x + SelfAttn)`` over the clip's frames, ``norm2(x + CrossAttn)`` of
    each frame's query to its own frame's tokens, ``norm3(x + FFN)`` (ReLU)."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(dim, ffn)
        self.linear2 = nn.Linear(ffn, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)  # inside the FFN
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, tgt: Tensor, query_pos: Tensor, memory: Tensor, memory_pos: Tensor) -> Tensor:
        """
        Args:
            tgt: ``(B, T, d)`` queries (one per object and frame).
            query_pos: ``(T, d)`` query embedding + time embedding.
            memory: ``(B*T, h*w, d)`` frame tokens (+ level embedding).
            memory_pos: ``(1, h*w, d)`` sine position encoding of the level.
        Returns:
            ``(B, T, d)``.
        """
        b, t, d = tgt.shape
        q = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, q, tgt, need_weights=False)[0]))
        q = (tgt + query_pos).reshape(b * t, 1, d)
        if self.training:
            cross = self.cross_attn(q, memory + memory_pos, memory, need_weights=False)[0]
        else:
            cross = single_query_attention(self.cross_attn, q, memory + memory_pos, memory)
        tgt = self.norm2(tgt + self.dropout2(cross.reshape(b, t, d)))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout3(ffn))


def single_query_attention(attn: nn.MultiheadAttention, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """``attn(query, key, value)`` (no dropout, no mask) for one query per sequence, without projecting
    the ``N`` keys and values.

    With a single query, each head's query is folded into the key projection instead
    (``q_h . (W_k,h k + b_k,h) = (W_k,h^T q_h) . k + const``, and a constant drops out of the softmax),
    and the value projection is applied once to the attention-weighted sum of the raw values
    (the weights sum to 1, so ``sum_j a_j (W_v,h v_j + b_v,h) = W_v,h (sum_j a_j v_j) + b_v,h``).
    That is ``heads * N * d`` multiply-adds per query instead of ``2 * N * d^2``: the decoder reads
    up to stride 8, thousands of tokens per frame and object. Same arithmetic up to float rounding.

    Args:
        query: ``(S, 1, d)``; key, value: ``(S, N, d)`` (batch first, as ``attn``).
    Returns:
        ``(S, 1, d)``.
    """
    s, _, d = query.shape
    h = attn.num_heads
    dh = d // h
    w_q, w_k, w_v = attn.in_proj_weight.chunk(3)
    b_q, _, b_v = attn.in_proj_bias.chunk(3)
    q = F.linear(query[:, 0], w_q, b_q).reshape(s, h, dh) * dh**-0.5  # (S, H, dh)
    q_in = torch.einsum("she,hed->shd", q, w_k.reshape(h, dh, d))  # (S, H, d): queries in key-input space
    weights = torch.einsum("shd,snd->shn", q_in, key).softmax(dim=-1)  # (S, H, N)
    mixed = torch.einsum("shn,snd->shd", weights, value)  # (S, H, d)
    out = torch.einsum("shd,hed->she", mixed, w_v.reshape(h, dh, d)) + b_v.reshape(h, dh)  # (S, H, dh)
    return attn.out_proj(out.reshape(s, 1, d))


class SpaceTimeDecoder(nn.Module):
    """Stack of :class:`DecoderLayer`; layer ``i`` attends to FPN level ``i mod 3`` of ``[y32, y16, y8]``.

    Args:
        dim: width d.
        heads: attention heads.
        ffn: FFN hidden width.
        dropout: dropout everywhere in the block.
        num_layers: number of blocks.
        time_embed_len: rows of the fixed sine time table (frame position inside the clip).
        num_levels: FPN levels cycled through (3).
    """

    time_embed: Tensor  # buffer (time_embed_len, d)

    def __init__(
        self, dim: int, heads: int, ffn: int, dropout: float, num_layers: int, time_embed_len: int, num_levels: int = 3
    ) -> None:
        super().__init__()
        self.query_embed = nn.Parameter(torch.randn(dim))  # one learned query, shared by all frames
        self.register_buffer("time_embed", sine_time_table(time_embed_len, dim))  # (len, d)
        self.level_embed = nn.Parameter(torch.empty(num_levels, dim))
        nn.init.xavier_uniform_(self.level_embed)
        self.layers = nn.ModuleList(DecoderLayer(dim, heads, ffn, dropout) for _ in range(num_layers))
        self.num_levels = num_levels

    def forward(self, features: Sequence[Tensor], pos: Sequence[Tensor], num_objects: int) -> list[Tensor]:
        """
        Args:
            features: ``num_levels`` FPN maps ``(B*T, d, h_l, w_l)``, coarse to fine.
            pos: their sine position encodings ``(1, d, h_l, w_l)``.
            num_objects: B.
        Returns:
            the hidden states after every layer, each ``(B, T, d)``.
        """
        bt, d = features[0].shape[:2]
        t = bt // num_objects
        if t > self.time_embed.shape[0]:
            raise ValueError(f"clip of {t} frames but the time embedding has {self.time_embed.shape[0]} rows")
        query_pos = self.query_embed + self.time_embed[:t]  # (T, d)
        memories = [f.flatten(2).transpose(1, 2) + self.level_embed[i] for i, f in enumerate(features)]
        mem_pos = [p.flatten(2).transpose(1, 2) for p in pos]
        tgt = features[0].new_zeros(num_objects, t, d)
        hidden = []
        for i, layer in enumerate(self.layers):
            level = i % self.num_levels
            tgt = layer(tgt, query_pos, memories[level], mem_pos[level])
            hidden.append(tgt)
        return hidden
