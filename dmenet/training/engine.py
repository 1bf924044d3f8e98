"""The training step of DMENet (docs/method.md §4–§5): per-domain B passes, one D step, then one B+S step.

Each iteration of the joint stage:

1. B runs **three separate forward passes** — synthetic ``x_s``, labelled real ``x_r``, unlabelled real ``x_u`` —
   never one concatenated batch, so train-mode BatchNorm statistics are per domain.
2. **D step** on the detached ``gan_feat`` of the three passes: ``L_D = w_D · ½[2·BCE(D(f_s),1) + BCE(D(f_r),0) +
   BCE(D(f_u),0)]``.
3. **B+S step**: ``L_main = L_defocus + L_aux + λ_perc·L_perc + λ_binary·L_sharp + λ_adv·L_adv`` with ``L_adv``
   computed by the *updated* D (whose parameters take no gradient here). C is frozen; gradients pass through it.
   With ``loss.scale_consistency > 0`` (not in the paper) a fourth B pass on the unlabelled batch downscaled by s
   adds ``λ_scale·L_scale`` (:func:`dmenet.losses.scale_consistency_loss`).

``train.channels_last`` keeps the networks and the image batches in channels-last layout; ``train.cpu_bf16`` runs the
forward passes under bfloat16 autocast on a CPU (``train.amp`` is fp16 autocast with a GradScaler on CUDA).

The blur stage (``train.stage = "blur"``) trains B alone on synthetic data with ``L_defocus + L_aux``.
A non-finite loss stops the run with :class:`NonFiniteLossError`. The learning rate is set every step from
``schedule.lr_at``. With ``torch.distributed`` initialised, B, S and D are wrapped in DistributedDataParallel.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from dmenet import losses
from dmenet.config import ExperimentConfig, Stage, consistency_sizes
from dmenet.data.stream import derived_seed
from dmenet.models.layers import batch_statistics, training_layout
from dmenet.models.recipe import BNMode
from dmenet.training.schedule import epoch_of, lr_at
from syndof.choices import parse_choice


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; training stops instead of continuing on garbage."""


@dataclass
class StepBatches:
    """One iteration's mini-batches (tensors on any device; moved by the trainer).

    synthetic: ``image`` (B, 3, H, W) [0, 1], ``label`` (B, 1, H, W) σ/σ_max.
    labelled: ``image``, ``mask`` (B, 1, H, W) 1 = blurred (joint stage only).
    unlabelled: ``image`` (joint stage only).
    """

    synthetic: dict[str, Tensor]
    labelled: dict[str, Tensor] | None = None
    unlabelled: dict[str, Tensor] | None = None


