"""The learned relative time encoding (paper Fig. 4a): the scalar e of every memory slot, for every
memory size n = 1..N.

The table is :class:`tamvt.models.matching.RelativeTimeEncoding`'s ``theta``; the slot of each memory
position comes from :func:`tamvt.models.matching.rte_rows`, the function matching itself uses. One
table serves every matching scale (the authors' ``rel_time_theta``), so there is one picture for all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tamvt.errors import TamvtError
from tamvt.models.matching import rte_rows


@dataclass(frozen=True)
class RteTable:
    """The RTE scalars laid out by memory size and position.

    Attributes:
        mode: ``mul`` (e multiplies the attention logits of a memory frame: an inverse temperature)
            or ``add`` (e is added to them).
        values: ``(N, N)`` float64; row ``n-1`` = memory size ``n``, column ``i`` = memory position
            ``i`` in memory order ``[reference, oldest, ..., newest]`` (columns ``>= n`` are NaN).
        num_scales: matching scales that share the table.
    """

    mode: str
    values: np.ndarray
    num_scales: int

    @property
    def bank_size(self) -> int:
        return self.values.shape[0]


def rte_table(model: Any) -> RteTable:
    """The RTE table of a :class:`~tamvt.models.tamvt.TamVT` (a model without RTE is an error)."""
    rte = model.matching.rte
    if rte.theta is None:
        raise TamvtError("this model has no relative time encoding (model.rte: none)")
    theta = rte.theta.detach().double().cpu().numpy()
    n_max = rte.bank_size
    values = np.full((n_max, n_max), np.nan)
    for n in range(1, n_max + 1):
        values[n - 1, :n] = theta[rte_rows(n)]
    return RteTable(rte.mode, values, len(model.matching.blocks))


def position_label(i: int, n: int) -> str:
    """Name of memory position ``i`` of ``n``: ``ref``, then ages counted from the newest (``t-1`` = newest)."""
    return "ref" if i == 0 else f"t-{n - i}"


def plot_rte(table: RteTable) -> Any:
    """Heatmap (rows: memory size n; columns: memory position, reference first) and one line per n
    over the age of the non-reference entries (1 = newest), the reference as a star at x = 0."""
    from tamvt.viz.figure import new_figure

    n_max = table.bank_size
    fig = new_figure(6.0 + 0.45 * n_max, 3.2 + 0.25 * n_max)
    ax_map, ax_line = fig.subplots(1, 2, width_ratios=[1.15, 1])
    finite = table.values[np.isfinite(table.values)]
    image = ax_map.imshow(
        table.values,
        cmap="viridis",
        vmin=finite.min(),
        vmax=finite.max(),
        aspect="auto",
        extent=(-0.5, n_max - 0.5, n_max + 0.5, 0.5),
    )
    image.set_gid("rte-heatmap")
    for n in range(1, n_max + 1):
        for i in range(n):
            v = table.values[n - 1, i]
            light = v < finite.min() + 0.5 * (finite.max() - finite.min())
            ax_map.text(i, n, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if light else "black")
    ax_map.set_xticks(range(n_max), ["ref"] + [f"{i}" for i in range(1, n_max)])
    ax_map.set_yticks(range(1, n_max + 1))
    ax_map.set_xlabel("memory position (ref, oldest ... newest)")
    ax_map.set_ylabel("memory size n")
    ax_map.set_title("RTE e per memory size and position")
    fig.colorbar(image, ax=ax_map, shrink=0.8, label="e (×logits)" if table.mode == "mul" else "e (+logits)")

    colors = _colors(n_max)
    for n in range(1, n_max + 1):
        row = table.values[n - 1, :n]
        ages = np.arange(n - 1, 0, -1)  # position i > 0 has age n - i: the newest is 1
        line = ax_line.plot(ages, row[1:], marker="o", ms=3, color=colors[n - 1], label=f"n={n}")[0]
        line.set_gid(f"rte-line-n{n}")
        ref = ax_line.plot([0], [row[0]], marker="*", ms=9, color=colors[n - 1], ls="none")[0]
        ref.set_gid(f"rte-ref-n{n}")
    ax_line.axhline(1.0 if table.mode == "mul" else 0.0, color="0.6", lw=0.8, ls="--")
    ax_line.set_xlabel("entry: reference (★), then age (1 = newest)")
    ax_line.set_ylabel("e")
    ax_line.set_xticks(range(n_max), ["ref"] + [str(a) for a in range(1, n_max)])
    ax_line.set_title("RTE by age of the entry")
    ax_line.legend(fontsize=7, ncol=2 if n_max > 5 else 1)
    scales = f"shared by the {table.num_scales} matching scales" if table.num_scales > 1 else "one matching scale"
    fig.suptitle(f"relative time encoding ({table.mode}, {scales})", fontsize=10)
    return fig


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["plasma"]
    return [cmap(0.85 * i / max(n - 1, 1)) for i in range(n)]
