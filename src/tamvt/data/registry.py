"""One entry point for the dataset formats: ``read_dataset("davis", root, split)``.

The table maps a format name to ``module:function``; a reader module is imported only when its
format is asked for (no import-time registration).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from tamvt.data.sequence import VideoSequence
from tamvt.errors import TamvtError

_READERS = {
    "davis": "tamvt.data.davis:read_davis",
    "youtube": "tamvt.data.youtube:read_youtube",
    "vost": "tamvt.data.vost:read_vost",
    "visor": "tamvt.data.visor:read_visor",
}
FORMATS: tuple[str, ...] = tuple(_READERS)


def read_dataset(fmt: str, root: str | Path, split: str = "val", **kw: Any) -> list[VideoSequence]:
    """Read split ``split`` of the dataset at ``root`` stored in format ``fmt`` (one of FORMATS).

    Extra keyword arguments go to the reader (e.g. ``resolution=`` for DAVIS, ``frames_dir=``
    for VOST, ``sequences=[...]`` for all).
    """
    if fmt not in _READERS:
        raise TamvtError(f"unknown dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")
    module, func = _READERS[fmt].split(":")
    reader = getattr(importlib.import_module(module), func)
    return reader(root, split=split, **kw)
