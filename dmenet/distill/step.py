"""One Distill-DBDGAN training step (the losses of docs/distill.md, the discriminators' and networks' updates) and
the validation of a checkpoint's network."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dmenet.distill import losses as L
from dmenet.distill.config import DistillConfig
from dmenet.distill.data import load_item
from dmenet.distill.infer import blur_probability
from dmenet.distill.run import DISCRIMINATORS, Run, lr_factor
from dmenet.eval.dbd import DBDAccumulator, Resolution


def teacher_targets(sharp: torch.Tensor, on_sharp: bool) -> torch.Tensor:
    """(B, 1, 1, 1) in {0, 1}: which samples take a teacher model's output as their soft target (consistency term
    and D3). Every labelled sample; the sharp-everywhere negatives (``sharp`` = 1) only with ``on_sharp``
    (``loss.sharp_consistency``). ``sharp``: the batch's (B, 1, 1, 1) float {0, 1}, 1 = a sharp negative."""
    return torch.ones_like(sharp) if on_sharp else 1 - sharp


def set_learning_rates(run: Run, step: int) -> None:
    """The networks' optimiser at ``optim.lr``, the discriminators' at ``optim.lr_d``, each times
    :func:`~dmenet.distill.run.lr_factor` of ``step`` (what :func:`train_step` runs first)."""
    for opt, base in ((run.opt_g, run.cfg.optim.lr), (run.opt_d, run.cfg.optim.lr_d)):
        for group in (opt.param_groups if opt else ()):
            group["lr"] = base * lr_factor(run.cfg, step, run.segments)


def train_step(run: Run, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
    """One generator update then one discriminator update on ``batch`` (CPU or ``run.device`` tensors, moved
    there); returns the scalar terms. ``batch`` as :mod:`dmenet.distill.data` stacks it: ``image`` (B, 3, crop,
    crop) RGB in [0, 1], ``mask`` and ``soft`` (B, 1, crop, crop) in [0, 1] (1 = blurred; ``soft`` zeros where a
    sample has none), ``has_soft`` and ``sharp`` (B, 1, 1, 1) in {0, 1}. Returns {term: float} (``total``, the
    ``*_content``, ``consistency``, ``feature``, ``d*_g`` / ``d*_d`` that ran; ≥ 0, no unit)."""
    lw, nets = run.cfg.loss, run.nets
    batch = {**{k: v.to(run.device) for k, v in batch.items() if k != "image"},
             "image": batch["image"].to(run.device, memory_format=run.layout)}  # one copy, already in the layout
    set_learning_rates(run, step)
    x, y = batch["image"], batch["mask"]
    w_content = 1 - batch["sharp"] + batch["sharp"] * lw.sharp_weight
    logs: dict[str, float] = {}
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}  # D name -> (real, fake, sample weight)
    total = x.new_zeros(())
    t_feats = None
    soft, has_soft = batch["soft"], batch["has_soft"]
    if "teacher" in nets:
        t_logits, t_feats = nets["teacher"].features(x)
        t_content = L.content_loss(t_logits, y, w_content, lw.edge)
        total = total + lw.content * t_content
        logs["teacher_content"] = t_content.item()
        pairs["d1"] = (y, torch.sigmoid(t_logits), torch.ones_like(w_content))
        soft, has_soft = torch.sigmoid(t_logits).detach(), teacher_targets(batch["sharp"], lw.sharp_consistency)
    elif run.frozen_teacher is not None:
        with torch.no_grad():
            t_logits, t_feats = run.frozen_teacher.features(x)
        soft, has_soft = torch.sigmoid(t_logits), teacher_targets(batch["sharp"], lw.sharp_consistency)
    if "student" in nets:
        s_logits, s_feats = nets["student"].features(x)
        s_prob = torch.sigmoid(s_logits)
        s_content = L.content_loss(s_logits, y, w_content, lw.edge)
        total = total + lw.content * s_content
        logs["student_content"] = s_content.item()
        if lw.consistency and has_soft.sum() > 0:
            cons = L.consistency_loss(s_logits, soft, has_soft)
            total = total + lw.consistency * cons
            logs["consistency"] = cons.item()
        if "adapters" in nets and t_feats is not None:
            feat = L.feature_loss(s_feats, t_feats, nets["adapters"])
            total = total + lw.feature * feat
            logs["feature"] = feat.item()
        pairs["d2"] = (y, s_prob, torch.ones_like(w_content))
        pairs["d3"] = (soft, s_prob, has_soft)
    for name, disc in run.discs.items():
        real, fake, keep = pairs[name]
        idx = keep.flatten() > 0
        if idx.any():
            g_adv = L.ra_lsgan_g(disc(x[idx], real[idx].detach()), disc(x[idx], fake[idx]))
            total = total + getattr(lw, DISCRIMINATORS[name]) * g_adv
            logs[f"{name}_g"] = g_adv.item()
    run.opt_g.zero_grad(set_to_none=True)
    total.backward()
    run.opt_g.step()
    logs["total"] = total.item()
    if run.opt_d is not None:
        run.opt_d.zero_grad(set_to_none=True)
        d_total = x.new_zeros(())
        for name, disc in run.discs.items():
            real, fake, keep = pairs[name]
            idx = keep.flatten() > 0
            if idx.any():
                d_loss = L.ra_lsgan_d(disc(x[idx], real[idx].detach()), disc(x[idx], fake[idx].detach()))
                d_total = d_total + d_loss
                logs[f"{name}_d"] = d_loss.item()
        (lw.discriminator * d_total).backward()
        run.opt_d.step()
    return logs


VAL_KEYS = ("val_fmax", "val_mae", "sharp_val_mean")
"""The figures of :func:`validate`, in the order of its rows (meta.json stores them sorted by name)."""


@torch.no_grad()
def validate(cfg: DistillConfig, model: nn.Module, val_items, sharp_val) -> dict[str, float]:
    """CUHK validation at val_side² (scored at the mask size) + mean probability on the sharp validation photos:
    {``val_fmax``, ``val_mae`` (mean |probability − mask| over images), ``sharp_val_mean`` (only with
    ``sharp_val``)}, each in [0, 1]."""
    was_training = model.training
    model.eval()
    acc = DBDAccumulator(resolution=Resolution.NATIVE)
    for item in val_items:
        image, mask, _ = load_item(item, cfg.data.white_is_blurred)
        acc.add(item.image.stem, blur_probability(model, image, side=cfg.data.val_side), mask > 0.5)
    summary = acc.summary()
    out = {"val_fmax": summary["fmax_of_mean_curve"], "val_mae": summary["mae"]}
    if sharp_val:
        means = [blur_probability(model, load_item(it)[0], max_side=cfg.data.val_side).mean() for it in sharp_val]
        out["sharp_val_mean"] = float(np.mean(means))
    model.train(was_training)
    return out