def trainable(module: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``module`` that require gradients."""
    return [p for p in module.parameters() if p.requires_grad]


@contextlib.contextmanager
def no_param_grads(module: nn.Module) -> Iterator[None]:
    """Build graphs through ``module`` without gradients for its own parameters (inputs still get them)."""
    params = trainable(module)
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class Trainer:
    """Optimisers, AMP scalers and the step functions around a DMENet (``.blur``, ``.discriminator``,
    ``.perceptual``, ``.calibration``).

    Args:
        model: DMENet on ``device`` (unwrapped; checkpoints save this object).
        cfg: experiment config (stage, loss weights, optimiser, AMP).
        device: training device.
        steps_per_epoch: iterations per epoch for the lr schedule.
    """

    def __init__(self, model: nn.Module, cfg: ExperimentConfig, device: torch.device, steps_per_epoch: int):
        self.model, self.cfg, self.device = model, cfg, device
        self.steps_per_epoch = steps_per_epoch
        self.joint = parse_choice(Stage, cfg.train.stage, "train.stage") is Stage.JOINT
        self.amp = cfg.train.amp and device.type == "cuda"
        self.cpu_bf16 = cfg.train.cpu_bf16 and device.type == "cpu"
        self.layout = training_layout(cfg.train.channels_last)
        model.to(memory_format=self.layout)  # in place, before the optimisers take the parameters
        self.distributed = dist.is_available() and dist.is_initialized()
        self.step = 0

        model.perceptual.requires_grad_(False)
        self._perceptual_ref: list[Tensor] = []
        self.snapshot_perceptual()
        self.blur = self._wrap(model.blur)
        self.calibration = self._wrap(model.calibration) if self.joint else model.calibration
        self.discriminator = self._wrap(model.discriminator) if self.joint else model.discriminator

        o = cfg.optim
        g_params = trainable(model.blur) + (trainable(model.calibration) if self.joint else [])
        self.opt_g = torch.optim.Adam(g_params, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps)
        self.opt_d = (torch.optim.Adam(trainable(model.discriminator), lr=o.lr_d, betas=(o.beta1, o.beta2), eps=o.eps)
                      if self.joint else None)
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=self.amp)

    # ------------------------------------------------------------------------------------------------------ setup
    def _wrap(self, module: nn.Module) -> nn.Module:
        if not self.distributed:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def train_mode(self) -> None:
        """Train mode for the model, but the frozen perceptual network C stays in eval mode."""
        self.model.train()
        self.model.perceptual.eval()

    @property
    def epoch(self) -> int:
        """Current epoch: ``step // steps_per_epoch``."""
        return epoch_of(self.step, self.steps_per_epoch)

    def set_lr(self) -> dict[str, float]:
        """Set both optimisers' learning rates for the current step (step decay) and return them, {"lr": …, "lr_d":
        …}."""
        o = self.cfg.optim
        lrs = {"lr": lr_at(self.step, o.lr, self.steps_per_epoch, o.decay, o.decay_every_epochs),
               "lr_d": lr_at(self.step, o.lr_d, self.steps_per_epoch, o.decay, o.decay_every_epochs)}
        for group in self.opt_g.param_groups:
            group["lr"] = lrs["lr"]
        if self.opt_d is not None:
            for group in self.opt_d.param_groups:
                group["lr"] = lrs["lr_d"]
        return lrs

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.cpu_bf16:
            return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
        return torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp)

    def images(self, x: Tensor) -> Tensor:
        """An image batch (B, 3, H, W) on the training device, in the run's memory layout; values and dtype as
        given (the streams' float32 RGB in [0, 1])."""
        return x.to(self.device, non_blocking=True).contiguous(memory_format=self.layout)

    def _check_finite(self, terms: dict[str, Tensor]) -> None:
        bad = {k: float(v.detach()) for k, v in terms.items() if not torch.isfinite(v.detach())}
        if self.distributed:
            flag = torch.tensor([1.0 if bad else 0.0], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if flag.item() > 0 and not bad:
                bad = {"(on another rank)": float("nan")}
        if bad:
            raise NonFiniteLossError(f"step {self.step}: non-finite loss {bad}; training stopped (lower optim.lr, "
                                     f"check the training data, or set train.amp=false)")

    # ------------------------------------------------------------------------------------------------------ steps
    def d_step(self, features: Sequence[Tensor]) -> Tensor:
        """One D update on detached ``gan_feat`` of (synthetic, labelled, unlabelled), each (B_k, C, H/t, W/t)
        (:class:`~dmenet.models.dmenet.DefocusOutput` ``features``); returns the weighted L_D, a detached 0-d tensor
        ≥ 0 (``loss.discriminator`` × nats)."""
        assert self.opt_d is not None
        self.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            logits = [self.discriminator(f.detach()) for f in features]
            loss_d = self.cfg.loss.discriminator * losses.discriminator_loss(*logits)
        self._check_finite({"loss_d": loss_d})
        self.scaler_d.scale(loss_d).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        return loss_d.detach()

    def main_terms(self, out_s, label: Tensor, out_r=None, mask: Tensor | None = None, out_u=None) -> dict[str, Tensor]:
        """Weighted terms of L_main (B and S); the adversarial term uses D without gradients for D. ``out_s``,
        ``out_r``, ``out_u``: B's :class:`~dmenet.models.dmenet.DefocusOutput` of the three batches; ``label``
        (B, 1, H, W) σ/σ_max in [0, 1]; ``mask`` (B_r, 1, H, W) {0, 1}, 1 = blurred (joint stage only). Returns
        {name: 0-d tensor ≥ 0}: ``defocus``, ``aux`` ((σ/σ_max)² × weight), joint also ``perceptual``, ``sharp``,
        ``adv``."""
        w = self.cfg.loss
        terms = {"defocus": w.defocus * losses.defocus_loss(out_s.defocus, label),
                 "aux": w.aux * losses.aux_loss(out_s.aux, label)}
        if self.joint:
            terms["perceptual"] = w.perceptual * losses.perceptual_loss(self.model.perceptual, out_s.defocus, label)
            terms["sharp"] = w.binary * losses.sharpness_loss(self.calibration(out_r.defocus), mask)
            with no_param_grads(self.model.discriminator):
                d = self.model.discriminator  # unwrapped: D is updated only by d_step
                terms["adv"] = w.adv * losses.adversarial_loss(d(out_r.features), d(out_u.features))
        return terms

    def consistency_size(self, side: int) -> int:
        """Side (px) of the downscaled unlabelled batch at the current step: uniform over the allowed multiples of
        16, from a generator seeded by (train.seed, step) so that a resumed run draws the same sizes."""
        w = self.cfg.loss
        sizes = consistency_sizes(side, w.scale_consistency_min, w.scale_consistency_max)
        if not sizes:
            raise ValueError(f"no multiple of 16 in [{w.scale_consistency_min}, {w.scale_consistency_max}] × {side}")
        gen = torch.Generator().manual_seed(derived_seed(self.cfg.train.seed, self.step))
        return sizes[int(torch.randint(len(sizes), (1,), generator=gen))]

    def scale_term(self, x_u: Tensor, out_u) -> Tensor:
        """Weighted L_scale on the unlabelled real batch: one more B pass on the downscaled images. ``x_u``
        (B, 3, S, S) square RGB in [0, 1] on the device, ``out_u`` B's output of it; returns a 0-d tensor ≥ 0
        ((σ/σ_max)² × ``loss.scale_consistency``)."""
        small, scale = losses.downscale_images(x_u, self.consistency_size(x_u.shape[-1]))
        pred_small = self.blur(small).defocus
        return self.cfg.loss.scale_consistency * losses.scale_consistency_loss(
            pred_small, out_u.defocus.detach(), scale)

    def main_step(self, terms: dict[str, Tensor]) -> Tensor:
        """Backward and optimiser step of B+S on the sum of the weighted loss ``terms`` (scalar tensors;
        NonFiniteLossError on NaN / inf); returns the detached total loss."""
        total = sum(terms.values())
        self._check_finite({**terms, "main": total})
        self.scaler_g.scale(total).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        return total.detach()

    def train_step(self, batches: StepBatches) -> dict[str, float]:
        """One iteration; returns the weighted loss terms, ``loss_main``, ``loss_d`` (joint) and the learning rates."""
        self.train_mode()
        lrs = self.set_lr()
        dev = self.device
        x_s = self.images(batches.synthetic["image"])
        y_s = batches.synthetic["label"].to(dev, non_blocking=True)
        self.opt_g.zero_grad(set_to_none=True)
        with self._autocast():
            out_s = self.blur(x_s)
            out_r = out_u = mask = None
            if self.joint:
                assert batches.labelled is not None and batches.unlabelled is not None, "joint stage needs real data"
                out_r = self.blur(self.images(batches.labelled["image"]))
                x_u = self.images(batches.unlabelled["image"])
                out_u = self.blur(x_u)
                mask = batches.labelled["mask"].to(dev, non_blocking=True)
        metrics: dict[str, Tensor] = {}
        if self.joint:
            metrics["loss_d"] = self.d_step([out_s.features, out_r.features, out_u.features])
        with self._autocast():
            terms = self.main_terms(out_s, y_s, out_r, mask, out_u)
            if self.cfg.loss.scale_consistency > 0:
                terms["scale"] = self.scale_term(x_u, out_u)
        metrics["loss_main"] = self.main_step(terms)
        self.step += 1
        out = {f"loss_{k}": float(v.detach()) for k, v in terms.items()}
        out.update({k: float(v) for k, v in metrics.items()})
        out.update(lrs)
        return out

    # ------------------------------------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def validate(self, batches: Sequence[dict[str, Tensor]]) -> float:
        """Mean L_defocus (MSE on σ/σ_max) of B over held-out synthetic batches, evaluated as the model recipe's σ
        path says: eval mode with the moving statistics, or each image normalised with its own statistics
        (``recipe.sigma.bn`` image; one image at a time, so no image borrows another's). Each batch: ``image``
        (N, 3, H, W) RGB in [0, 1], H, W multiples of 16, ``label`` (N, 1, H, W) σ/σ_max in [0, 1]. Returns the
        batches' MSEs weighted by N, in (σ/σ_max)², in [0, 1] (0.0 for no batches)."""
        self.model.blur.eval()
        per_image = self.model.recipe.sigma.bn is BNMode.IMAGE
        total, count = 0.0, 0
        for batch in batches:
            images = self.images(batch["image"])
            with self._autocast():
                if per_image:
                    with batch_statistics(self.model.blur):
                        pred = torch.cat([self.model.blur(x[None]).defocus for x in images])
                else:
                    pred = self.model.blur(images).defocus
            total += float(losses.defocus_loss(pred.float(), batch["label"].to(self.device))) * len(pred)
            count += len(pred)
        self.train_mode()
        return total / max(count, 1)

    def snapshot_perceptual(self) -> None:
        """Take C's tensors as the reference that must never change (at construction, and again after a checkpoint
        replaces the weights: a resumed model is built without its init file, so C is only right after loading)."""
        self._perceptual_ref = [t.detach().clone() for t in self.model.perceptual.state_dict().values()]

    def assert_perceptual_frozen(self) -> None:
        """Raise if any tensor of the frozen perceptual network C changed since :meth:`snapshot_perceptual`."""
        for ref, now in zip(self._perceptual_ref, self.model.perceptual.state_dict().values()):
            if not torch.equal(ref, now):
                raise RuntimeError("the frozen perceptual network C changed during training")

    def sync_buffers(self) -> None:
        """Copy rank 0's buffers (BN running statistics) to every rank, as DDP does before each forward; the
        last passes of an iteration (and the unwrapped D of the B+S step) update them per rank."""
        if self.distributed:
            for buf in self.model.buffers():
                dist.broadcast(buf, src=0)

    def replica_digests(self) -> list[str]:
        """SHA-256 of every parameter and buffer on each rank (one entry per rank; equal when in sync)."""
        h = hashlib.sha256()
        for name, t in self.model.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        digest = h.hexdigest()
        if not self.distributed:
            return [digest]
        out: list[str] = [""] * dist.get_world_size()
        dist.all_gather_object(out, digest)
        return out
