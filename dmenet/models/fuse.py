"""Inference fast path of B: BatchNorm folded into the preceding convolutions, 1×1 convolutions as matrix
products, auxiliary heads skipped.

With moving statistics an eval-mode BatchNorm is a per-channel affine map, ``y = (x − μ)/√(v + ε)·γ + β``, so a
conv followed by it equals one conv with weights ``W·s`` and bias ``(b − μ)·s + β`` (``s = γ/√(v + ε)``, γ = 1 for
:class:`BetaBatchNorm`). Padding commutes with the fold because the BatchNorm comes after the conv. The result is
the same function up to float rounding (about 1e-6 relative). The fold must **not** be used where BatchNorm
normalises with the statistics of the input itself (``recipe.sigma.bn`` or ``recipe.detection.bn`` is
``BNMode.IMAGE``, as the shipped detection path); the other two rewrites (1×1 convs as matrix products, replicate
padding without the padded copy) do not touch BatchNorm and serve that path too.

:func:`inference_blur` returns a folded copy of ``model.blur``, :func:`image_statistics_blur` an unfolded one for
per-image statistics (its BatchNorms as :class:`ImageStatisticsNorm`); the model itself is left untouched.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmenet.models.layers import BetaBatchNorm, SameConv2d, check_image, memory_format_of, tf_same_pad, tf_same_pads

_BATCHNORMS = (BetaBatchNorm, nn.BatchNorm2d)


def fold_conv_bn_(conv: nn.Conv2d, bn: nn.Module) -> nn.Conv2d:
    """In place: give ``conv`` new weight and bias tensors so that it equals ``bn(conv(x))`` with ``bn`` in eval mode
    (moving statistics); returns ``conv`` (now always with a bias). The old tensors are not modified."""
    with torch.no_grad():
        std = torch.sqrt(bn.running_var + bn.eps)
        gamma = getattr(bn, "weight", None)
        scale = (gamma if gamma is not None else torch.ones_like(std)) / std
        beta = bn.bias if bn.bias is not None else torch.zeros_like(std)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(std)
        weight = (conv.weight * scale.view(-1, 1, 1, 1)).contiguous(memory_format=memory_format_of(conv.weight))
        conv.weight = nn.Parameter(weight, requires_grad=False)
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + beta, requires_grad=False)
    return conv


def fold_batchnorms(module: nn.Module) -> int:
    """In place: in every ``nn.Sequential`` of ``module``, each Conv2d directly followed by a BatchNorm becomes the
    folded conv and the BatchNorm an ``nn.Identity``. Returns the number of folds."""
    folds = 0
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, _BATCHNORMS):
                fold_conv_bn_(conv, bn)
                seq._modules[b] = nn.Identity()
                folds += 1
    return folds


WIDENING = 2
"""A 1×1 conv with a bias and at least ``WIDENING`` × (C_in + 1) output channels takes its bias inside the matrix
product (:class:`PointwiseConv`)."""


class PointwiseConv(nn.Module):
    """A 1×1 stride-1 conv (groups 1) as one matrix product over channels on the channels-last view.

    PyTorch's CPU convolution sent 1×1 convs to its slow im2col-free path (``_slow_conv2d_forward``); the product
    through BLAS is several times faster there. The bias never goes through ``addmm``, which first copies it into
    every row of the output: a widening conv (:data:`WIDENING`) appends a column of ones to its input and its bias
    as a row of the weight (one product, the input copy is C_out / (C_in + 1) times smaller than the output);
    others add the bias in place after the product. Same values up to float rounding.
    Input/output (B, C, H, W); the output is channels-last.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        w = conv.weight.detach()[:, :, 0, 0]  # (C_out, C_in)
        bias = None if conv.bias is None else conv.bias.detach()
        self.widening = bias is not None and w.shape[0] >= WIDENING * (w.shape[1] + 1)
        if self.widening:
            w, bias = torch.cat([w, bias[:, None]], 1), None
        self.weight = nn.Parameter(w.t().contiguous(), requires_grad=False)  # (C_in [+ 1], C_out)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) features (any layout; a channels-last input is read without a copy) → (B, C_out, H, W),
        a channels-last view: the 1×1 conv's values up to float rounding, in the conv's output units."""
        b, c, h, w = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(-1, c)  # a view of a channels-last input
        if self.widening:
            rows = torch.cat([rows, rows.new_ones(()).expand(rows.shape[0], 1)], 1)
        out = torch.mm(rows, self.weight)
        if self.bias is not None:
            out.add_(self.bias)
        return out.view(b, h, w, -1).permute(0, 3, 1, 2)


def _swap_children(module: nn.Module, takes: Callable[[nn.Module], bool],
                   make: Callable[[nn.Module], nn.Module]) -> int:
    """In place: every sub-module ``m`` of ``module`` with ``takes(m)`` becomes ``make(m)``. Returns the count."""
    swaps = 0
    for parent in list(module.modules()):
        for name, child in list(parent._modules.items()):
            if child is not None and takes(child):
                parent._modules[name] = make(child)
                swaps += 1
    return swaps


def pointwise_as_linear(module: nn.Module) -> int:
    """In place: replace every plain 1×1 stride-1 unpadded Conv2d (groups 1) by :class:`PointwiseConv`. Returns
    the number replaced."""
    return _swap_children(module, lambda c: (type(c) is nn.Conv2d and c.kernel_size == (1, 1) and c.stride == (1, 1)
                                             and c.padding == (0, 0) and c.groups == 1 and c.dilation == (1, 1)),
                          PointwiseConv)


class ReplicateConv3x3(nn.Module):
    """A 3×3 stride-1 conv with 1-px replicate padding, without the padded copy of the input: the interior comes
    from the zero-padded conv (no copy), and the one-pixel frame, the only place where zero and replicate padding
    differ, is recomputed from 2-px strips. Same values as the replicate-padded conv up to rounding."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach(), requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach(), requires_grad=False)
        self.groups = conv.groups

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) → (B, C_out, H, W), the 3×3 conv of replicate-padded ``x``."""
        h, w = x.shape[-2:]
        if h < 3 or w < 3:
            return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.weight, self.bias, groups=self.groups)
        y = F.conv2d(x, self.weight, self.bias, padding=1, groups=self.groups)

        def edge(strip: Tensor, pad: tuple[int, int, int, int]) -> Tensor:
            """The conv of a 2-px ``strip`` of the input, replicate-padded by ``pad`` (left, right, top, bottom)."""
            return F.conv2d(F.pad(strip, pad, mode="replicate"), self.weight, self.bias, groups=self.groups)

        y[:, :, :1] = edge(x[:, :, :2], (1, 1, 1, 0))
        y[:, :, -1:] = edge(x[:, :, -2:], (1, 1, 0, 1))
        y[:, :, 1:-1, :1] = edge(x[:, :, :, :2], (1, 0, 1, 1))[:, :, 1:-1]
        y[:, :, 1:-1, -1:] = edge(x[:, :, :, -2:], (0, 1, 1, 1))[:, :, 1:-1]
        return y


def replicate_convs(module: nn.Module) -> int:
    """In place: replace every 3×3 stride-1 Conv2d with 1-px replicate padding by :class:`ReplicateConv3x3`, and
    make LeakyReLUs in-place (each follows a conv whose output nobody else reads). Returns the convs replaced."""
    for m in module.modules():
        if isinstance(m, nn.LeakyReLU):
            m.inplace = True
    return _swap_children(module, lambda c: (type(c) is nn.Conv2d and c.kernel_size == (3, 3) and c.stride == (1, 1)
                                             and c.padding == (1, 1) and c.padding_mode == "replicate"
                                             and c.dilation == (1, 1)),
                          ReplicateConv3x3)


STRIP_MARGIN = 2
"""Outputs of overlap by which :class:`SamePaddedAfterConv`'s edge strips start inside the unpadded part."""


