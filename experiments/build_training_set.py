"""Build the training/test data of the shipped lite checkpoint from what exists offline (issue: default checkpoint).

Usage::

    python experiments/build_training_set.py --shared ../shared --out runs/lite_data [--workers 2]

Writes (all under ``--out``, nothing inside the repository's tracked tree):

* ``bsds_screen_t<threshold>.json`` — the natural-blur screen of every BSDS500 photo (see :func:`natural_blur_score`).
* ``synthetic/``       — SYNDOF-format training set: built-in data (Motorcycle, scikit-image photos, procedural
  scenes), the screened BSDS500 *train* + *val* photos with edge-aligned random depth, the 12 EBB! photos with
  their estimated depth mapped to 1–12 m.
* ``synthetic_v2/``    — ``synthetic/`` plus a small-blur part (the same BSDS500 photos, another seed, max CoC 13,
  i.e. σ ≤ 3 px), prefixed ``bsdssmall_``.
* ``synthetic_v3/``    — ``synthetic_v2/`` plus a large-blur part (the same BSDS500 photos, another seed, max CoC 43,
  i.e. σ ≤ 10.5 px, labels clipped at σ_max 7 px), prefixed ``bsdsbig_``: with the random downscale s ∈ [0.5, 1],
  σ of 5–7 px is otherwise rare (the stage-2 model never predicts more than ≈ 4.3 px).
* ``synthetic_v4/``    — ``synthetic_v3/`` plus a second max-CoC-29 part (the same BSDS500 photos, another seed, so
  other random depths and cameras), prefixed ``bsds29b_``: more renders of the synthetic test's distribution.
* ``val_ebb/``, ``val_ebb_half/`` — the 16 held-out EBB! samples (the last 16 stems of ``synthetic_v2``, which
  training holds out with ``data.val_count 16``), at their own size and downscaled ×0.5 with σ × 0.5.
* ``val_bsds/``        — validation set: 40 samples from the screened BSDS500 *test* photos that are not sources of
  ``synthetic_test`` (listed in ``src_bsds_valsel/``), another seed, max CoC 29. Never trained on.
* ``calib_bsds/``, ``calib_bsds_half/`` — fitting set of the σ recalibration curve (``dmenet.training.fit_sigma``):
  60 other renders (another seed, max CoC 29) of ``val_bsds``'s source photos, and the same ×0.5 with σ × 0.5.
  Never trained on.
* ``val_bsds_reblur/``, ``calib_bsds_reblur/`` — ``val_bsds`` / ``calib_bsds`` blurred as a whole by a Gaussian
  of σ g ~ U[0.5, 2] px per sample (seeds 9 / 10), σ := √(σ² + g²) (:func:`write_reblurred`): renders with no
  sharp region, where ranking blur against the sharpest region fails. Never trained on.
* ``synthetic_test/``  — held-out synthetic test set: screened BSDS500 *test* photos, another seed. Never trained on.
* ``real/``            — unlabelled real domain: ``photos/real_dof`` (DPDD GIF frames, focal stacks, portraits),
  BSDS500 train + val as they are, and the CUHK training photos of the split's ``train`` subset (links).
* ``labelled/{image,gt}`` — labelled real images for the calibration network S: the ``train`` subset of the CUHK
  split (``--split``, default ``experiments/cuhk_split.json``: 499 of the 604 CUHK training images; masks white =
  blurred, train with ``--gt-polarity white-blurred``, the default). Never trained on: the split's ``val`` (100
  images, the DBD validation set) and ``held_out`` (the 5 ``cuhk/image`` photos, the CUHK-TE-1 ids), and
  ``xu100/`` 1–3 and ``dut/`` 1–3, which are test images of their benchmarks (a small real DBD test).
* ``labelled_neg/{image,gt}`` — ``labelled/`` plus the screened sharp-everywhere BSDS500 *train* photos of
  ``--sharp-list`` (``experiments/distill/bsds_sharp_train.txt``) with all-sharp masks: negatives for S, so that a
  photo sharp everywhere is not called blurred where it is flat (rule 21b, ``experiments/RULE_21B.md``).
* ``splits.json``      — exactly which file went where.

Natural-blur screen: BSDS500 photos mostly have a wide depth of field, but some carry natural background blur; as
synthesis sources those would get a wrong (too small) σ label. Each photo's edges are scored with Zhuo & Sim's
re-blur gradient ratio (:func:`dmenet.peers.zhuo_sim.sparse_defocus`); the photo is split into a 4×4 grid and a cell
counts as blurred when the median edge σ of its (≥ 30) edge pixels is ≥ ``--blur-threshold`` px (1.5). A photo with
≥ 15 % blurred cells (among cells with edges), or with fewer than 4 cells that have edges at all, is excluded from
synthesis (it stays in the unlabelled real domain, where natural blur is welcome).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from syndof import cli
from syndof import io as sio
from syndof import units

log = logging.getLogger("build_training_set")
SMALL_MAX_COC = 13
"""Max CoC of the small-blur part of ``synthetic_v2`` (σ_max = (13 − 1)/4 = 3 px)."""
BIG_MAX_COC = 43
"""Max CoC of the large-blur part of ``synthetic_v3`` (σ up to (43 − 1)/4 = 10.5 px, labels clip at 7 px)."""
VAL_COUNT = 16
"""Held-out EBB! validation samples: ``SyntheticDataset.split(VAL_COUNT)``, as training does with ``data.val_count``."""


def natural_blur_score(image: np.ndarray, threshold: float = 1.5, grid: int = 4, min_edges: int = 30) -> dict:
    """Fraction of grid cells whose median edge σ (Zhuo & Sim ratio, px) is ≥ ``threshold``.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1].
    Returns:
        ``{"blurred_cells": k, "edge_cells": n, "fraction": k / n}``.
    """
    from dmenet.peers.zhuo_sim import sparse_defocus

    sigma, edges = sparse_defocus(image)
    h, w = edges.shape
    blurred = cells = 0
    for i in range(grid):
        for j in range(grid):
            sl = (slice(i * h // grid, (i + 1) * h // grid), slice(j * w // grid, (j + 1) * w // grid))
            e = edges[sl]
            if e.sum() < min_edges:
                continue
            cells += 1
            blurred += float(np.median(sigma[sl][e])) >= threshold
    return {"blurred_cells": int(blurred), "edge_cells": int(cells), "fraction": blurred / max(cells, 1)}


def _is_score(entry: object) -> bool:
    """Whether a screen cache entry is a finished :func:`natural_blur_score` (``edge_cells`` a whole number,
    ``fraction`` a number)."""
    def number(v: object, kind: type | tuple[type, ...]) -> bool:
        return isinstance(v, kind) and not isinstance(v, bool)

    return isinstance(entry, dict) and number(entry.get("edge_cells"), int) \
        and number(entry.get("fraction"), (int, float))


def screen_bsds(bsds: Path, out: Path, threshold: float) -> dict[str, dict]:
    """Score every BSDS500 photo (cached in ``out/bsds_screen_t<threshold>.json``). The cache is written also when
    the screen stops early (Ctrl-C, an unreadable photo): the photos scored by then are not scored again."""
    cache = out / f"bsds_screen_t{threshold:g}.json"
    scores = sio.read_json_object(cache) if cache.is_file() else {}  # a damaged cache: one line naming it
    damaged = next((k for k, v in scores.items() if not _is_score(v)), None)
    if damaged is not None:  # refused before the screen, so the file is not written over
        raise sio.InputError(cache, f"entry {damaged!r} is not a screen score ({json.dumps(scores[damaged])[:60]}); "
                                    "delete the file to score every photo again")
    try:
        for split in ("train", "val", "test"):
            for path in sio.list_images(bsds / split):
                key = f"{split}/{path.name}"
                if key not in scores:
                    scores[key] = natural_blur_score(sio.read_image(path), threshold)
                scores[key]["accepted"] = scores[key]["edge_cells"] >= 4 and scores[key]["fraction"] < 0.15
    finally:  # each entry is a finished score
        sio.write_json_atomic(cache, scores)
    return scores


def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        os.symlink(os.path.abspath(src), dst)


def ebb_depth_to_mm(path: Path, size: tuple[int, int], near_mm: float = 1000.0, far_mm: float = 12000.0) -> np.ndarray:
    """EBB! 8-bit estimated depth (white = near, relative) → metric depth in mm, resized to ``size`` (w, h).

    The map is relative: it is mapped linearly in inverse depth (disparity-like) between ``far_mm`` and ``near_mm``
    (:func:`syndof.units.inverse_depth8_to_mm` of the bilinearly resized 8-bit values, which stay in 0 … 255).
    Returns (h, w) float64 depth in mm; ValueError for a range that is not 0 < near < far.
    """
    raw = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if raw is None:
        raise sio.InputError(path, "cannot decode depth map")
    levels = cv2.resize(raw.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    return units.inverse_depth8_to_mm(levels, near_mm, far_mm)


def extend_set(dst: Path, base: Path, part: Path, prefix: str, meta_from: Path, parts: dict[str, int]) -> None:
    """SYNDOF folder ``dst`` = links to every sample of ``base`` plus those of ``part`` renamed ``{prefix}_{name}``;
    ``dataset.json`` is ``meta_from``'s with the max CoC of each part recorded (labels keep ``meta_from``'s σ_max)."""
    for sub in ("image", "blur_map"):
        for f in sorted((base / sub).glob("*.png")):
            link(f, dst / sub / f.name)
        for f in sorted((part / sub).glob("*.png")):
            link(f, dst / sub / f"{prefix}_{f.name}")
    sio.write_json_atomic(dst / "dataset.json", {**json.loads(meta_from.read_text()), "parts": parts})


def _single_part_meta(syn: Path) -> dict:
    """``syn``'s ``dataset.json`` without its ``parts`` record (for a folder drawn from it)."""
    return {k: v for k, v in json.loads((syn / "dataset.json").read_text()).items() if k != "parts"}


