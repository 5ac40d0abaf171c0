"""Learning works: the small model, trained on windows of ONE short synthetic video, segments that video
with J > 0.9 when run through the online predictor (the clip-by-clip inference users run)."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import Dataset


class OneVideoWindows(Dataset):
    """``n`` training windows of 8 frames cut from one video; sample i of epoch e is fixed by (e, i)."""

    def __init__(self, video, n: int) -> None:
        self.video, self.n, self.epoch = video, n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        from tamvt.data.training.synthetic import sample_window

        return sample_window(
            self.video.frames,
            self.video.masks,
            np.random.default_rng([self.epoch, index]),
            length=8,
            num_memory=2,
            augment=None,
            reverse_prob=0.0,
            max_skip=1,
            name="one",
        )


@pytest.mark.slow
def test_small_model_fits_one_video(tmp_path):
    from tamvt.data.synthetic import SynthConfig, make_video
    from tamvt.train.config import load_train_config
    from tamvt.train.trainer import Trainer
    from tamvt.train.validate import ValVideo

    video = make_video(SynthConfig(size=(64, 96), length=16, num_objects=1, events=("cut",), seed=7, num_distractors=1))
    steps = 160
    cfg = load_train_config(
        "synthetic-small",
        [
            f"optim.steps={steps}",
            "optim.lr=3e-4",
            "optim.lr_backbone=3e-4",
            "optim.milestones=[]",
            "optim.final_drop=0",
            "optim.warmup_fraction=0.05",
            "optim.grad_clip=1.0",
            "optim.ema_decay=0.0",
            "run.validate_every=0",
            f"run.checkpoint_every={steps}",
            "run.num_workers=0",
            "run.progress=false",
            "val.source=none",
        ],
    )
    val = [ValVideo("one", video.frames, dict(enumerate(video.masks)))]
    trainer = Trainer(cfg, tmp_path / "run", resume="never", dataset=OneVideoWindows(video, steps), val_videos=val)
    before = trainer.run_validation()["J"]
    summary = trainer.fit()
    after = summary["val"]
    assert summary["step"] == steps
    print(f"J before {before:.3f}, after {after['J']:.3f} (J_tr {after['J_tr']:.3f})")
    assert after["J"] > 0.9, f"J {after['J']:.3f} (before training {before:.3f})"
    assert before < 0.5  # the score comes from training, not from an easy video
