"""Deprecated location of :class:`~tamvt.inference.predictor.Predictor` (moved to
:mod:`tamvt.inference.predictor` in 0.2; this alias is kept for one release because the README taught
``from tamvt.predictor import Predictor``). Import from ``tamvt.inference`` instead."""

from __future__ import annotations

import warnings

from tamvt.inference.predictor import FrameResult, Predictor, index_ids

warnings.warn("tamvt.predictor is deprecated: use `from tamvt.inference import Predictor`",
              DeprecationWarning, stacklevel=2)

__all__ = ["FrameResult", "Predictor", "index_ids"]
