"""Space-time decoder (SPEC §1.7): one query per clip frame, refined by post-norm blocks of temporal
self-attention, frame-wise cross-attention to one FPN level, and an FFN."""

from __future__ import annotations

from typing import Sequence

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
        cross = self.cross_attn(q, memory + memory_pos, memory, need_weights=False)[0]
        tgt = self.norm2(tgt + self.dropout2(cross.reshape(b, t, d)))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout3(ffn))


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

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float, num_layers: int,
                 time_embed_len: int, num_levels: int = 3) -> None:
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
