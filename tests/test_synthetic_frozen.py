"""The existing generator presets render the same pixels as when they were pinned.

The validation suite's pixels fix the benchmark and shipped-model numbers, and the training stream's
fix what a run with a given seed sees; a change to the generator (a new event, a new draw) must leave
them alone. Each entry below is a sha256 of a few frames + masks of one video of a preset (or of a few
training windows), recorded before the lost-and-found events were added to the generator.

A failure right after a numpy or opencv upgrade means the upgrade changed pixels, not the generator;
``python tests/test_synthetic_frozen.py`` prints the table again for the versions installed.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from tamvt.data.synthetic import iter_video, preset_suite
from tamvt.data.training.synthetic import SyntheticWindows
from tamvt.data.training.transforms import WindowAugment

# (preset, suite seed, first videos taken, size override or None)
CASES: tuple[tuple[str, int, int, tuple[int, int] | None], ...] = (
    ("tiny", 0, 3, None),
    ("tiny", 7, 3, None),
    ("demo", 0, 1, None),
    ("demo", 7, 1, None),
    ("val", 0, 33, None),
    ("val", 3, 6, None),
    ("long", 0, 3, None),
    ("train", 0, 14, None),
    ("train", 5, 14, None),
    ("train", 0, 7, (120, 160)),  # synthetic-small's frame size
)


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:20]


def video_fingerprints() -> dict[str, str]:
    """``{"<preset>/<seed>/<size>/<name>": digest of frames and masks 0, T // 2, T - 1}``."""
    out = {}
    for preset, seed, num, size in CASES:
        for cfg in preset_suite(preset, seed=seed)[:num]:
            if size is not None:
                cfg = dataclasses.replace(cfg, size=size)
            lazy = iter_video(cfg)
            arrays = [a for t in (0, cfg.length // 2, cfg.length - 1) for a in lazy.render(t)]
            out[f"{preset}/{seed}/{cfg.size[0]}x{cfg.size[1]}/{cfg.name}"] = _digest(*arrays)
    return out


def window_fingerprints() -> dict[str, str]:
    """The training windows synthetic-small draws (augmented, some reversed), item by item."""
    aug = WindowAugment(out_size=(96, 128), scale_range=(1.0, 1.3), hflip_prob=0.5, jitter=(0.1, 0.1, 0.1, 0.02))
    ds = SyntheticWindows(
        "train", epoch_size=4, length=12, num_memory=2, augment=aug, reverse_prob=0.5, seed=0, size=(120, 160)
    )
    out = {}
    for i in range(4):
        s = ds[i]
        out[f"windows/{i}/{s.video}"] = _digest(s.frames.numpy(), s.masks.numpy(), np.array(s.frame_indices))
    return out


VIDEOS: dict[str, str] = {
    "tiny/0/120x160/tiny-000": "ba48d24ef48383674a6a",
    "tiny/0/120x160/tiny-001": "fb46fc354758f756f48a",
    "tiny/0/120x160/tiny-002": "0880d8686fb257399d45",
    "tiny/7/120x160/tiny-000": "fcedeb4e72dec2cc0b13",
    "tiny/7/120x160/tiny-001": "35037beee5f317493472",
    "tiny/7/120x160/tiny-002": "c24679d61fd8f66dfdbf",
    "demo/0/240x320/demo-000": "0fa1c07c8c110047661a",
    "demo/7/240x320/demo-000": "80f486cbed871f319503",
    "val/0/240x320/val-000": "cc3f0a5387ba49a7d601",
    "val/0/240x320/val-001": "ffd46e9970b69c5b0801",
    "val/0/240x320/val-002": "d4028c9505ef73e30b22",
    "val/0/240x320/val-003": "1a568e7155570aa5cf50",
    "val/0/240x320/val-004": "111c208d4519d6da0d68",
    "val/0/240x320/val-005": "bf79f05fd8d9158b467a",
    "val/0/240x320/val-006": "c230e12d43a580661a24",
    "val/0/240x320/val-007": "0f4e29e0455da670f202",
    "val/0/240x320/val-008": "2c916c2d259b14959cd7",
    "val/0/240x320/val-009": "85e181c98b2faa5a0308",
    "val/0/240x320/val-010": "624ed4fe054cb67cc771",
    "val/0/240x320/val-011": "7d408ffb20ac2cea5c8b",
    "val/0/240x320/val-012": "90b04e4e0f396b539af4",
    "val/0/240x320/val-013": "e8156b26a109b0f72e2e",
    "val/0/240x320/val-014": "51030740a43a32e4efa6",
    "val/0/240x320/val-015": "818190f37dc27fd11a6c",
    "val/0/240x320/val-016": "e6c6addbdfccf88a4c5d",
    "val/0/240x320/val-017": "f42bd995973a669b6259",
    "val/0/240x320/val-018": "a9f4c16e8e9432b10003",
    "val/0/240x320/val-019": "1041f2ccc48c04a24f1c",
    "val/0/240x320/val-020": "3d9c2d685a9412d02020",
    "val/0/240x320/val-021": "cf3ef3ec9e3a6893e822",
    "val/0/240x320/val-022": "effc56a40e25f40a9bcb",
    "val/0/240x320/val-023": "ca539bf724bee66a941a",
    "val/0/240x320/val-024": "1ac0af054defdaa700fb",
    "val/0/240x320/val-025": "38e0722f12f404a13f82",
    "val/0/240x320/val-026": "19f027e89b40c67b299b",
    "val/0/240x320/val-027": "9b9bbae28f974042bcb9",
    "val/0/240x320/val-028": "25a46becaa41915d8e48",
    "val/0/240x320/val-029": "f0ca62ed3f4e1ed1293f",
    "val/0/240x320/val-030": "c0ac4d59a0025784ce41",
    "val/0/240x320/val-031": "05e62bc803984696b8a5",
    "val/0/240x320/val-032": "c9dfdb22fa013d117f57",
    "val/3/240x320/val-000": "47d4871e63abe7ca9b55",
    "val/3/240x320/val-001": "6a0498c3e07b3026c866",
    "val/3/240x320/val-002": "31d4c5dc2a317b3ecf19",
    "val/3/240x320/val-003": "c3bfa3011e359881663b",
    "val/3/240x320/val-004": "3674cb303a44d11b941e",
    "val/3/240x320/val-005": "2349b8d5d282d52ecb04",
    "long/0/240x320/long-000": "3bc37f32de3bd52e34eb",
    "long/0/240x320/long-001": "6f4c51b7b17ed4a0a491",
    "long/0/240x320/long-002": "d403e4cbcb7124214269",
    "train/0/240x320/train-000": "90907d44720127227758",
    "train/0/240x320/train-001": "3f0e6e7778829531a0c6",
    "train/0/240x320/train-002": "610cca88248d027042f0",
    "train/0/240x320/train-003": "94b881232c5c4a85f334",
    "train/0/240x320/train-004": "0599609cfca4f569d14a",
    "train/0/240x320/train-005": "f71f8af6b435eda40991",
    "train/0/240x320/train-006": "db06ee56980563a4ef1f",
    "train/0/240x320/train-007": "85d8d606815c0447d5b9",
    "train/0/240x320/train-008": "92ae7c899a393febcefe",
    "train/0/240x320/train-009": "bc80cddfb3d4f99d3d1a",
    "train/0/240x320/train-010": "88b095e15b6036588f86",
    "train/0/240x320/train-011": "bbfe5cf7e182bcd5354a",
    "train/0/240x320/train-012": "40975be27cc61c0b1ef1",
    "train/0/240x320/train-013": "6a25746a001f3116c98a",
    "train/5/240x320/train-000": "737609443e90f1d1746a",
    "train/5/240x320/train-001": "ebd975586f8414516a92",
    "train/5/240x320/train-002": "a9a14c9892c6526ec738",
    "train/5/240x320/train-003": "9c3253c7102a814b5582",
    "train/5/240x320/train-004": "9f844bd1679b34eba706",
    "train/5/240x320/train-005": "37dc544862c1b44d1c7e",
    "train/5/240x320/train-006": "05b5f18c6f0bbb4a99f7",
    "train/5/240x320/train-007": "9d98f8c5fe87ee993705",
    "train/5/240x320/train-008": "da99986f2cb0204eef61",
    "train/5/240x320/train-009": "493452096a01090edb33",
    "train/5/240x320/train-010": "9fc10564e621f3f86570",
    "train/5/240x320/train-011": "d7f59e12ed6ac867396e",
    "train/5/240x320/train-012": "a74137437bd8e8a9c968",
    "train/5/240x320/train-013": "3531ebccaca93b0d84d3",
    "train/0/120x160/train-000": "6a29a9ee5e84b077976f",
    "train/0/120x160/train-001": "69a35fff9c1cb3a752e0",
    "train/0/120x160/train-002": "484830c00922d2696459",
    "train/0/120x160/train-003": "7792eab3b2162b646418",
    "train/0/120x160/train-004": "716bed0a05a39848de49",
    "train/0/120x160/train-005": "1386d468f84ac5109441",
    "train/0/120x160/train-006": "0b34a97c4c30d3e27482",
}

WINDOWS: dict[str, str] = {
    "windows/0/synthetic-2968811710": "ddc74fab24f08c8c5556",
    "windows/1/synthetic-3964924996": "0bd9cd92cc48f117e1ce",
    "windows/2/synthetic-3141116543": "09eec1b3e13789ff7abd",
    "windows/3/synthetic-2613022947": "af1719dec431df9cb422",
}


def test_existing_presets_render_the_pinned_pixels():
    got = video_fingerprints()
    assert got.keys() == VIDEOS.keys()
    changed = [k for k in got if got[k] != VIDEOS[k]]
    assert not changed, f"{len(changed)} video(s) render other pixels than pinned: {changed[:5]}"


def test_training_windows_of_the_train_preset_are_the_pinned_ones():
    assert window_fingerprints() == WINDOWS


if __name__ == "__main__":
    for title, table in (("VIDEOS", video_fingerprints()), ("WINDOWS", window_fingerprints())):
        print(f"{title}: dict[str, str] = {{")
        for key, value in table.items():
            print(f'    "{key}": "{value}",')
        print("}\n")