class SamePaddedAfterConv(nn.Module):
    """A TF ``SAME`` strided conv (:class:`dmenet.models.layers.SameConv2d`) without the zero-padded copy of its
    input when the padding falls after the input only (even sizes at stride 2): the outputs whose windows lie inside
    the input come from the unpadded input, the last row and column from thin padded strips. Other sizes, and
    tracing, pad as before. Same values up to float rounding."""

    def __init__(self, conv: SameConv2d):
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach(), requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach(), requires_grad=False)
        self.kernel, self.stride, self.groups = conv.kernel_size[0], conv.stride[0], conv.groups

    def _conv(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, groups=self.groups)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) → (B, C_out, ⌈H/stride⌉, ⌈W/stride⌉), the TF ``SAME`` conv of ``x``."""
        k, s = self.kernel, self.stride
        h, w = x.shape[-2:]
        (top, bottom), (left, right) = tf_same_pads(h, k, s), tf_same_pads(w, k, s)
        if top or left or h < k or w < k or torch.jit.is_tracing():
            return self._conv(tf_same_pad(x, k, s))
        main = self._conv(x)  # windows inside x
        mh, mw = main.shape[-2:]
        oh, ow = -(-h // s), -(-w // s)
        if (mh, mw) == (oh, ow):
            return main
        out = torch.empty((main.shape[0], main.shape[1], oh, ow), dtype=main.dtype, device=main.device,
                          memory_format=memory_format_of(main))
        out[:, :, :mh, :mw] = main
        # each strip starts STRIP_MARGIN outputs early: under bfloat16 autocast, PyTorch 2.13's CPU conv returns
        # garbage for stride-2 inputs 3–4 px wide (BENCHMARKS.md), which a one-output strip would be
        if mh < oh:  # the last rows: windows that reach the zero rows below x
            m = min(mh, STRIP_MARGIN)
            out[:, :, mh:] = self._conv(F.pad(x[:, :, s * (mh - m):], (0, right, 0, bottom)))[:, :, m:]
        if mw < ow:  # the last columns of the other rows
            m = min(mw, STRIP_MARGIN)
            strip = x[:, :, : s * (mh - 1) + k, s * (mw - m):]
            out[:, :, :mh, mw:] = self._conv(F.pad(strip, (0, right, 0, 0)))[..., m:]
        return out


def same_convs_unpadded(module: nn.Module) -> int:
    """In place: replace every strided :class:`SameConv2d` by :class:`SamePaddedAfterConv`. Returns the count."""
    return _swap_children(module, lambda c: isinstance(c, SameConv2d) and c.stride[0] > 1, SamePaddedAfterConv)


class ImageStatisticsNorm(nn.Module):
    """A BatchNorm that always normalises with the statistics of its input batch (per image at inference: the
    channel's mean and biased variance over the batch's pixels), and never reads or updates moving statistics: the
    same arithmetic as the BatchNorm in train mode, as ``F.batch_norm`` with no running buffers. It holds no state
    that a call changes, so one copy serves any number of threads (:func:`image_statistics_blur`).
    Input/output (B, C, H, W) or (B, C)."""

    def __init__(self, bn: nn.Module):
        super().__init__()
        weight = getattr(bn, "weight", None)
        self.weight = None if weight is None else nn.Parameter(weight.detach(), requires_grad=False)
        self.bias = None if bn.bias is None else nn.Parameter(bn.bias.detach(), requires_grad=False)
        self.eps = bn.eps

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) or (B, C) → the same shape and dtype: per channel (x − batch mean) / √(biased batch var
        + eps) · weight + bias (weight 1 when the BatchNorm had none); unit that of ``x``."""
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def image_statistics_norms(module: nn.Module) -> int:
    """In place: every BatchNorm of ``module`` becomes :class:`ImageStatisticsNorm`. Returns the count."""
    return _swap_children(module, lambda c: isinstance(c, _BATCHNORMS), ImageStatisticsNorm)


