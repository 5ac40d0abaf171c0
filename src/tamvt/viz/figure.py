"""matplotlib, imported on demand with the file-only ``Agg`` backend, and PNG output."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from tamvt.atomic import atomic_path
from tamvt.errors import TamvtError


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed), or a one-line error naming the extra."""
    try:
        import matplotlib
    except ImportError:
        raise TamvtError("plots need matplotlib: pip install 'tamvt[viz]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def new_figure(width: float, height: float) -> Any:
    """A figure of ``width x height`` inches that is not registered with pyplot's global state."""
    from matplotlib.figure import Figure

    pyplot()  # the import check and the backend
    return Figure(figsize=(width, height), layout="constrained")


def png_bytes(fig: Any, dpi: int = 100) -> bytes:
    """The figure as an RGB PNG (the figures are opaque: no alpha channel to store)."""
    from PIL import Image

    raw = io.BytesIO()
    fig.savefig(raw, format="png", dpi=dpi)
    raw.seek(0)
    out = io.BytesIO()
    Image.open(raw).convert("RGB").save(out, format="png", optimize=True)
    return out.getvalue()


def save_png(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Write the figure to ``path`` atomically (folders created)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(png_bytes(fig, dpi))
    return path


def safe_name(text: str) -> str:
    """``text`` usable as part of a file name (sequence names may hold anything)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "_"
