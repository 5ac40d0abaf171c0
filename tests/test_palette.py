"""Index-PNG masks: palette round trip, the DAVIS palette, and rejected mask kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tamvt.data.palette import DAVIS_PALETTE, read_index_png, write_index_png
from tamvt.errors import InputError

MASK = np.array([[0, 1, 2, 3], [255, 4, 0, 1], [7, 7, 0, 0]], np.uint8)


def test_davis_palette_values() -> None:
    # The PASCAL VOC / DAVIS colour map: 0 black, 1 dark red, 2 dark green, 3 olive.
    assert len(DAVIS_PALETTE) == 768
    assert tuple(DAVIS_PALETTE[0:3]) == (0, 0, 0)
    assert tuple(DAVIS_PALETTE[3:6]) == (128, 0, 0)
    assert tuple(DAVIS_PALETTE[6:9]) == (0, 128, 0)
    assert tuple(DAVIS_PALETTE[9:12]) == (128, 128, 0)
    assert tuple(DAVIS_PALETTE[255 * 3 : 256 * 3]) == (224, 224, 192)


def test_round_trip_defaults_to_davis_palette(tmp_path: Path) -> None:
    write_index_png(tmp_path / "m.png", MASK)
    mask, palette = read_index_png(tmp_path / "m.png")
    np.testing.assert_array_equal(mask, MASK)
    assert palette == DAVIS_PALETTE
    with Image.open(tmp_path / "m.png") as img:  # a real palette PNG, colours from the DAVIS map
        assert img.mode == "P" and img.convert("RGB").getpixel((2, 0)) == (0, 128, 0)
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]  # no temp file left behind


def test_round_trip_keeps_custom_palette(tmp_path: Path) -> None:
    custom = bytes((3 * i + c * 7) % 256 for i in range(256) for c in range(3))
    write_index_png(tmp_path / "m.png", MASK, palette=custom)
    mask, palette = read_index_png(tmp_path / "m.png")
    np.testing.assert_array_equal(mask, MASK)
    assert palette == custom
    # re-writing with the palette read back gives the same colours
    write_index_png(tmp_path / "again.png", mask, palette=palette)
    assert read_index_png(tmp_path / "again.png")[1] == custom


def test_gray_mask_has_no_palette(tmp_path: Path) -> None:
    Image.fromarray(MASK, mode="L").save(tmp_path / "gray.png")
    mask, palette = read_index_png(tmp_path / "gray.png")
    np.testing.assert_array_equal(mask, MASK)
    assert palette is None


def test_rejected_masks_name_the_file(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(np.full((3, 4), 2, np.uint16)).save(tmp_path / "deep.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="rgb.png: mask is RGB"):
        read_index_png(tmp_path / "rgb.png")
    with pytest.raises(InputError, match="deep.png: 16-bit mask"):
        read_index_png(tmp_path / "deep.png")
    with pytest.raises(InputError, match="junk.png: cannot read mask"):
        read_index_png(tmp_path / "junk.png")
    with pytest.raises(InputError, match="none.png: mask file not found"):
        read_index_png(tmp_path / "none.png")
    mask, _ = read_index_png(tmp_path / "deep.png", allow_16bit=True)
    assert mask.dtype == np.uint8 and (mask == 2).all()
