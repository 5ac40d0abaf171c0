"""Frame I/O: image files, natural sorting, lazy video decoding and the atomic VideoWriter."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tamvt.data.images import iter_images, list_frame_files, read_image, read_image_size
from tamvt.data.video import VideoWriter, available_video_codec, iter_video, probe_video
from tamvt.errors import InputError

H, W = 24, 32


def test_list_frame_files_natural_order_and_filters(tmp_path: Path) -> None:
    for name in ["f10.jpg", "f2.JPG", "f1.png", "f3.jpeg", "notes.txt", "._f0.jpg", "f4.bmp"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.jpg").mkdir()
    assert [p.name for p in list_frame_files(tmp_path)] == ["f1.png", "f2.JPG", "f3.jpeg", "f10.jpg"]
    with pytest.raises(InputError, match="missing: frame folder not found"):
        list_frame_files(tmp_path / "missing")


def test_read_image_converts_to_rgb(tmp_path: Path) -> None:
    Image.fromarray(np.full((H, W), 77, np.uint8), mode="L").save(tmp_path / "gray.png")
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    g = read_image(tmp_path / "gray.png", expected_size=(H, W))
    assert g.shape == (H, W, 3) and g.dtype == np.uint8 and (g == 77).all()
    assert read_image(tmp_path / "rgba.png")[0, 0].tolist() == [200, 0, 0]
    assert read_image_size(tmp_path / "gray.png") == (H, W)


def test_read_image_errors_name_the_file(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(InputError, match="ok.png: frame size 32x24 != expected 30x20"):
        read_image(tmp_path / "ok.png", expected_size=(20, 30))
    with pytest.raises(InputError, match="bad.jpg: cannot read image"):
        read_image(tmp_path / "bad.jpg")
    with pytest.raises(InputError, match="gone.jpg: frame file not found"):
        read_image(tmp_path / "gone.jpg")


def test_iter_images_is_lazy(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((H, W, 3), i, np.uint8)).save(paths[-1])
    (tmp_path / "2.png").write_bytes(b"broken")  # only reading it may fail
    it = iter_images(paths, start=0)
    assert isinstance(it, types.GeneratorType)
    assert [(i, int(f[0, 0, 0])) for i, f in (next(it), next(it))] == [(0, 0), (1, 1)]
    with pytest.raises(InputError, match="2.png"):
        next(it)


def _write_video(
    path: Path, n: int, hw: tuple[int, int] = (H, W), fps: float = 10, codec: str | None = None
) -> list[np.ndarray]:
    frames = [np.full((*hw, 3), 20 * i + 10, np.uint8) for i in range(n)]
    with VideoWriter(path, fps=fps, codec=codec) as w:
        for f in frames:
            w.write(f)
    return frames


@pytest.mark.parametrize("codec", [None, "mpeg4"])  # None: libx264 when PyAV has it
def test_video_round_trip(tmp_path: Path, codec: str | None) -> None:
    frames = _write_video(tmp_path / "v.mp4", 6, codec=codec)
    assert available_video_codec() in ("libx264", "mpeg4")
    assert probe_video(tmp_path / "v.mp4") == (6, (H, W), 10.0)
    it = iter_video(tmp_path / "v.mp4", start=2)
    assert isinstance(it, types.GeneratorType)
    got = list(it)
    assert [i for i, _ in got] == [2, 3, 4, 5]
    for i, f in got:  # lossy codec: flat grey levels survive within a few values
        assert f.shape == (H, W, 3) and abs(float(f.mean()) - frames[i].mean()) < 4
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]  # the temp file was renamed


def test_video_writer_pads_odd_sizes(tmp_path: Path) -> None:
    _write_video(tmp_path / "odd.mp4", 3, hw=(23, 31))
    n, hw, _ = probe_video(tmp_path / "odd.mp4")
    assert (n, hw) == (3, (24, 32))


def test_probe_counts_frames_by_demuxing_when_container_has_no_count(tmp_path: Path) -> None:
    # Matroska stores no frame count, so probe_video has to demux.
    _write_video(tmp_path / "v.mkv", 7, fps=5)
    assert probe_video(tmp_path / "v.mkv")[:2] == (7, (H, W))
    assert len(list(iter_video(tmp_path / "v.mkv"))) == 7


def test_video_writer_leaves_nothing_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(tmp_path / "v.mp4") as w:
        w.write(np.zeros((H, W, 3), np.uint8))
        raise RuntimeError("boom")
    with pytest.raises(ValueError, match="no frames"), VideoWriter(tmp_path / "empty.mp4"):
        pass
    with pytest.raises(ValueError, match="first frame size"), VideoWriter(tmp_path / "sizes.mp4") as w:
        w.write(np.zeros((H, W, 3), np.uint8))
        w.write(np.zeros((H, W + 2, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_unreadable_video(tmp_path: Path) -> None:
    (tmp_path / "junk.mp4").write_bytes(b"this is not a video at all" * 10)
    with pytest.raises(InputError, match="junk.mp4: cannot open video"):
        probe_video(tmp_path / "junk.mp4")
    with pytest.raises(InputError, match="junk.mp4"):
        list(iter_video(tmp_path / "junk.mp4"))
    with pytest.raises(InputError, match="none.mp4: video file not found"):
        probe_video(tmp_path / "none.mp4")
