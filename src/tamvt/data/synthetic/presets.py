"""Named suites of synthetic videos (``PRESETS``): the configs the tests, the demo, validation and training use."""

from __future__ import annotations

import numpy as np

from tamvt.data.synthetic.events import EVENT_TYPES
from tamvt.data.synthetic.lost import LOST_STREAM
from tamvt.data.synthetic.plan import SynthConfig, SynthConfigError, derive_seed


def _val_specs() -> list[dict]:
    """>= 30 videos: every event alone (several times), the features, combinations, long videos."""
    specs: list[dict] = []
    for n, ev in enumerate(EVENT_TYPES):  # 3 of each event, 1-3 objects, 36-72 frames
        specs += [dict(events=(ev,), num_objects=1 + (n + r) % 3, length=36 + 12 * ((n + r) % 4)) for r in range(3)]
    specs += [dict(events=("cut",), num_objects=3, length=60)]
    specs += [
        dict(events=("small",) + extra, num_objects=k, length=48)
        for extra, k in (((), 1), (("cut",), 2), (("occlusion",), 2), (("morph",), 3))
    ]
    specs += [
        dict(events=("multi_instance",) + extra, num_objects=k, length=48)
        for extra, k in (((), 1), (("cut",), 2), (("occlusion",), 2), (("shrink",), 3))
    ]
    specs += [
        dict(events=evs, num_objects=k, length=length)
        for evs, k, length in (
            (("cut", "occlusion"), 2, 300),
            (("peel", "morph", "small"), 3, 330),
            (("mold", "multi_instance", "cut"), 2, 360),
        )
    ]
    specs += [
        dict(events=("cut", "peel", "occlusion"), num_objects=3, length=64),
        dict(events=("morph", "mold", "multi_instance"), num_objects=4, length=64),
        dict(events="random", num_objects=3, length=48),
    ]
    return specs


_PRESETS = {
    "tiny": lambda: [
        dict(size=(120, 160), length=16, num_objects=2, events=("cut", "small")),
        dict(size=(120, 160), length=16, num_objects=2, events=("peel", "multi_instance")),
        dict(size=(120, 160), length=16, num_objects=1, events=("morph", "occlusion")),
    ],
    "demo": lambda: [dict(length=48, num_objects=2, events=("cut",))],
    "val": _val_specs,
    "long": lambda: [dict(length=300 + 30 * i, num_objects=2, events="random") for i in range(3)],
    "train": lambda: [dict(length=24 + 4 * (i % 7), num_objects=1 + i % 3, events="random") for i in range(100)],
}
_PRESETS["train-lost"] = _PRESETS["train"]
LOST_SHARE = {"train-lost": 0.5}  # the presets whose videos get lost events by default, and how many
PRESETS: tuple[str, ...] = tuple(_PRESETS)


def preset_suite(
    name: str,
    seed: int = 0,
    num: int | None = None,
    lost_share: float | None = None,
    lost: tuple[str, ...] | str = "random",
) -> list[SynthConfig]:
    """The configs of a named suite (``PRESETS``): ``tiny`` (tests), ``demo`` (1 video, 2 objects, a
    cut), ``val`` (33 videos covering every event, small objects, look-alikes, long videos, several
    objects), ``long`` (3 videos of 300-360 frames), ``train`` (100 random videos), ``train-lost`` (the
    same 100, half of them with random lost events: hide or exit, decoys).

    Video i gets seed ``derive_seed(seed, i)`` and name ``<name>-<i:03d>``; ``num`` takes the first
    ``num`` videos, or cycles through the suite with fresh seeds when it is longer. ``lost_share``: the
    share of the suite's videos with ``lost="random"`` (None = the preset's, ``LOST_SHARE``, 0 for most):
    the first ``round(share * n)`` of one fixed shuffle of the n videos, the same at every seed. A video
    keeps its seed with or without lost events, so it differs only by them. ``lost``: the events those
    videos get (``SynthConfig.lost``: ``"random"``, or names such as ``("exit",)``).
    """
    if name not in _PRESETS:
        raise SynthConfigError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    specs = _PRESETS[name]()
    count = len(specs) if num is None else int(num)
    if count < 1:
        raise SynthConfigError(f"num must be >= 1, got {num}")
    share = LOST_SHARE.get(name, 0.0) if lost_share is None else float(lost_share)
    if not 0.0 <= share <= 1.0:
        raise SynthConfigError(f"lost share must be in [0, 1], got {lost_share}")
    picked = np.random.default_rng([LOST_STREAM, len(specs)]).permutation(len(specs))[: round(share * len(specs))]
    for j in picked:
        specs[j] = dict(specs[j], lost=lost)
    return [
        SynthConfig(**specs[i % len(specs)], seed=derive_seed(seed, i), name=f"{name}-{i:03d}") for i in range(count)
    ]