def _copy_tree(module: nn.Module) -> nn.Module:
    """A copy of the module tree that shares the original tensors (the rewrites here only ever replace tensors and
    modules, never modify them); much cheaper than ``copy.deepcopy``."""
    new = copy.copy(module)
    new.__dict__ = dict(module.__dict__)
    new._parameters = dict(module._parameters)
    new._buffers = dict(module._buffers)
    new._modules = {k: None if v is None else _copy_tree(v) for k, v in module._modules.items()}
    return new


class InferenceBlur(nn.Module):
    """B for inference with moving BatchNorm statistics: forward(image (B, 3, H, W) RGB in [0, 1], H, W multiples
    of 16) → defocus label (B, 1, H, W) in [0, 1], equal to ``blur(image).defocus`` in eval mode up to rounding.

    Holds folded copies of the encoder and decoder; the auxiliary heads are never evaluated.
    """

    def __init__(self, blur: nn.Module, fold: bool = True, pointwise: bool = True, replicate: bool = True,
                 strided: bool = True):
        """``fold`` / ``pointwise`` / ``replicate`` / ``strided`` switch the four rewrites (all on by default; the
        switches exist for ``benchmarks/bench_fastpath.py``, which times each step). Without ``fold`` (per-image
        statistics) every BatchNorm becomes an :class:`ImageStatisticsNorm`."""
        super().__init__()
        self.encoder = _copy_tree(blur.encoder)
        self.decoder = _copy_tree(blur.decoder)
        for name in ("aux4", "aux3", "aux2", "aux1", "aux0"):
            setattr(self.decoder, name, None)  # not evaluated with with_aux=False; frees their weights
        parts = (self.encoder, self.decoder)
        self.folds = sum(fold_batchnorms(p) for p in parts) if fold else 0
        self.pointwise = sum(pointwise_as_linear(p) for p in parts) if pointwise else 0
        self.replicate = sum(replicate_convs(p) for p in parts) if replicate else 0
        self.strided = sum(same_convs_unpadded(p) for p in parts) if strided else 0
        self.image_norms = 0 if fold else sum(image_statistics_norms(p) for p in parts)
        left = [n for n, m in self.named_modules() if isinstance(m, _BATCHNORMS)]
        if fold and left:
            raise ValueError(f"BatchNorm layers not preceded by a conv, cannot fold: {left}")
        self.eval()

    def forward(self, image: Tensor, features: bool = False) -> Tensor:
        """The label (B, 1, H, W); with ``features`` the decoder's detection features (B, C, H, W), channel 0 the
        label (:meth:`dmenet.models.decoder.Decoder.detection_features`)."""
        check_image(image, 3, "image")
        if features:
            return self.decoder.detection_features(self.encoder(image))
        return self.decoder(self.encoder(image), with_aux=False)[0]


