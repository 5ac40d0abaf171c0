"""The training loop: one window per process per step, DDP over processes, resumable.

    trainer = Trainer(cfg, out_dir="runs/x", resume="auto")
    summary = trainer.fit()

Per step: unroll the window (:mod:`tamvt.train.unroll`), focal + dice over every decoder layer,
one backward, gradient clipping, schedule, AdamW step, EMA update. Every ``run.checkpoint_every``
steps and at each epoch end ``RUN_DIR/last.pt`` is rewritten atomically; a restarted run with
``resume="auto"`` continues from it bit for bit (same weights as an uninterrupted run). Metrics
go to ``RUN_DIR/metrics.jsonl`` (one JSON object per line) and to TensorBoard when installed.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Sized
from pathlib import Path
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from tamvt.errors import TamvtError
from tamvt.models.tamvt import TamVT
from tamvt.train import distributed as D
from tamvt.train.config import TrainConfig, config_to_dict, config_to_yaml
from tamvt.train.data import ShardedOrder, build_train_dataset, steps_per_epoch
from tamvt.train.ema import ModelEma
from tamvt.train.metrics_log import MetricsLogger
from tamvt.train.optim import build_adamw, build_schedule, clip_grad_norm, param_groups
from tamvt.train.precision import autocast, use_bf16
from tamvt.train.state import (
    atomic_torch_save,
    capture_rng,
    load_run_state,
    make_checkpoint,
    restore_rng,
    seed_everything,
)
from tamvt.train.unroll import unroll_window

Resume = Literal["auto", "never"]


class WindowModel(nn.Module):
    """Wraps the network so that DDP sees one ``forward`` per window (it syncs gradients per forward)."""

    def __init__(self, net: TamVT, clip_length: int, capacity: int | None, position_drop: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.clip_length = clip_length
        self.capacity = capacity
        self.position_drop = position_drop

    def forward(
        self, frames: Tensor, memory_masks: Tensor, num_memory: int, shown: Tensor | None = None
    ) -> list[Tensor]:
        """``frames (T, 3, H, W)``, ``memory_masks (1, M, H, W)`` -> per-layer logits ``(1, T-M, H/4, W/4)``;
        ``shown (T,)``: where the target shows (:func:`~tamvt.train.unroll.unroll_window`)."""
        drop = self.position_drop if self.net.training else 0.0
        out = unroll_window(
            self.net, frames, memory_masks, num_memory, self.clip_length, self.capacity, position_drop=drop, shown=shown
        )
        return out.layer_logits


def _identity(x: Any) -> Any:
    return x


def _load_init_weights(net: nn.Module, path: str) -> None:
    """Start from a tamvt checkpoint (``.safetensors``), a run folder / ``.pt`` (its EMA weights), or a
    model name of ``tamvt weights list`` (e.g. ``official-static``, fetched on first use).

    A different memory capacity is allowed (e.g. pre-trained with N=9, fine-tuned with N=7): the RTE
    table is cut to the first blocks, or resampled to more (SPEC §1.5). Everything else must match.
    """
    from tamvt.checkpoint import load_state_dict_strict, read_checkpoint
    from tamvt.hub.registry import resolve_checkpoint
    from tamvt.models.matching import RTE_KEY, adapt_rte_state, rte_bank_size

    p = resolve_checkpoint(path)
    if p.is_dir() or p.suffix == ".pt":
        ckpt = load_run_state(p / "last.pt" if p.is_dir() else p)
        sd = dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
    else:
        sd, _, _ = read_checkpoint(p)
    own = net.state_dict().get(RTE_KEY)
    if own is not None and RTE_KEY in sd and sd[RTE_KEY].numel() != own.numel():
        old, new = rte_bank_size(sd[RTE_KEY].numel()), rte_bank_size(own.numel())
        if old is not None and new is not None:  # else the strict load below names the mismatch
            sd = adapt_rte_state(sd, old, new)
    try:
        load_state_dict_strict(net, sd, source=str(p))
    except TamvtError as err:
        raise TamvtError(f"init_from {p}: {err}") from None


class Trainer:
    """Builds everything from a :class:`TrainConfig` and runs :meth:`fit`.

    Args:
        cfg: the run's configuration.
        out_dir: run folder (``None``: ``cfg.run.out_dir``).
        resume: ``auto`` continues from ``out_dir/last.pt`` when it exists; ``never`` refuses to
            overwrite an existing run folder's checkpoint.
        dataset: a map-style dataset of :class:`~tamvt.data.training.batch.TrainingSample` to use instead of
            the one ``cfg.data`` describes (a sample must depend only on (epoch, index) for exact resume).
        val_videos: :class:`~tamvt.train.validate.ValVideo` list instead of the ones ``cfg.val`` describes.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        out_dir: str | Path | None = None,
        resume: Resume = "auto",
        dataset: Any = None,
        val_videos: list | None = None,
    ) -> None:
        from tamvt.losses import build_criterion
        from tamvt.models.tamvt import build_tamvt

        self.cfg = cfg
        self.out = Path(out_dir or cfg.run.out_dir)
        self.dist = D.setup(cfg.run.device)
        if cfg.run.threads:
            torch.set_num_threads(cfg.run.threads)
        seed_everything(cfg.run.seed)  # same initial weights on every rank
        net = build_tamvt(cfg.model)
        if cfg.backbone_init:  # ImageNet start (the paper's); init_from below overrides it
            net.backbone.load_imagenet_weights(cfg.backbone_init)
        if cfg.init_from:
            _load_init_weights(net, cfg.init_from)
        self.net = net.to(self.dist.device).train()
        seed_everything(D.rank_seed(cfg.run.seed, self.dist.rank))  # per-rank dropout draws
        o = cfg.optim
        # groups first: lr_backbone = 0 freezes the backbone, which DDP must know when it is built
        groups = param_groups(self.net, o.lr, o.lr_backbone, o.weight_decay, lr_rte=o.lr_rte)
        self.optimizer = build_adamw(groups, o.betas)
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.window_model: nn.Module = WindowModel(self.net, cfg.clip_length, cfg.model.bank_size, o.position_drop)
        # the window's ground truth says where the target is out of view only when a clip may use it
        self.drops_after_absence = o.position_drop > 0 and o.position_drop_when == "lost"
        if self.dist.distributed:
            ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
            self.window_model = nn.parallel.DistributedDataParallel(
                self.window_model, device_ids=ids, broadcast_buffers=False
            )
        self.criterion = build_criterion(cfg.loss)
        self.dataset = dataset if dataset is not None else build_train_dataset(cfg.data, cfg.run.seed)
        self.steps_per_epoch = steps_per_epoch(len(cast(Sized, self.dataset)), self.dist.world_size)
        if o.steps is not None:
            self.total_steps = o.steps
        else:
            assert o.epochs is not None  # OptimConfig requires one of the two
            self.total_steps = o.epochs * self.steps_per_epoch
        self.schedule = build_schedule(
            o.schedule,
            self.total_steps,
            self.steps_per_epoch,
            o.steps is None,
            o.milestones,
            o.gamma,
            o.final_drop,
            o.warmup_fraction,
        )
        self.ema = ModelEma(self.net, o.ema_decay) if o.ema_decay > 0 else None
        self.autocast = use_bf16(cfg.run.precision, self.dist.device)
        self.step = self.epoch = self.epoch_step = 0
        self._saved_at: tuple[int, int] | None = None
        self.val_videos: list | None = val_videos
        self.last_val: dict[str, Any] = {}
        self._resume(resume)

    # -------------------------------------------------------------------------------- state

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "last.pt"

    def _resume(self, resume: Resume) -> None:
        path = self.checkpoint_path
        if not path.exists():
            return
        if resume == "never":
            raise TamvtError(f"{path}: a checkpoint already exists; use --resume auto to continue it or another --out")
        ckpt = load_run_state(path, expected_model=config_to_dict(self.cfg)["model"])
        self.net.load_state_dict(ckpt["model"])
        if self.ema is not None:
            if ckpt.get("ema") is None:
                raise TamvtError(f"{path}: checkpoint has no EMA weights but optim.ema_decay > 0")
            self.ema.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.step, self.epoch, self.epoch_step = ckpt["step"], ckpt["epoch"], ckpt["epoch_step"]
        self.last_val = dict(ckpt.get("extra", {}).get("last_val", {}))
        rng = ckpt["rng"]
        if len(rng) == self.dist.world_size:
            restore_rng(rng[self.dist.rank])
        else:  # another world size: the data order is re-sharded anyway; fresh per-rank seeds
            seed_everything(D.rank_seed(self.cfg.run.seed + self.step, self.dist.rank))

    def save(self, logger: MetricsLogger | None = None) -> None:
        """Write ``last.pt`` (all ranks take part: the RNG states of every rank are stored)."""
        if self._saved_at == (self.step, self.epoch):
            return
        rng = capture_rng()
        if self.dist.distributed:
            states: list[Any] = [None] * self.dist.world_size
            torch.distributed.all_gather_object(states, rng)
        else:
            states = [rng]
        if self.dist.is_main:
            ckpt = make_checkpoint(
                config=config_to_dict(self.cfg),
                step=self.step,
                epoch=self.epoch,
                epoch_step=self.epoch_step,
                model={k: v.detach().cpu() for k, v in self.net.state_dict().items()},
                ema={k: v.cpu() for k, v in self.ema.state_dict().items()} if self.ema is not None else None,
                optimizer=self.optimizer.state_dict(),
                rng=states,
                extra={"last_val": self.last_val},
            )
            atomic_torch_save(ckpt, self.checkpoint_path)
            if logger is not None:
                logger.write({"event": "checkpoint", "step": self.step, "epoch": self.epoch})
        self._saved_at = (self.step, self.epoch)
        D.barrier()

    def eval_weights(self) -> dict[str, Tensor]:
        """The weights used for validation and export: EMA when on, else the raw weights."""
        return self.ema.state_dict() if self.ema is not None else self.net.state_dict()

    # ---------------------------------------------------------------------------- training

    def train_step(self, sample: Any) -> dict[str, float]:
        """One optimizer step on one :class:`~tamvt.data.training.batch.TrainingSample`."""
        dev = self.dist.device
        frames = sample.frames.to(dev, non_blocking=True)
        masks = sample.masks.to(dev, non_blocking=True).float()
        nm = sample.num_memory
        shown = masks.flatten(1).amax(1) > 0 if self.drops_after_absence else None
        with autocast(self.autocast, dev):
            layer_logits = self.window_model(frames, masks[None, :nm], nm, shown)
        losses = self.criterion([x.float() for x in layer_logits], masks[None, nm:])
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        grad_norm = clip_grad_norm(self.params, self.cfg.optim.grad_clip)
        factor = self.schedule.apply(self.optimizer, self.step)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.net)
        out = {k: float(v.detach()) for k, v in losses.items()}
        out.update(grad_norm=grad_norm, lr=self.cfg.optim.lr * factor)
        return out

    def _loader(self) -> DataLoader:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
        order = ShardedOrder(
            len(cast(Sized, self.dataset)),
            self.dist.rank,
            self.dist.world_size,
            self.cfg.run.seed,
            self.epoch,
            start=self.epoch_step,
        )
        # a private generator: creating the iterator must not draw from the global torch RNG, or a
        # resumed run (iterator created mid-epoch) would see other dropout masks than an uninterrupted one
        gen = torch.Generator().manual_seed(D.rank_seed(self.cfg.run.seed, self.dist.rank) * 7919 + self.epoch)
        workers = self.cfg.run.num_workers
        return DataLoader(
            self.dataset,
            batch_size=None,
            sampler=order,
            num_workers=workers,
            collate_fn=_identity,
            generator=gen,
            pin_memory=self.dist.device.type == "cuda",
            prefetch_factor=2 if workers else None,
        )

    def fit(self) -> dict[str, Any]:
        """Train until ``total_steps``; returns the final training and validation metrics."""
        main = self.dist.is_main
        note = self.cfg.untrained_rte_note()
        if main and note:  # after every check of the run's inputs: an error stays one line
            print(note, file=sys.stderr)
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(config_to_yaml(self.cfg))
        logger = MetricsLogger(self.out, enabled=main)
        logger.write(
            {
                "event": "start",
                "step": self.step,
                "epoch": self.epoch,
                "total_steps": self.total_steps,
                "steps_per_epoch": self.steps_per_epoch,
                "world_size": self.dist.world_size,
                "device": str(self.dist.device),
                "bf16": self.autocast,
                "memory_sizes": self.cfg.window_memory_sizes(),
            }
        )
        bar = None
        if main and self.cfg.run.progress:
            from tqdm import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, desc=self.cfg.name, dynamic_ncols=True)
        last: dict[str, float] = {}
        window: list[dict[str, float]] = []
        tick = time.perf_counter()
        try:
            while self.step < self.total_steps:
                for sample in self._loader():
                    last = self.train_step(sample)
                    self.step += 1
                    self.epoch_step += 1
                    window.append(last)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{last['total']:.3f}", lr=f"{last['lr']:.2e}")
                    if self.step % self.cfg.run.log_every == 0 or self.step == self.total_steps:
                        now = time.perf_counter()
                        logger.write(self._train_record(window, now - tick))
                        window, tick = [], now
                    if self.step % self.cfg.run.checkpoint_every == 0:
                        self.save(logger)
                    if self.cfg.run.validate_every and self.step % self.cfg.run.validate_every == 0:
                        self.run_validation(logger)
                    if self.step >= self.total_steps:
                        break
                if self.epoch_step >= self.steps_per_epoch or self.step >= self.total_steps:
                    epoch_done = self.epoch_step >= self.steps_per_epoch
                    if epoch_done:
                        self.epoch, self.epoch_step = self.epoch + 1, 0
                    if not self.cfg.run.validate_every and (epoch_done or self.step >= self.total_steps):
                        self.run_validation(logger)
                    self.save(logger)
        finally:
            if bar is not None:
                bar.close()
            logger.close()
        return {"step": self.step, "rank": self.dist.rank, "train": last, "val": self.last_val}

    def _train_record(self, window: list[dict[str, float]], seconds: float) -> dict[str, Any]:
        keys = window[-1].keys() if window else []
        mean = {k: sum(w[k] for w in window) / len(window) for k in keys}
        if self.dist.distributed and mean:  # average the logged losses over ranks
            names = sorted(mean)
            reduced = D.all_reduce_mean(torch.tensor([mean[n] for n in names], dtype=torch.float64))
            mean = dict(zip(names, reduced.tolist(), strict=True))
        return {
            "event": "train",
            "step": self.step,
            "epoch": self.epoch,
            **mean,
            "steps_per_s": len(window) / seconds if seconds > 0 else math.nan,
        }

    # -------------------------------------------------------------------------- validation

    def _val_model(self) -> TamVT:
        """A fresh eval copy holding the EMA (or raw) weights (the predictor may resample its RTE table)."""
        from tamvt.models.tamvt import build_tamvt

        net = build_tamvt(self.cfg.model)
        net.load_state_dict(self.eval_weights())
        return net.to(self.dist.device).eval()

    def _load_val_videos(self) -> list:
        from tamvt.train import validate as V

        v = self.cfg.val
        if v.source == "synthetic":
            return V.synthetic_videos(v.synthetic_preset, v.seed, v.num_videos, v.synthetic_size, v.synthetic_frames)
        root = v.root or self.cfg.data.root  # null: the training dataset's root
        if root is None:
            raise TamvtError(f"val.root is required for val.source={v.source}")
        return V.dataset_videos(v.source, root, v.split, v.num_videos)

    def run_validation(self, logger: MetricsLogger | None = None) -> dict[str, Any]:
        """Score the EMA (or raw) weights on the validation videos with the online predictor; rank 0
        runs it, the other ranks wait and receive the scores."""
        v = self.cfg.val
        if self.val_videos is None and (v.source == "none" or (v.source == "synthetic" and v.num_videos == 0)):
            return {}
        if self.dist.is_main:
            from tamvt.train.validate import validate

            if self.val_videos is None:
                self.val_videos = self._load_val_videos()
            inference = dataclasses.replace(
                self.cfg.inference,
                short_side=v.short_side,
                precision=self.cfg.inference.precision if self.autocast else "fp32",  # as trained
            )
            start = time.perf_counter()
            # validation must not move the training RNG streams (building the eval copy draws random
            # init weights): otherwise a run resumed from a checkpoint saved before a validation
            # would diverge from the uninterrupted run
            rng = capture_rng()
            try:
                scores = validate(self._val_model(), self.val_videos, inference, self.cfg.clip_length)
            finally:
                restore_rng(rng)
            self.last_val = {**scores, "step": self.step, "seconds": time.perf_counter() - start}
            if logger is not None:
                logger.write({"event": "val", **self.last_val})
        self.last_val = cast(dict[str, Any], D.broadcast_object(self.last_val))
        return self.last_val


def train(cfg: TrainConfig, out_dir: str | Path | None = None, resume: Resume = "auto") -> dict[str, Any]:
    """Build a :class:`Trainer` and run it; always tears the process group down."""
    try:
        return Trainer(cfg, out_dir, resume).fit()
    finally:
        D.cleanup()