def write_validation_ebb(syn: Path, stems: list[str], full: Path, half: Path) -> None:
    """Link the held-out samples ``stems`` of SYNDOF folder ``syn`` into ``full``; write them ×0.5 (σ × 0.5) to
    ``half`` (:func:`write_half`)."""
    sio.write_json_atomic(full / "dataset.json", _single_part_meta(syn))
    for stem in stems:
        for sub in ("image", "blur_map"):
            link(syn / sub / f"{stem}.png", full / sub / f"{stem}.png")
    write_half(syn, stems, half)


def write_derived(syn: Path, stems: list[str], dst: Path, meta: dict,
                  derive: Callable[[str, dict], dict]) -> None:
    """Write ``derive(stem, sample)`` of each sample ``stems`` of SYNDOF folder ``syn`` (sample = ``image`` +
    ``sigma``) to the SYNDOF folder ``dst``, with ``meta`` as its ``dataset.json``. Samples already there are kept
    (resumable)."""
    sio.write_json_atomic(dst / "dataset.json", meta)
    for stem in stems:
        if (dst / "blur_map" / f"{stem}.png").exists():
            continue
        sample = derive(stem, {"image": sio.read_image(syn / "image" / f"{stem}.png"),
                               "sigma": sio.read_sigma_map(syn / "blur_map" / f"{stem}.png")})
        sio.write_image(dst / "image" / f"{stem}.png", sample["image"])
        sio.write_sigma_map(dst / "blur_map" / f"{stem}.png", sample["sigma"])


