"""Training metrics: ``RUN_DIR/metrics.jsonl`` (one JSON object per line, appended, flushed per line)
and TensorBoard scalars when the optional ``tensorboard`` package is installed."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN / inf
    return value


class MetricsLogger:
    """Append records to ``out_dir/metrics.jsonl`` and TensorBoard (``out_dir/tb``).

    A record is a flat dict with ``event`` (``start`` | ``train`` | ``val``) and ``step``; its numeric
    fields become TensorBoard scalars ``<event>/<field>``. ``enabled=False`` (ranks > 0) does nothing.
    """

    def __init__(self, out_dir: str | Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self._file = None
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                pass
            else:
                self._tb = SummaryWriter(str(Path(out_dir) / "tb"))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled or self._file is None:
            return
        self._file.write(json.dumps({k: _plain(v) for k, v in record.items()}) + "\n")
        self._file.flush()
        if self._tb is not None and record.get("event") in ("train", "val"):
            step = int(record.get("step", 0))
            for key, value in record.items():
                if key not in ("event", "step") and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(f"{record['event']}/{key}", value, step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl``."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
