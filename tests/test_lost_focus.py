"""Training windows around a target's absence (``data.synthetic_lost_focus``): the window rule on hand-made
visibility, the synthetic stream's windows with and without the option, and how a run sets it."""

from __future__ import annotations

import numpy as np
import pytest

from tamvt.data.synthetic import iter_video
from tamvt.data.training.synthetic import AFTER_FRAMES, SyntheticWindows, absence_window
from tamvt.errors import TamvtError


def _shown(n: int, gone: tuple[int, int]) -> np.ndarray:
    shown = np.ones(n, bool)
    shown[gone[0] : gone[1] + 1] = False
    return shown


def _check(window: list[int], reversed_: bool, shown: np.ndarray, num_memory: int, max_skip: int) -> None:
    steps = set(np.diff(window).tolist())
    assert len(steps) == 1  # one stride
    (step,) = steps
    assert (step < 0) == reversed_ and 1 <= abs(step) <= max_skip
    assert min(window) >= 0 and max(window) < len(shown)
    seen = shown[window]
    assert seen[:num_memory].all()  # the memory frames show the target
    absent = np.flatnonzero(~seen)
    assert len(absent) and absent[0] >= num_memory  # the target goes away in the query frames
    assert seen[absent[-1] + 1 :].sum() >= AFTER_FRAMES  # and is back in at least AFTER_FRAMES frames


def test_the_window_holds_memory_before_the_absence_and_the_return_after_it():
    rng = np.random.default_rng(0)
    shown = _shown(96, (40, 59))
    strides, reversed_count = set(), 0
    for _ in range(200):
        chosen = absence_window(rng, shown, (45, 50), 18, 2, 0.5, 4)  # a part of the run: widened to all of it
        assert chosen is not None
        window, rev = chosen
        _check(window, rev, shown, 2, 4)
        strides.add(abs(window[1] - window[0]))
        reversed_count += rev
    assert strides == {2, 3, 4}  # 20 hidden frames need 3 after them and 2 before: stride 1 cannot hold them
    assert 60 < reversed_count < 140  # about half backwards
    assert all(not absence_window(rng, shown, (40, 59), 18, 2, 0.0, 4)[1] for _ in range(20))


def test_short_absences_take_every_stride_and_long_ones_none():
    rng = np.random.default_rng(1)
    shown = _shown(96, (50, 51))
    strides = set()
    for _ in range(100):
        window, rev = absence_window(rng, shown, (50, 51), 18, 2, 0.0, 4)
        _check(window, rev, shown, 2, 4)  # strides of 3 and 4 too, but never stepping over the two frames
        strides.add(abs(window[1] - window[0]))
    assert strides == {1, 2, 3, 4}
    assert absence_window(rng, _shown(96, (10, 89)), (10, 89), 18, 2, 0.5, 4) is None  # 80 frames: no window fits
    early = _shown(96, (3, 10))  # 3 frames before the absence: too few for 4 memory frames, enough after it
    assert absence_window(rng, early, (3, 10), 18, 4, 0.0, 4) is None
    window, rev = absence_window(rng, early, (3, 10), 18, 4, 1.0, 4)  # backwards it fits
    assert rev and window[-1] <= 2
    _check(window, rev, early, 4, 4)


def test_frames_where_the_target_shows_are_refused():
    with pytest.raises(ValueError, match="does not show"):
        absence_window(np.random.default_rng(0), _shown(40, (10, 15)), (9, 15), 12, 2, 0.0, 2)


def _dataset(focus: float | None) -> SyntheticWindows:
    kw = {} if focus is None else {"lost_focus": focus}
    return SyntheticWindows(
        "train-lost", 8, 12, 2, None, reverse_prob=0.5, seed=3, size=(60, 80), max_skip=3, lost_share=1.0, **kw
    )


def test_the_stream_gives_absence_windows_only_where_asked():
    plain, off, on = _dataset(None), _dataset(0.0), _dataset(1.0)
    focused = 0
    for i in range(len(on)):
        events = [e for e in iter_video(on.video_config(i)).plan.events if e.type in ("hide", "exit")]
        a, b, c = plain[i], off[i], on[i]
        assert a.frame_indices == b.frame_indices and a.object_id == b.object_id  # 0: the usual windows
        assert np.array_equal(a.frames.numpy(), b.frames.numpy())
        if not events:  # nothing to focus on: the usual window, whatever the option
            assert c.frame_indices == a.frame_indices and c.object_id == a.object_id
            continue
        (event,) = events
        assert c.object_id == event.object
        seen = c.masks.flatten(1).any(1).numpy().astype(bool)
        _check(list(c.frame_indices), c.reversed, _full_visibility(on, i, event.object), 2, 3)
        assert seen[:2].all() and not seen.all()
        focused += 1
        again = on[i]
        assert again.frame_indices == c.frame_indices and np.array_equal(again.frames.numpy(), c.frames.numpy())
    assert focused >= 4  # lost_share=1: most videos have a hide or an exit


def _full_visibility(ds: SyntheticWindows, index: int, obj: int) -> np.ndarray:
    from tamvt.data.synthetic.render import render_frame

    lazy = iter_video(ds.video_config(index))
    return np.array([(render_frame(lazy.plan, t, with_frame=False)[1] == obj).any() for t in range(len(lazy))])


def test_a_run_sets_the_focus():
    from tamvt.train.config import load_train_config
    from tamvt.train.data import build_train_dataset

    cfg = load_train_config("synthetic-lost", ["data.synthetic_lost_focus=0.5"])
    assert build_train_dataset(cfg.data, seed=0).lost_focus == 0.5
    assert load_train_config("synthetic-lost").data.synthetic_lost_focus == 0.0  # off unless asked
    with pytest.raises(TamvtError, match="synthetic_lost_focus"):
        load_train_config("synthetic-lost", ["data.synthetic_lost_focus=1.5"])
    with pytest.raises(ValueError, match="lost_focus"):
        _dataset(-0.1)


def _window_returns():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "window_returns.py"
    spec = importlib.util.spec_from_file_location("window_returns_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_count_of_returns_reads_the_absence_and_how_far_the_target_comes_back():
    returns = _window_returns().returns
    masks = np.zeros((6, 10, 20), bool)
    masks[0, 0:2, 0:2] = masks[2, 0:2, 0:2] = True  # memory frame 1 empty; last seen: frame 2
    masks[5, 8:10, 18:20] = True  # back in the far corner after frames 3 and 4
    gap, far = returns(masks, (0, 2, 4, 6, 8, 10), num_memory=2)
    assert gap == 10 - 4 - 1 and far == pytest.approx(np.hypot(0.8, 0.9))
    masks[5] = False
    assert returns(masks, (0, 2, 4, 6, 8, 10), num_memory=2) is None  # gone, never back: no return
    masks[3] = masks[2]
    assert returns(masks[:4], (0, 1, 2, 3), num_memory=2) is None  # always there in the query frames


def test_the_count_runs_on_a_preset(capsys):
    main = _window_returns().main
    assert main(["synthetic-lost", "--num", "6", "data.synthetic_lost_focus=1", "data.synthetic_frames=48"]) == 0
    out = capsys.readouterr().out
    assert "of 6 windows show a return" in out and "absent >= 12 frames" in out
    assert main(["finetune-vost", "--num", "1"]) == 1
    assert "not synthetic" in capsys.readouterr().err
