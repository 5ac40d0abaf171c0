"""Online inference: frame sources, the input / output transforms, the session state and the predictor
that runs the model clip by clip over a video (SPEC §2).

    from tamvt.inference import Predictor
"""

from tamvt.inference.predictor import FrameResult, LiveStream, Predictor
from tamvt.inference.session import Session

__all__ = ["FrameResult", "LiveStream", "Predictor", "Session"]
