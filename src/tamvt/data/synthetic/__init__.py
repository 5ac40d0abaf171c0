"""The synthetic video generator: textured objects on cluttered, moving backgrounds that are cut, peeled,
shrunk, morphed, molded and occluded (the VOST phenomena), with exact masks; on request targets that hide,
leave the frame and come back, and still decoys where they were (the lost-and-found events).

Drawn in layers, each a module: :mod:`~tamvt.data.synthetic.shapes` (outlines, textures, backgrounds),
:mod:`~tamvt.data.synthetic.events` (motion and transformations as functions of the frame index),
:mod:`~tamvt.data.synthetic.plan` (everything drawn from the seed before any frame is rendered),
:mod:`~tamvt.data.synthetic.render` (a plan evaluated at a frame index), :mod:`~tamvt.data.synthetic.presets`
(named suites) and :mod:`~tamvt.data.synthetic.dataset` (a suite written to disk in the DAVIS layout);
:mod:`~tamvt.data.synthetic.lost` adds the lost-and-found events to a plan.
This package exports the generator's public names.
"""

from tamvt.data.synthetic.events import EVENT_TYPES
from tamvt.data.synthetic.lost import LOST_EVENTS
from tamvt.data.synthetic.plan import (
    EVENTS,
    FEATURES,
    LONG_FRAMES,
    SMALL_PCT,
    Kind,
    SynthConfig,
    SynthConfigError,
    VideoPlan,
    derive_seed,
    plan_video,
)
from tamvt.data.synthetic.presets import PRESETS, preset_suite
from tamvt.data.synthetic.render import (
    LazyVideo,
    SyntheticVideo,
    iter_video,
    make_video,
    render_frame,
    stream,
    video_attributes,
)

__all__ = [
    "EVENTS",
    "EVENT_TYPES",
    "FEATURES",
    "LONG_FRAMES",
    "LOST_EVENTS",
    "PRESETS",
    "SMALL_PCT",
    "Kind",
    "LazyVideo",
    "SynthConfig",
    "SynthConfigError",
    "SyntheticVideo",
    "VideoPlan",
    "derive_seed",
    "iter_video",
    "make_video",
    "plan_video",
    "preset_suite",
    "render_frame",
    "stream",
    "video_attributes",
]