def write_half(syn: Path, stems: list[str], half: Path) -> None:
    """Write the samples ``stems`` of SYNDOF folder ``syn`` ×0.5 (σ × 0.5) to ``half`` (area interpolation;
    :func:`dmenet.data.transforms.resize` rescales σ). Samples already there are kept (resumable)."""
    from dmenet.data.transforms import resize

    def halve(stem: str, sample: dict) -> dict:
        h, w = sample["image"].shape[:2]
        return resize(sample, (h // 2, w // 2))

    write_derived(syn, stems, half, _single_part_meta(syn), halve)


REBLUR_RANGE = (0.5, 2.0)
"""σ range (px) of the global Gaussian re-blur of ``val_bsds_reblur`` / ``calib_bsds_reblur``."""


def write_reblurred(syn: Path, stems: list[str], dst: Path, seed: int,
                    extra_range: tuple[float, float] = REBLUR_RANGE) -> dict[str, float]:
    """Write the samples ``stems`` of SYNDOF folder ``syn`` to ``dst`` blurred as a whole by a Gaussian of σ
    g ~ U[``extra_range``] px, one g per sample drawn in ``stems`` order from ``seed``; σ := √(σ² + g²)
    (:func:`dmenet.data.transforms.reblur`, the training augmentation's formula). Such a sample has no sharp
    region, as a photo focused outside its scene. The g of each stem goes to ``dst/dataset.json`` (``reblur_px``).
    Samples already there are kept (resumable; g depends only on the seed and the stem order)."""
    from dmenet.data.transforms import reblur

    rng = np.random.default_rng(seed)
    extras = {stem: round(float(rng.uniform(*extra_range)), 4) for stem in stems}
    write_derived(syn, stems, dst, {**_single_part_meta(syn), "reblur_px": extras},
                  lambda stem, sample: reblur(sample, extras[stem]))
    return extras


def refuse_stale(folder: Path, wanted: set[str], what: str) -> None:
    """Raise :class:`syndof.io.InputError` when ``folder`` holds a file whose name is not in ``wanted`` (an earlier
    build with other contents): a labelled set is never silently mixed with another."""
    stale = sorted(p.name for p in folder.glob("*") if p.name not in wanted) if folder.is_dir() else []
    if stale:
        raise sio.InputError(folder, f"holds {len(stale)} file(s) outside {what}, e.g. {stale[0]} (an earlier "
                             "build): remove the folder and build again")


BSDS_SOURCES = {"src_bsds_trainval": ("train", "val"), "src_bsds_test": ("test",)}
"""Synthesis-source folders and the BSDS500 splits whose accepted photos they link."""


def link_bsds_sources(bsds: Path, out: Path, scores: dict[str, dict], threshold: float) -> None:
    """Link the BSDS500 photos the screen accepts (``scores``, :func:`screen_bsds`) into the synthesis-source folders
    (:data:`BSDS_SOURCES`). A folder holding a photo the screen now excludes (an earlier build with another
    ``--blur-threshold``) is refused before anything is linked: the renders would use it."""
    for folder, parts in BSDS_SOURCES.items():
        wanted = {Path(k).name for k, s in scores.items() if s["accepted"] and k.split("/")[0] in parts}
        refuse_stale(out / folder, wanted, f"the BSDS500 photos the screen accepts (--blur-threshold {threshold:g})")
    for folder, parts in BSDS_SOURCES.items():
        for key, s in sorted(scores.items()):
            if key.split("/")[0] in parts and s["accepted"]:
                link(bsds / key, out / folder / Path(key).name)


SHARP_PREFIX = "sharp_"
"""Stem prefix of the sharp-everywhere negatives in ``labelled_neg`` (BSDS500 stems are bare numbers)."""


def write_labelled_with_negatives(data: Path, labelled: Path, sharp_list: Path, dst: Path) -> dict:
    """Write ``dst/{image,gt}``: every pair of ``labelled`` (links) plus the screened sharp-everywhere BSDS500
    *train* photos listed in ``sharp_list`` (``experiments/distill/screen_sharp.py``) as negatives of S, each with an
    all-black mask (white = blurred: nothing is blurred), stems prefixed :data:`SHARP_PREFIX`. Masks already
    written are kept (resumable).

    Raises:
        InputError: a listed photo missing from ``bsds500/train``, or ``dst`` holding other files.
    Returns:
        the record for ``splits.json``.
    """
    stems, photos = sharp_negatives(data, sharp_list)
    pairs = {"image": sio.list_images(labelled / "image"), "gt": sio.list_images(labelled / "gt")}
    wanted = {"image": {p.name for p in pairs["image"]} | {f"{SHARP_PREFIX}{photos[s].name}" for s in stems},
              "gt": {p.name for p in pairs["gt"]} | {f"{SHARP_PREFIX}{s}.png" for s in stems}}
    for sub in ("image", "gt"):
        refuse_stale(dst / sub, wanted[sub], f"{labelled} and the sharp negatives of {sharp_list}")
        for path in pairs[sub]:
            link(path, dst / sub / path.name)
    for s in stems:
        link(photos[s], dst / "image" / f"{SHARP_PREFIX}{photos[s].name}")
        mask = dst / "gt" / f"{SHARP_PREFIX}{s}.png"
        if not mask.exists():
            size = sio.header_size(photos[s])  # (width, height) as decoded; the image itself is not read
            if size is None:
                raise sio.InputError(photos[s], "cannot read the image header (corrupt or not an image)")
            sio.write_image(mask, np.zeros((size[1], size[0]), np.uint8))
    return {"labelled_neg": f"{labelled.name}/ ({len(pairs['image'])} pairs) + {len(stems)} sharp-everywhere "
                            f"BSDS500 train photos of {sharp_list} with all-sharp masks (stems {SHARP_PREFIX}*)"}


def write_cuhk_train(data: Path, split_file: Path, labelled: Path, real: Path) -> dict:
    """Link the ``train`` subset of the CUHK split into ``labelled/{image,gt}`` (S's labelled set, masks white =
    blurred) and ``real`` (unlabelled real domain). Validation, held-out and benchmark test images never enter.

    Raises:
        InputError: a listed stem without its image or mask, or a ``labelled`` folder holding other files (an
            earlier build, e.g. the xu100 / DUT test images): it is never silently mixed with the new set.
    Returns:
        the record for ``splits.json``.
    """
    from dmenet.data.splits import load_split

    stems = load_split(split_file, "train")
    images = sio.index_by_stem(data / "cuhk" / "train_image")
    masks = sio.index_by_stem(data / "cuhk" / "gt")
    missing = [s for s in stems if s not in images or s not in masks]
    if missing:
        raise sio.InputError(split_file, f"{len(missing)} train stem(s) lack an image in cuhk/train_image or a "
                             f"mask in cuhk/gt, e.g. {missing[0]}")
    sio.refuse_unreadable_names(p for s in stems for p in (images[s], masks[s]))  # before anything is linked
    names = {"image": {images[s].name for s in stems}, "gt": {masks[s].name for s in stems}}
    for folder, wanted in ((labelled / "image", names["image"]), (labelled / "gt", names["gt"]),
                           (real, names["image"])):
        refuse_stale(folder, wanted, "the CUHK training split")
    for s in stems:
        link(images[s], labelled / "image" / images[s].name)
        link(masks[s], labelled / "gt" / masks[s].name)
        link(images[s], real / images[s].name)
    return {"labelled_train": sorted(names["image"]), "labelled_gt_polarity": "white-blurred",
            "labelled_source": f"cuhk/train_image, subset 'train' of {split_file}",
            "real_cuhk": f"the same {len(stems)} CUHK training photos, unlabelled"}


INPUT_FOLDERS = ("photos/bsds500/train", "photos/bsds500/val", "photos/bsds500/test", "cuhk/train_image", "cuhk/gt",
                 "rgbd/pynet_bokeh/images", "rgbd/pynet_bokeh/depth_maps", "photos/real_dof")
"""Folders of ``shared/data`` the build reads (checked before anything is written)."""


def sharp_negatives(data: Path, sharp_list: Path) -> tuple[list[str], dict[str, Path]]:
    """(stems listed in ``sharp_list``, BSDS500 train photos by stem).

    Raises:
        InputError: ``sharp_list`` unreadable, or naming a photo that is not in ``bsds500/train``."""
    from dmenet.distill.split import read_split

    try:
        stems = read_split(sharp_list)
    except (OSError, UnicodeDecodeError) as exc:
        raise sio.InputError(sharp_list, f"cannot read the list ({exc.__class__.__name__})") from None
    photos = sio.index_by_stem(data / "photos" / "bsds500" / "train")
    missing = [s for s in stems if s not in photos]
    if missing:
        raise sio.InputError(sharp_list, f"{len(missing)} listed photo(s) are not in bsds500/train, e.g. {missing[0]}")
    sio.refuse_unreadable_names(photos[s] for s in stems)
    return stems, photos


def inputs_problem(data: Path, out: Path, screen_only: bool, sharp_list: Path | None = None) -> str | None:
    """One line when a folder the build reads is missing (only BSDS500 for ``--screen-only``), ``--out`` lies in
    ``shared/data`` or ``sharp_list`` is not a list of BSDS500 train photos; else None. Checked before anything is
    written: the BSDS screen alone takes many minutes."""
    needed = INPUT_FOLDERS[:3] if screen_only else INPUT_FOLDERS
    missing = [f for f in needed if not (data / f).is_dir()]
    if missing:
        return f"--shared: {data / missing[0]} is not a folder ({len(missing)} of the build's inputs missing)"
    if data.resolve() == out.resolve() or data.resolve() in out.resolve().parents:
        return f"--out {out}: lies inside the shared data {data}; the build writes a folder of its own"
    if sharp_list is not None and not screen_only:
        try:
            sharp_negatives(data, sharp_list)
        except sio.InputError as exc:
            return f"--sharp-list {exc}"
    return None


def build(shared: Path, out: Path, workers: int, threshold: float, seed: int,
          split_file: Path = Path("experiments/cuhk_split.json"),
          sharp_list: Path = Path("experiments/distill/bsds_sharp_train.txt")) -> dict:
    from syndof.generate import generate

    data = shared / "data"
    bsds = data / "photos" / "bsds500"
    # Labelled real (network S) and CUHK photos of the real domain: the training subset of the CUHK split only
    # (first: a bad split file stops the build before any rendering).
    cuhk_train = write_cuhk_train(data, split_file, out / "labelled", out / "real" / "cuhk")
    cuhk_train.update(write_labelled_with_negatives(data, out / "labelled", sharp_list, out / "labelled_neg"))
    scores = screen_bsds(bsds, out, threshold)
    splits: dict[str, list[str]] = {"excluded_bsds": sorted(k for k, s in scores.items() if not s["accepted"])}

    # Synthesis sources: accepted BSDS train+val (random depth), EBB! (estimated depth), test: accepted BSDS test.
    link_bsds_sources(bsds, out, scores, threshold)
    ebb_img, ebb_depth = out / "src_ebb" / "image", out / "src_ebb" / "depth"
    for path in sio.list_images(data / "rgbd" / "pynet_bokeh" / "images"):
        img = sio.read_image(path)
        h, w = img.shape[:2]
        scale = 640 / max(h, w)
        size = (round(w * scale), round(h * scale))
        if not (ebb_img / f"{path.stem}.png").exists():
            sio.write_image(ebb_img / f"{path.stem}.png", cv2.resize(img, size, interpolation=cv2.INTER_AREA))
        if not (ebb_depth / f"{path.stem}.npy").exists():
            sio.write_npy(ebb_depth / f"{path.stem}.npy",
                          ebb_depth_to_mm(data / "rgbd" / "pynet_bokeh" / "depth_maps" / f"{path.stem}.png", size))

    syn = out / "synthetic"
    n_tv = len(sio.list_images(out / "src_bsds_trainval"))
    summaries = {
        "builtin": generate(syn, count=40, seed=seed, workers=workers, max_size=640),
        "bsds_trainval": generate(syn / "_bsds", images=out / "src_bsds_trainval", count=n_tv, seed=seed + 1,
                                  workers=workers),
        "ebb": generate(syn / "_ebb", images=ebb_img, depths=ebb_depth, count=24, seed=seed + 2, workers=workers),
        "test": generate(out / "synthetic_test", images=out / "src_bsds_test", count=60, seed=seed + 100,
                         workers=workers),
    }
    # Merge the three training parts into one SYNDOF folder (links; stems are unique per part by prefix).
    for part in ("_bsds", "_ebb"):
        for sub in ("image", "blur_map"):
            for f in sorted((syn / part / sub).glob("*.png")):
                link(f, syn / sub / f"{part[1:]}_{f.name}")
    splits["synthetic_train_parts"] = {k: v.line() for k, v in summaries.items()}
    splits["synthetic_train_sources"] = ["builtin (skimage Motorcycle, skimage photos, procedural)",
                                         "BSDS500 train+val accepted by the screen", "EBB! 1..12"]

    # v2 = v1 + a small-blur part: the same BSDS500 train+val photos, another seed, max CoC 13 (σ ≤ 3 px), so that
    # small σ (RTF's range, σ ≤ 3.3 px) is no longer the rare case (v1: 17 % of pixels have σ < 1 px).
    syn2 = out / "synthetic_v2"
    small = generate(syn2 / "_bsds_small", images=out / "src_bsds_trainval", count=n_tv, seed=seed + 3,
                     max_coc=SMALL_MAX_COC, workers=workers)
    extend_set(syn2, syn, syn2 / "_bsds_small", "bsdssmall", syn / "_bsds" / "dataset.json",
               {"synthetic (v1)": 29, "bsdssmall_*": SMALL_MAX_COC})
    splits["synthetic_v2_parts"] = {"v1": "all of synthetic/", "bsds_small": small.line()}
    splits["synthetic_test_sources"] = ["BSDS500 test accepted by the screen"]

    # v3 = v2 + a large-blur part (BSDS500 train+val, another seed, max CoC 43); labels keep σ_max 7 (clipped).
    syn3 = out / "synthetic_v3"
    big = generate(syn3 / "_bsds_big", images=out / "src_bsds_trainval", count=n_tv, seed=seed + 4,
                   max_coc=BIG_MAX_COC, workers=workers)
    extend_set(syn3, syn2, syn3 / "_bsds_big", "bsdsbig", syn / "_bsds" / "dataset.json",
               {"synthetic (v1)": 29, "bsdssmall_*": SMALL_MAX_COC, "bsdsbig_*": BIG_MAX_COC})
    splits["synthetic_v3_parts"] = {"v2": "all of synthetic_v2/", "bsds_big": big.line()}

    # v4 = v3 + a second max-CoC-29 part (BSDS500 train+val, another seed: other depths and cameras).
    syn4 = out / "synthetic_v4"
    again = generate(syn4 / "_bsds_29b", images=out / "src_bsds_trainval", count=n_tv, seed=seed + 5,
                     workers=workers)
    extend_set(syn4, syn3, syn4 / "_bsds_29b", "bsds29b", syn / "_bsds" / "dataset.json",
               {"synthetic (v1)": 29, "bsdssmall_*": SMALL_MAX_COC, "bsdsbig_*": BIG_MAX_COC, "bsds29b_*": 29})
    splits["synthetic_v4_parts"] = {"v3": "all of synthetic_v3/", "bsds_29b": again.line()}

    # Validation sets (never trained on): the held-out EBB! stems at ×1 and ×0.5, and BSDS500 test photos that
    # are not sources of synthetic_test.
    from dmenet.data.synthetic import SyntheticDataset

    held_out = list(SyntheticDataset(syn2).split(VAL_COUNT)[1].stems)  # exactly what training holds out
    write_validation_ebb(syn2, held_out, out / "val_ebb", out / "val_ebb_half")
    used = {Path(json.loads(line)["source"]).name
            for line in (out / "synthetic_test" / "manifest.jsonl").read_text().splitlines() if line.strip()}
    for path in sio.list_images(out / "src_bsds_test"):
        if path.name not in used:
            link(path, out / "src_bsds_valsel" / path.name)
    val = generate(out / "val_bsds", images=out / "src_bsds_valsel", count=40, seed=seed + 200, workers=workers)
    splits["validation"] = {"val_ebb": held_out, "val_bsds": val.line() + " from BSDS500 test photos not in "
                            "synthetic_test"}
    # σ-curve fitting set (dmenet.training.fit_sigma): other renders of val_bsds's source photos, at ×1 and ×0.5.
    calib = generate(out / "calib_bsds", images=out / "src_bsds_valsel", count=60, seed=seed + 300, workers=workers)
    write_half(out / "calib_bsds", [p.stem for p in sio.list_images(out / "calib_bsds" / "image")],
               out / "calib_bsds_half")
    # The same two sets blurred as a whole (no sharp region): validation and curve fitting of rule v9.
    write_reblurred(out / "val_bsds", [p.stem for p in sio.list_images(out / "val_bsds" / "image")],
                    out / "val_bsds_reblur", seed=9)
    write_reblurred(out / "calib_bsds", [p.stem for p in sio.list_images(out / "calib_bsds" / "image")],
                    out / "calib_bsds_reblur", seed=10)
    splits["validation"]["val_bsds_reblur"] = f"val_bsds blurred as a whole, g ~ U{list(REBLUR_RANGE)} px, seed 9"
    splits["sigma_curve_fit"] = {"calib_bsds": calib.line() + " from val_bsds's source photos (other renders)",
                                 "calib_bsds_half": "calib_bsds at x0.5, sigma x0.5",
                                 "calib_bsds_reblur": f"calib_bsds blurred as a whole, g ~ U{list(REBLUR_RANGE)} "
                                                      "px, seed 10"}

    # Unlabelled real domain.
    real = out / "real"
    for path in sorted((data / "photos" / "real_dof").rglob("*")):
        if path.is_file() and path.suffix.lower() in sio.IMAGE_EXTENSIONS:
            link(path, real / "real_dof" / str(path.relative_to(data / "photos" / "real_dof")).replace("/", "__"))
    for split in ("train", "val"):
        for path in sio.list_images(bsds / split):
            link(path, real / "bsds" / f"{split}_{path.name}")
    splits.update(cuhk_train)
    splits["test_real_dbd"] = ["cuhk/image/* (5 images, GT white = blurred)", "xu100/ 1-3 (CUHK-TE-1, 320x320, "
                               "GT white = in focus)", "dut/ 1-3 (DUT-DBD test, 320x320, GT white = in focus)"]
    splits["test_rtf"] = ["rtf/image_01.png"]
    sio.write_json_atomic(out / "splits.json", splits)
    return splits


EXAMPLE = "python experiments/build_training_set.py --shared ../shared --out runs/lite_data --screen-only"


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    p = cli.script_parser("experiments/build_training_set.py", __doc__, EXAMPLE)
    p.add_argument("--shared", type=Path, default=Path("../shared"))
    p.add_argument("--out", type=Path, default=Path("runs/lite_data"))
    cli.add_workers(p, default=2, help="generator worker processes")
    p.add_argument("--blur-threshold", type=cli.positive_float, default=1.5)
    cli.add_seed(p, 2019)
    p.add_argument("--split", type=Path, default=Path("experiments/cuhk_split.json"),
                   help="CUHK split file (dmenet.data.splits); its train subset is S's labelled set")
    p.add_argument("--sharp-list", type=Path, default=Path("experiments/distill/bsds_sharp_train.txt"),
                   help="sharp-everywhere BSDS500 train photos, S's negatives in labelled_neg/")
    p.add_argument("--screen-only", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    problem = inputs_problem(args.shared / "data", args.out, args.screen_only, args.sharp_list)
    if problem:
        return cli.fail(problem)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.screen_only:
        scores = screen_bsds(args.shared / "data" / "photos" / "bsds500", args.out, args.blur_threshold)
        print(f"{sum(not s['accepted'] for s in scores.values())} of {len(scores)} BSDS500 photos excluded")
        return 0
    try:
        splits = build(args.shared, args.out, args.workers, args.blur_threshold, args.seed, args.split,
                       args.sharp_list)
    except sio.InputError as exc:
        return cli.fail(str(exc))
    print(json.dumps({k: (v if not isinstance(v, list) or len(v) < 12 else f"{len(v)} items")
                      for k, v in splits.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
