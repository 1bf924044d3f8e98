"""Train the two-label detection head (:mod:`dmenet.models.detection_head`) on labelled photos, then fit its
logit transform: the ``head`` step of :mod:`dmenet.calibrate`.

Data: labelled folders (``image/`` + ``gt/``, masks 1 = blurred after the polarity is applied), e.g. the CUHK
training images plus screened photos that are sharp everywhere with all-sharp masks (``labelled_neg/`` of
``experiments/build_training_set.py``). For each image, B's two label maps of the detection path (its own BatchNorm
mode and ``second_bn``, each the mean of the recipe's flips) are computed once and kept in memory (8 bytes a pixel).

Training (:class:`HeadTraining`): BCE on pixels; each epoch draws ``pixels_per_image`` random pixels of *every*
image, so each image weighs the same whatever its size (an all-sharp image's pixels weigh ``negative_weight``);
Adam, cosine-annealed learning rate, fixed seed (the parameter initialisation, the pixel draws and the batch order
all follow it: the same data gives the same head).
Then the transform ``sigmoid(scale·(z − shift))`` is chosen with :func:`dmenet.training.fit_dbd.fit_logit_transform`
on ``transform_images`` images drawn (same seed) from those whose masks hold both classes, plus
``transform_negatives`` all-sharp ones (their mean probability enters the MAE term).

Rules 21h / 21h8 (the shipped head) and 21n / 21t / 21g (the options, not shipped) are in
``experiments/RULE_21*.md``.

The **feature head** (the ``feature-head`` step; rule 19r, ``experiments/RULE_19R.md``) is trained by the same loop
on B's detection features of one set of passes (:func:`labelled_feature_samples`: 41 values a pixel for the lite
model, so only ``samples`` random pixels of each photo are kept, 164 kB each at 16,384), with hidden widths
:data:`FEATURE_HIDDEN`; its transform is fitted on those kept pixels.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dmenet.configlib import require_positive
from dmenet.models.detection_head import HIDDEN, NEGATIVE_SLOPE, DetectionHead, HeadInputs, head_inputs
from dmenet.models.recipe import BNMode
from dmenet.training.fit_dbd import holds_both_classes
from syndof import io as sio

log = logging.getLogger("dmenet.fit_head")

FEATURE_HIDDEN = (32, 16)
"""Hidden widths of the feature head (rule 19r's F: 41 → 32 → 16 → 1)."""
FEATURE_SAMPLES = 16384
"""Pixels of each photo whose features the ``feature-head`` step keeps (rule 19r)."""


class DetectionHeadNet(nn.Module):
    """Trainable form of the head: (..., 2 or 3) inputs (:func:`dmenet.models.detection_head.head_inputs`) → (...)
    logits, the arithmetic of :func:`dmenet.models.detection_head.head_logit`; with ``features`` (C > 0) a feature
    head on C features a pixel (:func:`~dmenet.models.detection_head.feature_head_logit`)."""

    def __init__(self, hidden: tuple[int, ...] = HIDDEN, image_mean: bool = False, features: int = 0):
        super().__init__()
        if features and image_mean:
            raise ValueError("DetectionHeadNet: image_mean is an input of the two-label head only")
        self.image_mean = image_mean
        self.source = HeadInputs.FEATURES if features else HeadInputs.LABELS
        widths = (features or (3 if image_mean else 2),) + tuple(hidden) + (1,)
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., F) inputs, F = ``features`` or 3 with ``image_mean`` else 2 (the labels σ/σ_max in [0, 1] of
        :func:`~dmenet.models.detection_head.head_inputs`, or B's detection features, no unit) → (...) logits (no
        unit; sigmoid = P(blurred) before the fitted transform), any leading shape."""
        for i, linear in enumerate(self.linears):
            x = linear(x)
            if i < len(self.linears) - 1:
                x = nn.functional.leaky_relu(x, NEGATIVE_SLOPE)
        return x[..., 0]

    def to_head(self) -> DetectionHead:
        """The recipe value of these weights (float32 values kept exactly: JSON floats are float64)."""
        return DetectionHead(layers=tuple((lin.weight.detach().float().tolist(), lin.bias.detach().float().tolist())
                                          for lin in self.linears), image_mean=self.image_mean, source=self.source)

    @classmethod
    def from_head(cls, head: DetectionHead) -> "DetectionHeadNet":
        """A module holding ``head``'s weights."""
        features = head.inputs if head.source is HeadInputs.FEATURES else 0
        net = cls(hidden=head.widths[1:-1], image_mean=head.image_mean, features=features)
        with torch.no_grad():
            for lin, (w, b) in zip(net.linears, head.arrays()):
                lin.weight.copy_(torch.from_numpy(w))
                lin.bias.copy_(torch.from_numpy(b))
        return net


