"""Two parts of default ``predict`` before and after issue 19's changes, interleaved in one process.

    python benchmarks/bench_predict_parts.py [--repeats 15] [--threads 1] [--image PHOTO]
    python benchmarks/bench_predict_parts.py --delta ../shared/data/cuhk/image/*.jpg ../shared/data/rtf/image_01.png

(a) S on a 640×480 detection label map (the shipped model's, of ``--image`` area-resized to 640×480, 1 flip):
S itself (``direct_calibration_logit``) against its lookup table (``calibration_logit``; the one-off table build is
timed apart). (b) The three PNG files ``predict`` writes for that image (σ uint16, blur uint8, preview): the former
settings (zlib level 3 with libpng's adaptive filters, matplotlib's float RGBA colour mapping) against the current
ones (``syndof.io.PNG_FAST``, the uint8 colour table of ``syndof.viz.colorize``), encoding and the atomic writes
into a temporary folder included. (c) and (d), when the shipped recipe has the two-label detection head: its logit
(``head_logit``) against S's table, and ``Predictor.estimate`` with both maps through the head against the S path
(S with the transform it shipped with until rule 21h8). Variants alternate within every repeat; the script prints
min / median ms per variant, the ratio of the medians and the 1-minute load average before and after (on a shared
machine compare the ratios of one run, not runs).

``--delta FILES`` instead runs each image through the shipped model's recipe (8 flips, the detection path of
``Predictor.estimate``) and prints max |Δ logit| and max |Δ blur probability| between the table and S itself, and
how many pixels of the 8-bit blur map differ.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from matplotlib import colormaps

from interleave import machine_line, parser, time_interleaved
from syndof import cli

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "data" / "cuhk" / "image" / "out_of_focus0011.jpg"
S_TRANSFORM = (6.0, 2.5)
"""(scale, shift) of the detection transform on S's logit until rule 21h8 (tests/recipe_identity.py pins the same)."""


# ------------------------------------------------------------------------------------- the former write path
def _old_encode(array: np.ndarray) -> bytes:
    """``syndof.io.encode_png`` before issue 19: level 3, libpng's adaptive row filters."""
    arr = np.ascontiguousarray(array)
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    assert ok
    return buf.tobytes()


def _old_colorize(values: np.ndarray, vmax: float) -> np.ndarray:
    from syndof.io import to_uint8

    norm = np.clip(np.asarray(values, dtype=np.float64) / vmax, 0.0, 1.0)
    return to_uint8(colormaps["inferno"](norm)[..., :3])


def _old_preview(image: np.ndarray, values: np.ndarray, vmax: float) -> np.ndarray:
    from syndof import viz

    left, panel = viz.as_rgb_uint8(image), _old_colorize(values, vmax)  # 640×480: no resize
    return np.concatenate([left, np.full((left.shape[0], 8, 3), 255, np.uint8), panel], axis=1)


def old_write(prefix: Path, image: np.ndarray, maps) -> None:
    from syndof import io as sio
    from syndof import units

    files = {prefix.with_name(prefix.name + "_sigma.png"):
             _old_encode(np.repeat(units.sigma_to_syndof(maps.sigma)[..., None], 3, axis=2)),
             prefix.with_name(prefix.name + "_blur.png"): _old_encode(sio.to_uint8(maps.blur)),
             prefix.with_name(prefix.name + "_preview.png"): _old_encode(_old_preview(image, maps.sigma,
                                                                                      maps.sigma_max))}
    sio.write_set_atomic(files)


# --------------------------------------------------------------------------------------------------- timing
def interleave(variants: dict, repeats: int) -> dict[str, list[float]]:
    """Wall seconds of each ``variants[name]()``, alternating within every repeat (:func:`time_interleaved`)."""
    return time_interleaved({k: (lambda _, f=f: f()) for k, f in variants.items()}, lambda: None, repeats, 0)


def report(title: str, times: dict[str, list[float]], old: str, new: str) -> None:
    print(title)
    for name, t in times.items():
        print(f"  {name:34s} min {min(t) * 1e3:7.1f}  median {statistics.median(t) * 1e3:7.1f} ms")
    print(f"  ratio {old} / {new} (median): {statistics.median(times[old]) / statistics.median(times[new]):.2f}x"
          f"   (min: {min(times[old]) / min(times[new]):.2f}x)")


