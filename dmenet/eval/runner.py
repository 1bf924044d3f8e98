"""Run one map source over one benchmark and write its report (the work behind ``python -m dmenet.evaluate``)."""

from __future__ import annotations

import fnmatch
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from dmenet.eval import benchmarks as B
from dmenet.eval import dbd, report, rtf
from dmenet.eval.protocols import Protocol, ProtocolOptions, make_protocol, protocol_class
from syndof import io

log = logging.getLogger("dmenet.evaluate")
THUMB_HEIGHT = 160
PANEL_K = 3
READ_THREADS = 4
"""Threads reading image / GT / prediction files while the method runs (I/O overlap, not a user option)."""


def _thumb(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[:2]
    scale = report.fit_scale(h, w, THUMB_HEIGHT)  # a long strip: at most MAX_TILE_ASPECT × as wide as high
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    x = cv2.resize(np.asarray(x, dtype=np.float32), size, interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def protocol_options(args) -> ProtocolOptions:
    """The scoring choices of ``python -m dmenet.evaluate``'s arguments."""
    return ProtocolOptions(resolution=getattr(args, "resolution", None),
                           adaptive_factor=getattr(args, "adaptive_factor", 1.5),
                           rtf_noise=getattr(args, "rtf_noise", rtf.NoiseLevel.FREE),
                           sigma_mapping=getattr(args, "sigma_mapping", rtf.SigmaMapping.PROJECT),
                           input_size=getattr(args, "input_size", None),
                           map_resize=getattr(args, "map_resize", dbd.MapResize.LINEAR))


def _iterate(samples, source, protocol: Protocol, input_size: int | None = None):
    """Yield (sample, image, gt, pred); file reading (and saved predictions) run in a thread pool.

    ``input_size``: the image is resized to N×N (area when shrinking, bilinear else) before the method sees it.
    """
    def load(sample: B.Sample):
        """(sample, image (H, W, 3) RGB [0, 1] or None, GT in the protocol's units, saved prediction or None) of one
        sample; the image resized to ``input_size``² when given."""
        gt = protocol.load_gt(sample)
        image = io.read_image(sample.image) if source.needs_images else None
        if image is not None:
            if gt is not None:
                B.check_same_size(sample, image, gt)
            if input_size:
                shrink = input_size <= min(image.shape[:2])
                image = cv2.resize(image, (input_size, input_size),
                                   interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        pred = None if source.needs_images else source.fn(sample, None)
        return sample, image, gt, pred

    with ThreadPoolExecutor(READ_THREADS) as pool:
        for sample, image, gt, pred in pool.map(load, samples):
            if pred is None:
                pred = source.fn(sample, image)
            yield sample, image, gt, np.asarray(pred, dtype=np.float32)


def read_stem_list(path: str) -> set[str]:
    """Lower-case stems of a list file (one per line; ``a--b.jpg`` rows give ``b``; blank lines and ``#`` comments
    are skipped, as in the lists ``experiments/distill/screen_sharp.py`` writes)."""
    lines = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return {Path(ln.split("--")[-1]).stem.lower() for ln in lines}


def stems_problem(path: str) -> str | None:
    """``--stems FILE`` as one line naming it when it cannot be read or lists no stem, else None (checked before any
    work)."""
    try:
        stems = read_stem_list(path)
    except (OSError, UnicodeDecodeError) as exc:
        return f"--stems {path}: cannot be read ({getattr(exc, 'strerror', None) or exc})"
    if not stems:
        return f"--stems {path}: lists no stems (only blank lines or # comments)"
    return None


def select_samples(samples: list[B.Sample], args, root: Path) -> list[B.Sample]:
    """The samples :func:`dmenet.cli.add_sample_selection`'s flags ask for, in stem order: ``--stems``, then
    ``--split`` / ``--subset``, then ``--include``, then the first ``--limit``. A listed stem that is missing is an
    InputError naming the list file."""
    if getattr(args, "stems", None):
        wanted = read_stem_list(args.stems)
        samples = [s for s in samples if s.stem.lower() in wanted]
        missing = wanted - {s.stem.lower() for s in samples}
        if missing:
            raise io.InputError(args.stems, f"{len(missing)} listed stem(s) not found, e.g. {sorted(missing)[:5]}")
    if getattr(args, "split", None):
        from dmenet.data.splits import load_split

        wanted = set(load_split(args.split, args.subset))
        samples = [s for s in samples if s.stem.lower() in wanted]
        missing = wanted - {s.stem.lower() for s in samples}
        if missing:
            raise io.InputError(args.split, f"{len(missing)} stem(s) of subset {args.subset!r} not found in {root}, "
                                f"e.g. {sorted(missing)[:5]}")
    if getattr(args, "include", None):
        samples = [s for s in samples if fnmatch.fnmatch(s.stem.lower(), args.include.lower())]
        if not samples:
            raise io.InputError(root, f"no sample matches --include {args.include!r}")
    if getattr(args, "limit", None):
        samples = samples[: args.limit]
    return samples


def selection_text(args, n: int, root: Path, found: int | None = None) -> str:
    """One line saying which samples :func:`select_samples` kept (written to reports): ``n`` kept of ``found`` listed
    in ``root`` (None: the same number). Until 6 Dec 2026 it said "2 samples found" of 2 kept out of 100."""
    counted = f"{n} samples found in {root}" if found in (None, n) else f"{found} samples found in {root}, {n} kept"
    return (counted
            + (f", stems listed in {args.stems}" if getattr(args, "stems", None) else "")
            + (f", subset {args.subset!r} of {args.split}" if getattr(args, "split", None) else "")
            + (f", stems matching {args.include!r}" if getattr(args, "include", None) else "")
            + (f", first {args.limit}" if getattr(args, "limit", None) else ""))


def constant_maps_warning(name: str, spec: B.BenchmarkSpec, constant: list[float], n: int) -> list[str]:
    """One line when every one of the ``n`` maps of method ``name`` is a single value (``constant``: those maps'
    values), on a benchmark with GT: its scores are then those of a map that says the same of every pixel (a tiny
    or diverged model whose output saturated: two such models score identically); else empty. Photos sharp
    everywhere (``sharp``) are left out: a constant 0 there is the right answer."""
    if spec.task is B.Task.SHARP or not n or len(constant) < n:
        return []
    values = f"{constant[0]:.4g}" if len(set(constant)) == 1 else f"{min(constant):.4g} to {max(constant):.4g}"
    return [f"{name}: every one of the {n} maps is constant ({values} everywhere): the scores are those of a map that "
            "says the same of every pixel (an untrained or saturated model?)"]


def evaluate_source(spec: B.BenchmarkSpec, args, source, out_dir: Path, command: list[str]) -> dict:
    """Score ``source`` on ``spec`` at ``args.data`` and write the report to ``out_dir``; returns the result dict."""
    root = Path(args.data)
    input_size = getattr(args, "input_size", None)
    if input_size is not None and protocol_class(spec).scores_sigma:
        raise ValueError(f"--input-size is for blur-detection benchmarks; {spec.name} scores sigma maps against GT at "
                         "the image's own size (a resized map would need sigma rescaled): leave --input-size out")
    options = protocol_options(args)
    if options.map_resize is dbd.MapResize.NEAREST and protocol_class(spec).scores_sigma:
        raise ValueError(f"--map-resize is for blur-detection benchmarks; {spec.name} scores sigma maps at the "
                         "GT's own size: leave --map-resize out")
    if input_size is not None and input_size < 16:
        raise ValueError(f"--input-size must be >= 16, got {input_size}")
    protocol = make_protocol(spec, root, options, source.kind, getattr(source, "inverted", False))
    listed = protocol.list_samples(need_images=source.needs_images,
                                   allow_missing_images=getattr(args, "allow_missing_images", False))
    samples = select_samples(listed, args, root)
    # a name no file can be read at (kept by the listings by stem) is refused before any method runs: a score over
    # fewer images is another benchmark's; with saved predictions too, where the panel may or may not read the image
    io.refuse_unreadable_names(path for sample in samples for path in (sample.image, sample.gt))
    thumbs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    t0 = time.perf_counter()
    constant: list[float] = []  # the value of each map that is one value everywhere
    for sample, _image, gt, pred in _iterate(samples, source, protocol, input_size):
        if pred.ndim != 2 or not np.all(np.isfinite(pred)):
            origin = source.origin(sample) if getattr(source, "origin", None) else None
            what = f"shape {pred.shape}" if pred.ndim != 2 else \
                f"{int(np.count_nonzero(~np.isfinite(pred)))} NaN / inf value(s)"
            raise io.InputError(sample.path, f"{source.name}{f' ({origin})' if origin else ''}: prediction must be a "
                                f"finite 2-D map, got {what}")
        try:
            shown_gt, shown_pred = protocol.score(sample, pred, gt)
        except io.InputError as exc:  # the sample's file, and the map's own file when it was read from one
            origin = source.origin(sample) if getattr(source, "origin", None) else None
            raise io.InputError(exc.path, f"{source.name}{f' ({origin})' if origin else ''}: {exc.problem}") from exc
        thumbs[sample.stem] = (_thumb(shown_gt), _thumb(shown_pred))
        if pred.size and float(pred.max()) == float(pred.min()):
            constant.append(float(pred.flat[0]))
    elapsed = time.perf_counter() - t0
    summary = protocol.summary()
    warnings = protocol.warnings() + constant_maps_warning(source.name, spec, constant, len(samples))
    for line in warnings:
        log.warning("%s", line)
    result = {
        "benchmark": spec.name,
        "task": spec.task,
        "dataset": spec.split,
        "data": str(root),
        "split": selection_text(args, len(samples), root, found=len(listed)),
        "method": source.name,
        "source": source.description,
        "protocol": {**protocol.tags(), "input": f"image resized to {input_size}x{input_size} before the method"
                     if input_size else "image at its own size"},
        "metrics": summary,
        "elapsed_s": round(elapsed, 2),
        "warnings": warnings,
        "command": " ".join(command),
    }
    result["headline"] = ", ".join(f"{k} {summary[k]:.4f}" for k in protocol.headline_keys if k in summary)
    _write(out_dir, spec, args, source, protocol, thumbs, samples, result)
    result["out"] = str(out_dir)
    return result


def _write(out_dir: Path, spec, args, source, protocol: Protocol, thumbs, samples, result: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    io.write_json_atomic(out_dir / "metrics.json", {k: v for k, v in result.items() if k != "headline"})
    report.write_csv(out_dir / "per_image.csv", protocol.rows)
    images = protocol.write_curves(out_dir, source.name)
    panel = _panel(protocol, thumbs, samples, images_read=source.needs_images)
    io.write_image(out_dir / "panel.png", panel)
    images["panel"] = panel
    report.log_wandb(args.wandb, out_dir, f"{spec.name}-{source.name}",
                     {k: result[k] for k in ("benchmark", "dataset", "split", "method", "source", "protocol")},
                     result["metrics"], protocol.rows, images)


def _panel(protocol: Protocol, thumbs, samples, images_read: bool = False) -> np.ndarray:
    """The report's panel of the worst and best samples (uint8 RGB; no sample twice). ``images_read``: the run has
    read every sample's image already (and warned of an animated one): read again here without a second warning
    (one FirstFrameWarning per file per run)."""
    ranked = [r for r in protocol.rows if np.isfinite(r[protocol.rank_key])]  # NaN: undefined (all-sharp GT)
    worst, best = report.worst_best(ranked, protocol.rank_key, PANEL_K, protocol.higher_better)
    by_stem = {s.stem: s for s in samples}
    rows = []
    for tag, chosen in (("worst", worst), ("best", best)):
        for row in chosen:
            sample = by_stem[row["stem"]]
            gt_t, pred_t = thumbs[row["stem"]]
            image = io.read_image(sample.image, note_frames=not images_read) if sample.image is not None else None
            label = f"{tag} {row['stem']} {protocol.rank_key}={row[protocol.rank_key]:.3f}"
            rows.append({"label": label, "image": image, "gt": gt_t / 255.0, "pred": pred_t / 255.0})
    return report.make_panel(rows)


def write_comparison(out: Path, spec: B.BenchmarkSpec, results: list[dict]) -> None:
    """Side-by-side table (CSV + markdown) and the protocol's comparison files (DBD: one PR plot) for several
    methods on one benchmark."""
    rows = [{"method": r["method"], **r["metrics"]} for r in results]
    report.write_csv(out / "summary.csv", rows)
    cols = ["method"] + [k for k in rows[0] if k != "method"]
    io.write_text_atomic(out / "summary.md", report.markdown_table(rows, cols))
    protocol_class(spec).compare(out, spec, results)
