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
from dmenet.eval import dbd, report, rtf, syndof_test
from syndof import io, units

log = logging.getLogger("dmenet.evaluate")
THUMB_HEIGHT = 160
PANEL_K = 3


def _thumb(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[:2]
    size = (max(1, round(w * THUMB_HEIGHT / h)), THUMB_HEIGHT)
    x = cv2.resize(np.asarray(x, dtype=np.float32), size, interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


class _Scorer:
    """Per-task glue: converts maps to the protocol's units and feeds the right accumulator."""

    def __init__(self, spec: B.BenchmarkSpec, args, source, root: Path):
        self.spec, self.source, self.root = spec, source, root
        self.thumbs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if spec.task == "dbd":
            factors = (args.adaptive_factor,) + tuple(c for c in (1.5, 2.0) if c != args.adaptive_factor)
            self.acc = dbd.DBDAccumulator(resolution=args.resolution or spec.default_resolution,
                                          adaptive_factors=factors)
            self.rank_key, self.higher_better = "fmax", True
        else:
            self.acc = rtf.RegressionAccumulator()
            self.rank_key, self.higher_better = "mae", False
        if spec.task == "rtf":
            self.noise = getattr(args, "rtf_noise", "0")
            table = rtf.find_table(root, self.noise)
            self.table = rtf.load_conversion_table(table) if table else None
            self.mapping = "sigma" if source.kind == "sigma" else args.sigma_mapping
        if spec.task == "syndof":
            self.max_coc = syndof_test.read_max_coc(root)
            self.pred_is_sigma = source.kind == "sigma" or args.sigma_mapping == "sigma"

    def load_gt(self, sample: B.Sample) -> np.ndarray:
        if self.spec.task == "rtf":
            return rtf.load_rtf_gt(sample.gt, self.table)
        return B.load_gt(self.spec, sample, self.root)

    def add(self, sample: B.Sample, pred: np.ndarray, gt: np.ndarray) -> None:
        task = self.spec.task
        if pred.ndim != 2 or not np.all(np.isfinite(pred)):
            raise io.InputError(sample.gt, f"{self.source.name}: prediction must be a finite 2-D map, "
                                f"got shape {pred.shape}")
        if task == "dbd":
            if pred.min() < -1e-6 or pred.max() > 1 + 1e-6:
                raise io.InputError(sample.gt, f"{self.source.name}: blur map outside [0, 1]")
            self.acc.add(sample.stem, np.clip(pred, 0, 1), gt)
            shown_gt, shown_pred = gt, pred
        elif task == "rtf":
            sigma = rtf.prediction_to_sigma(pred, self.mapping)
            mse, mae = rtf.rtf_errors(sigma, gt)
            self.acc.add(sample.stem, mse, mae)
            shown_gt, shown_pred = rtf.normalise_sigma(gt), rtf.normalise_sigma(sigma)
        else:
            label = units.sigma_to_label(pred, self.max_coc) if self.pred_is_sigma else pred
            mse, mae = syndof_test.label_errors(label, gt)
            self.acc.add(sample.stem, mse, mae)
            shown_gt, shown_pred = gt, label
        self.thumbs[sample.stem] = (_thumb(shown_gt), _thumb(shown_pred))

    def protocol(self) -> dict:
        if self.spec.task == "dbd":
            pol = "GT white = blurred, used as is" if self.spec.white_is_blurred else \
                "GT white = in focus, inverted on load (1 = blurred)"
            pred_pol = "sharpness map inverted (1 - x) before scoring" if getattr(self.source, "inverted", False) \
                else "blur map as produced (1 = blurred)"
            return {**self.acc.protocol(), "gt_polarity": pol, "prediction_polarity": pred_pol,
                    "gt_binarisation": "gray >= 0.5",
                    "threshold_rule": "sweep i/255 (fmax), 0.5 (f_at_0.5, iou), adaptive c*mean, PR 0..255"}
        if self.spec.task == "rtf":
            return rtf.rtf_protocol(self.mapping, self.noise)
        gt_folder = B.find_dir(self.root, self.spec.gt_dirs).name
        return syndof_test.syndof_protocol(gt_folder, self.max_coc)


def _iterate(samples, source, scorer: _Scorer, workers: int, input_size: int | None = None):
    """Yield (sample, image, gt, pred); file reading (and saved predictions) run in a thread pool.

    ``input_size``: the image is resized to N×N (area when shrinking, bilinear else) before the method sees it.
    """
    def load(sample: B.Sample):
        gt = scorer.load_gt(sample)
        image = io.read_image(sample.image) if source.needs_images else None
        if image is not None:
            B.check_same_size(sample, image, gt)
            if input_size:
                shrink = input_size <= min(image.shape[:2])
                image = cv2.resize(image, (input_size, input_size),
                                   interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        pred = None if source.needs_images else source.fn(sample, None)
        return sample, image, gt, pred

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for sample, image, gt, pred in pool.map(load, samples):
            if pred is None:
                pred = source.fn(sample, image)
            yield sample, image, gt, np.asarray(pred, dtype=np.float32)


def read_stem_list(path: str) -> set[str]:
    """Lower-case stems of a list file (one per line; ``a--b.jpg`` rows give ``b``)."""
    lines = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    return {Path(ln.split("--")[-1]).stem.lower() for ln in lines}


def evaluate_source(spec: B.BenchmarkSpec, args, source, out_dir: Path, command: list[str]) -> dict:
    """Score ``source`` on ``spec`` at ``args.data`` and write the report to ``out_dir``; returns the result dict."""
    root = Path(args.data)
    samples = B.list_samples(spec, root, need_images=source.needs_images,
                             allow_missing_images=getattr(args, "allow_missing_images", False),
                             rtf_noise=getattr(args, "rtf_noise", "0"))
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
    if args.limit:
        samples = samples[: args.limit]
    scorer = _Scorer(spec, args, source, root)
    t0 = time.perf_counter()
    input_size = getattr(args, "input_size", None)
    if input_size is not None and input_size < 16:
        raise ValueError(f"--input-size must be >= 16, got {input_size}")
    for sample, _image, gt, pred in _iterate(samples, source, scorer, args.workers, input_size):
        scorer.add(sample, pred, gt)
    elapsed = time.perf_counter() - t0
    summary = scorer.acc.summary()
    result = {
        "benchmark": spec.name,
        "task": spec.task,
        "dataset": spec.split,
        "data": str(root),
        "split": f"{len(samples)} samples found in {root}"
        + (f", stems listed in {args.stems}" if getattr(args, "stems", None) else "")
        + (f", subset {args.subset!r} of {args.split}" if getattr(args, "split", None) else "")
        + (f", stems matching {args.include!r}" if getattr(args, "include", None) else "")
        + (f", first {args.limit}" if args.limit else ""),
        "method": source.name,
        "source": source.description,
        "protocol": {**scorer.protocol(), "input": f"image resized to {input_size}x{input_size} before the method"
                     if input_size else "image at its own size"},
        "metrics": summary,
        "elapsed_s": round(elapsed, 2),
        "command": " ".join(command),
    }
    headline_keys = ("mae", "fmax", "f_at_0.5", "iou_pooled", "pr_auc") if spec.task == "dbd" else ("mse", "mae")
    result["headline"] = ", ".join(f"{k} {summary[k]:.4f}" for k in headline_keys if k in summary)
    _write(out_dir, spec, args, source, scorer, samples, result)
    result["out"] = str(out_dir)
    return result


def _write(out_dir: Path, spec, args, source, scorer: _Scorer, samples, result: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    io.write_json_atomic(out_dir / "metrics.json", {k: v for k, v in result.items() if k != "headline"})
    report.write_csv(out_dir / "per_image.csv", scorer.acc.rows)
    images: dict[str, np.ndarray] = {}
    if spec.task == "dbd":
        thr, p, r = scorer.acc.pr_curve()
        report.write_pr_csv(out_dir / "pr_curve.csv", thr, p, r)
        ft, fp, fr, ff = scorer.acc.f_curve()
        report.write_csv(out_dir / "f_curve.csv", [{"threshold": float(t), "precision": float(a), "recall": float(b),
                                                     "f": float(c)} for t, a, b, c in zip(ft, fp, fr, ff)])
        report.plot_pr_curves(out_dir / "pr_curve.png", {source.name: (p, r)},
                              f"{spec.name} ({scorer.acc.resolution}), HiFST PR protocol")
        images["pr_curve"] = cv2.cvtColor(cv2.imread(str(out_dir / "pr_curve.png")), cv2.COLOR_BGR2RGB)
    panel = _panel(scorer, samples)
    io.write_image(out_dir / "panel.png", panel)
    images["panel"] = panel
    report.log_wandb(args.wandb, out_dir, f"{spec.name}-{source.name}",
                     {k: result[k] for k in ("benchmark", "dataset", "split", "method", "source", "protocol")},
                     result["metrics"], scorer.acc.rows, images)


def _panel(scorer: _Scorer, samples) -> np.ndarray:
    worst, best = report.worst_best(scorer.acc.rows, scorer.rank_key, PANEL_K, scorer.higher_better)
    by_stem = {s.stem: s for s in samples}
    rows = []
    for tag, chosen in (("worst", worst), ("best", best)):
        for row in chosen:
            sample = by_stem[row["stem"]]
            gt_t, pred_t = scorer.thumbs[row["stem"]]
            image = io.read_image(sample.image) if sample.image is not None else None
            label = f"{tag} {row['stem']} {scorer.rank_key}={row[scorer.rank_key]:.3f}"
            rows.append({"label": label, "image": image, "gt": gt_t / 255.0, "pred": pred_t / 255.0})
    return report.make_panel(rows)


def write_comparison(out: Path, spec: B.BenchmarkSpec, results: list[dict]) -> None:
    """Side-by-side table (CSV + markdown) and one PR plot for several methods on one benchmark."""
    rows = [{"method": r["method"], **r["metrics"]} for r in results]
    report.write_csv(out / "summary.csv", rows)
    cols = ["method"] + [k for k in rows[0] if k != "method"]
    io.write_text_atomic(out / "summary.md", report.markdown_table(rows, cols))
    if spec.task == "dbd":
        import csv

        curves = {}
        for r in results:
            with open(Path(r["out"]) / "pr_curve.csv") as fh:
                pr = list(csv.DictReader(fh))
            curves[r["method"]] = (np.array([float(x["precision"]) for x in pr]),
                                   np.array([float(x["recall"]) for x in pr]))
        report.plot_pr_curves(out / "pr_curve.png", curves, f"{spec.name}, HiFST PR protocol")