def bench(args) -> None:
    from dmenet import inference, logits, predict_outputs
    from dmenet.models.calibration_table import calibration_table
    from syndof import io as sio
    from syndof import units, viz

    predictor = inference.load_predictor(flips=1, report=lambda _: None)
    model = predictor.model
    image = cv2.resize(sio.read_image(args.image), (640, 480), interpolation=cv2.INTER_AREA)
    est = predictor.estimate(image)
    label = predictor.detection_labels(image)[0]
    maps = predict_outputs.Maps(blur=est.blur_probability, sigma=est.sigma, sigma_max=model.config.sigma_max)

    builds = []
    for _ in range(3):
        t0 = time.perf_counter()
        calibration_table(model.calibration)
        builds.append(time.perf_counter() - t0)
    logits.calibration_logit(model, label)  # builds the cached table once, outside the timing
    load0 = os.getloadavg()[0]
    print(f"640x480, {args.repeats} interleaved repeats; {machine_line()}")
    print(f"table build (once per model): min {min(builds) * 1e3:.1f} / median {statistics.median(builds) * 1e3:.1f}"
          " ms")
    s_times = interleave({"S direct": lambda: logits.direct_calibration_logit(model, label),
                          "S table": lambda: logits.calibration_logit(model, label)}, args.repeats)
    report("(a) S logit of the detection label map", s_times, "S direct", "S table")
    if predictor.recipe.detection.head is not None:  # the shipped two-label head (rule 21h8) against S
        from dmenet.models.detection_head import head_logit

        labels = predictor.detection_labels(image)
        s_path = inference.Predictor(model, predictor.recipe.with_head(None).with_transform(*S_TRANSFORM))
        c_times = interleave({"S table": lambda: logits.calibration_logit(model, label),
                              "head": lambda: head_logit(predictor.recipe.detection.head, *labels)}, args.repeats)
        report("(c) detection logit: S's table vs the two-label head", c_times, "S table", "head")
        d_times = interleave({"estimate S": lambda: s_path.estimate(image),
                              "estimate head": lambda: predictor.estimate(image)}, args.repeats)
        report("(d) estimate() with both maps, 1 flip: S path vs the head", d_times, "estimate S", "estimate head")

    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "photo"
        sigma16 = np.repeat(units.sigma_to_syndof(maps.sigma)[..., None], 3, axis=2)
        blur8 = sio.to_uint8(maps.blur)
        preview_old = _old_preview(image, maps.sigma, maps.sigma_max)
        preview_new = predict_outputs._preview(image, maps.sigma, maps.sigma_max)
        assert np.array_equal(preview_old, preview_new)
        w_times = interleave({
            "3 writes old": lambda: old_write(prefix, image, maps),
            "3 writes new": lambda: predict_outputs.write_outputs(prefix, image, maps, "png"),
            "σ encode old": lambda: _old_encode(sigma16),
            "σ encode new": lambda: sio.encode_sigma_map(maps.sigma, fast=True),
            "blur encode old": lambda: _old_encode(blur8),
            "blur encode new": lambda: sio.encode_png(blur8, fast=True),
            "preview colour map old": lambda: _old_colorize(maps.sigma, maps.sigma_max),
            "preview colour map new": lambda: viz.colorize(maps.sigma, vmax=maps.sigma_max),
            "preview encode old": lambda: _old_encode(preview_old),
            "preview encode new": lambda: sio.encode_png(preview_new, fast=True),
        }, args.repeats)
        report("(b) predict's three PNG files (build, encode, atomic write)", w_times, "3 writes old", "3 writes new")
        for part in ("σ encode", "blur encode", "preview colour map", "preview encode"):
            a, b = statistics.median(w_times[f"{part} old"]), statistics.median(w_times[f"{part} new"])
            print(f"  {part}: {a / b:.2f}x")
        new_files = {p.name: p.stat().st_size for p in Path(tmp).iterdir()}
        old_write(prefix, image, maps)
        old_files = {p.name: p.stat().st_size for p in Path(tmp).iterdir()}
        print("  file sizes old -> new: " + ", ".join(f"{k} {old_files[k] // 1000} -> {new_files[k] // 1000} kB"
                                                     for k in sorted(new_files)))
    print(f"load {load0:.2f} -> {os.getloadavg()[0]:.2f}")


def delta(files: list[str]) -> None:
    from dmenet import inference, logits
    from syndof import io as sio

    predictor = inference.load_predictor()  # the recipe: 8 flips, per-image statistics for detection
    # S (what the table holds) with the transform it shipped with until rule 21h8
    predictor = inference.Predictor(predictor.model, predictor.recipe.with_head(None).with_transform(*S_TRANSFORM))
    det = predictor.recipe.detection
    worst_z = worst_p = 0.0
    for path in files:
        label = predictor.detection_labels(sio.read_image(path))[0]
        p_table = predictor.probability_from_labels((label,))  # what Predictor.estimate returns
        z_table = logits.calibration_logit(predictor.model, label)
        z_direct = logits.direct_calibration_logit(predictor.model, label)
        p_direct = logits.blur_probability_from_logit(z_direct, det.scale, det.shift)
        dz, dp = float(np.abs(z_table - z_direct).max()), float(np.abs(p_table - p_direct).max())
        flips = int((sio.to_uint8(p_table) != sio.to_uint8(p_direct)).sum())
        worst_z, worst_p = max(worst_z, dz), max(worst_p, dp)
        print(f"{path}: max |Δ logit| {dz:.3g}, max |Δ p| {dp:.3g}, 8-bit blur map: {flips} of {label.size} px differ")
    print(f"max over {len(files)}: |Δ logit| {worst_z:.3g}, |Δ p| {worst_p:.3g}")


@cli.entry_point
def main(argv=None) -> int:
    ap = parser("bench_predict_parts", __doc__, "python benchmarks/bench_predict_parts.py --repeats 15")
    ap.add_argument("--repeats", type=cli.positive_int, default=15)
    cli.add_threads(ap, default=1)
    ap.add_argument("--image", type=Path, default=PHOTO)
    ap.add_argument("--delta", nargs="+", metavar="FILE", help="print table-vs-S differences on these images")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if args.delta:
        delta(args.delta)
    else:
        bench(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