def folded_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` (sharing its tensors) for inference with moving BatchNorm statistics: every conv + BatchNorm
    folded (:func:`fold_batchnorms`) and every 1×1 conv a matrix product (:func:`pointwise_as_linear`), in eval mode.
    Same function up to float rounding. Raises ValueError when a BatchNorm is not preceded by a conv."""
    new = _copy_tree(module)
    fold_batchnorms(new)
    pointwise_as_linear(new)
    left = [n for n, m in new.named_modules() if isinstance(m, _BATCHNORMS)]
    if left:
        raise ValueError(f"BatchNorm layers not preceded by a conv, cannot fold: {left}")
    return new.eval()


def _memoised(owner: nn.Module, slot: str, watched: nn.Module, build: Callable[[], nn.Module]) -> nn.Module:
    """``build()``, kept on ``owner`` (outside its state dict and module tree) and rebuilt only when a parameter or
    buffer of ``watched`` changed: the key is every tensor's storage address and in-place version counter, so an
    optimizer step, ``load_state_dict`` or a move to another device invalidates it."""
    key = tuple((t.data_ptr(), t._version) for t in (*watched.parameters(), *watched.buffers()))
    memo = owner.__dict__.get(slot)
    if memo is None or memo[0] != key:
        memo = (key, build())
        object.__setattr__(owner, slot, memo)
    return memo[1]


def cached_folded_copy(module: nn.Module) -> nn.Module:
    """:func:`folded_copy` of ``module``, rebuilt only when its tensors changed (see :func:`_memoised`)."""
    return _memoised(module, "_folded_copy_memo", module, lambda: folded_copy(module))


def inference_blur(model: nn.Module) -> InferenceBlur:
    """Folded copy of ``model.blur`` (DMENet) on the model's device and memory format; see :class:`InferenceBlur`."""
    return InferenceBlur(model.blur)


def image_statistics_blur(model: nn.Module) -> InferenceBlur:
    """Copy of ``model.blur`` for per-image BatchNorm statistics: :class:`InferenceBlur` with every rewrite but the
    fold, its BatchNorms as :class:`ImageStatisticsNorm` (the statistics of each input, whatever the mode; no state
    changes on a call, so threads may share it). Same function as B inside
    :func:`dmenet.models.layers.batch_statistics` up to float rounding."""
    return InferenceBlur(model.blur, fold=False)


def cached_image_statistics_blur(model: nn.Module) -> InferenceBlur:
    """:func:`image_statistics_blur` of ``model``, rebuilt only when B's tensors changed (see :func:`_memoised`)."""
    return _memoised(model, "_image_statistics_blur_memo", model.blur, lambda: image_statistics_blur(model))


def cached_inference_blur(model: nn.Module) -> InferenceBlur:
    """:func:`inference_blur` of ``model``, rebuilt only when B's tensors changed since the last call (the memo lives
    on the model object; see :func:`_memoised`)."""
    return _memoised(model, "_inference_blur_memo", model.blur, lambda: inference_blur(model))