@dataclass(frozen=True)
class HeadTraining:
    """Training settings of the head (defaults: rule 21h)."""

    epochs: int = 60
    pixels_per_image: int = 4096
    batch: int = 32768
    lr: float = 1e-2
    seed: int = 21
    hidden: tuple[int, ...] = HIDDEN
    transform_images: int = 100
    transform_negatives: int = 0  # all-sharp images added to the transform's fitting pool (rule 21t)
    image_mean: bool = False  # the photo's mean second label as a third input (rule 21g)
    negative_weight: float = 1.0  # BCE weight of the pixels of images whose mask has no blurred pixel (rule 21n)

    def __post_init__(self) -> None:
        require_positive(self, "head", ("epochs", "pixels_per_image", "batch", "transform_images"))
        if not self.transform_negatives >= 0:
            raise ValueError(f"head.transform_negatives must be >= 0, got {self.transform_negatives}")
        for name in ("lr", "negative_weight"):
            if not getattr(self, name) > 0:  # also refuses NaN
                raise ValueError(f"head.{name} must be > 0, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        """The settings as a JSON-ready dict (``hidden`` as a list)."""
        return {**asdict(self), "hidden": list(self.hidden)}


def labelled_label_pairs(predictor, bns: tuple[BNMode, BNMode], roots: list[Path], white_is_blurred: bool,
                         skipped: list[str] | None = None) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """B's labels under the two BatchNorm modes ``bns`` (the head's inputs, each the mean of the predictor's
    flips) and the mask of every image of the labelled folders ``roots``.

    Returns:
        (pairs, masks, names): pairs[i] (H, W, 2) float32 labels, masks[i] (H, W) float32 1 = blurred, names[i]
        "folder/file". Unreadable images are skipped with a warning (and their ``PATH: reason`` appended
        to ``skipped`` when given).

    Raises:
        InputError: a folder without readable labelled images (or a mask of another size: MaskSizeError).
    """
    def pair(i: int, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image i → (B's labels under the two BN modes (H, W, 2) float32 in [0, 1], mask (H, W) float32 {0, 1}, 1 =
        blurred)."""
        labels = np.stack([predictor.label(image, bn) for bn in bns], -1).astype(np.float32)
        return labels, (mask > 0.5).astype(np.float32)

    return _each_labelled_image(roots, white_is_blurred, "labels", pair, skipped)


def labelled_feature_samples(predictor, bn: BNMode, roots: list[Path], white_is_blurred: bool,
                             samples: int = FEATURE_SAMPLES, seed: int = 19, skipped: list[str] | None = None
                             ) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """B's detection features (:meth:`dmenet.inference.Predictor.features`, ``bn`` statistics, the predictor's
    flips) at ``samples`` random pixels of every image of the labelled folders ``roots`` (all of a smaller image;
    the draw of image i is seeded by (``seed``, i)), with their mask values.

    Returns:
        (inputs, masks, names): inputs[i] (N_i, C) float32 features, masks[i] (N_i,) float32 1 = blurred, names[i]
        "folder/file". Unreadable images are skipped with a warning (and their ``PATH: reason`` appended
        to ``skipped`` when given).

    Raises:
        InputError: a folder without readable labelled images (or a mask of another size: MaskSizeError).
    """
    def sampled(i: int, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image i → (features at ``samples`` seeded random pixels (N, C) float32, their mask values (N,) float32 {0,
        1}, 1 = blurred)."""
        features = predictor.features(image, bn)
        n = features.shape[0] * features.shape[1]
        pick = np.sort(np.random.default_rng([seed, i]).choice(n, min(samples, n), replace=False))
        return (np.ascontiguousarray(features.reshape(n, -1)[pick]),
                (mask.reshape(-1)[pick] > 0.5).astype(np.float32))

    return _each_labelled_image(roots, white_is_blurred, "features", sampled, skipped)


def _each_labelled_image(roots: list[Path], white_is_blurred: bool, what: str, compute,
                         skipped: list[str] | None = None) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """``compute(i, image, mask)`` → (inputs, targets) for every readable image of the labelled folders (i counts
    them from 0), with their "folder/file" names; progress every 25 images; a folder without one raises. The
    unreadable ones' ``PATH: reason`` lines are appended to ``skipped`` when given."""
    from dmenet.data.labelled import LabelledDataset

    inputs, masks, names = [], [], []
    for root in roots:
        dataset = LabelledDataset(root, white_is_blurred=white_is_blurred)
        before = len(names)
        for sample in dataset.readable(skipped):
            x, y = compute(len(names), sample["image"], sample["mask"])
            inputs.append(x)
            masks.append(y)
            names.append(f"{Path(root).name}/{Path(sample['path']).name}")
            if (len(names) - before) % 25 == 0:
                log.info("%s: %s of %d / %d images", root, what, len(names) - before, len(dataset))
        if len(names) == before:
            raise sio.InputError(root, "no readable labelled image")
    return inputs, masks, names


def check_transform_pool(roots: list[Path], white_is_blurred: bool) -> None:
    """Raise ValueError unless some mask of the labelled folders holds both classes (the transform is fitted on such
    images): read from the masks alone, before the labels' B passes (minutes per hundred images) are spent."""
    from dmenet.data.labelled import LabelledDataset
    from dmenet.eval.benchmarks import read_mask

    for root in roots:
        dataset = LabelledDataset(root, white_is_blurred=white_is_blurred)
        for path in dataset.masks:
            try:
                mask = read_mask(path, white_is_blurred=white_is_blurred) > 0.5
            except sio.InputError:
                continue  # reported (and skipped) with its image later
            if holds_both_classes(mask):
                return
    raise ValueError(f"no mask in {', '.join(str(r) for r in roots)} holds both blurred and sharp pixels: the "
                     "transform cannot be fitted (add labelled photos with blur masks)")


def train_head(pairs: list[np.ndarray], masks: list[np.ndarray], cfg: HeadTraining) -> tuple[DetectionHeadNet,
                                                                                             list[float]]:
    """Train the head with BCE (see the module docstring) on ``pairs[i]`` (..., 2) labels of a whole photo (B's two
    σ/σ_max maps in [0, 1], e.g. (H, W, 2)) and ``masks[i]`` (...) {0, 1} targets (1 = blurred) per image (with
    ``cfg.image_mean`` the photo's mean second label is the third input:
    :func:`dmenet.models.detection_head.head_inputs`). Returns the net in eval mode and the mean loss of each
    epoch."""
    if len(pairs) != len(masks) or not pairs:
        raise ValueError(f"train_head: {len(pairs)} label sets and {len(masks)} masks")
    inputs = [head_inputs(p[..., 0], p[..., 1], cfg.image_mean) for p in pairs]
    torch.manual_seed(cfg.seed)
    net = DetectionHeadNet(cfg.hidden, cfg.image_mean)
    return net, train_pixel_classifier(net, inputs, masks, cfg)


def train_feature_head(inputs: list[np.ndarray], masks: list[np.ndarray], cfg: HeadTraining
                       ) -> tuple[DetectionHeadNet, list[float]]:
    """Train a feature head on ``inputs[i]`` (N_i, C) float32 features (no unit) and ``masks[i]`` (N_i,) {0, 1}
    targets (1 = blurred) per image
    (:func:`labelled_feature_samples`); ``cfg.image_mean`` must be off. Returns the net in eval mode and the mean
    loss of each epoch."""
    if not inputs or len({x.shape[1] for x in inputs}) != 1:
        raise ValueError(f"train_feature_head: expected feature sets of one width, got "
                         f"{sorted({x.shape[1] for x in inputs})}")
    torch.manual_seed(cfg.seed)
    net = DetectionHeadNet(cfg.hidden, cfg.image_mean, features=inputs[0].shape[1])
    return net, train_pixel_classifier(net, inputs, masks, cfg)


def train_pixel_classifier(net: nn.Module, inputs: list[np.ndarray], masks: list[np.ndarray], cfg: HeadTraining
                           ) -> list[float]:
    """The head's training loop (the module docstring) for any per-pixel classifier ``net``: (N, C) float32 → (N,)
    logits (1 = blurred). ``inputs[i]`` (N_i, C) float32 are the pixels of image i and ``masks[i]`` their N_i
    targets in any shape; ``cfg.hidden`` and ``cfg.image_mean`` are the caller's business. Trains ``net`` in place,
    leaves it in eval mode, and returns the mean loss of each epoch."""
    masks = [np.asarray(m, np.float32).reshape(-1) for m in masks]
    if len(inputs) != len(masks) or not inputs:
        raise ValueError(f"train_pixel_classifier: {len(inputs)} input sets and {len(masks)} masks")
    for p, m in zip(inputs, masks):
        if len(p) != len(m):
            raise ValueError(f"train_pixel_classifier: {len(p)} pixel inputs but {len(m)} mask pixels")
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    rng = np.random.default_rng(cfg.seed)
    image_weight = [np.float32(1.0 if m.any() else cfg.negative_weight) for m in masks]
    weight = torch.from_numpy(np.repeat(np.array(image_weight, np.float32), cfg.pixels_per_image))
    losses = []
    net.train()
    for epoch in range(cfg.epochs):
        picks = [rng.integers(0, len(x), cfg.pixels_per_image) for x in inputs]
        x = torch.from_numpy(np.concatenate([p[i] for p, i in zip(inputs, picks)]))
        y = torch.from_numpy(np.concatenate([m[i] for m, i in zip(masks, picks)]))
        order = torch.randperm(len(x))
        total = 0.0
        for b in range(0, len(x), cfg.batch):
            j = order[b:b + cfg.batch]
            loss = nn.functional.binary_cross_entropy_with_logits(net(x[j]), y[j], weight=weight[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(j)
        sched.step()
        losses.append(total / len(x))
        if epoch % 10 == 0 or epoch == cfg.epochs - 1:
            log.info("head epoch %d: BCE %.4f", epoch, losses[-1])
    net.eval()
    return losses


def transform_image_indices(masks: list[np.ndarray], names: list[str], n: int, seed: int,
                            negatives: int = 0) -> list[int]:
    """Indices of the images the logit transform is fitted on: ``n`` images (seeded draw, sorted by name) among those
    whose masks hold both classes (:func:`holds_both_classes`), then ``negatives`` all-sharp ones (a second draw
    of the same generator; fewer if there are fewer). ``masks[i]``: (H, W) {0, 1} or bool, 1 = blurred."""
    pool = sorted((names[i], i) for i, m in enumerate(masks) if holds_both_classes(m))
    if not pool:
        raise ValueError("no labelled image holds both blurred and sharp pixels: the transform cannot be fitted")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pool), min(n, len(pool)), replace=False)
    picked = [pool[k][1] for k in sorted(chosen)]
    if negatives:
        sharp = sorted((names[i], i) for i, m in enumerate(masks) if not np.any(m))
        drawn = rng.choice(len(sharp), min(negatives, len(sharp)), replace=False) if sharp else []
        picked += [sharp[k][1] for k in sorted(drawn)]
    return picked
