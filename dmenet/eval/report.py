"""Report files of an evaluation: JSON, CSV tables, PR-curve plot, worst/best panels, and the W&B mirror.

Images written here are uint8; float maps in [0, 1] are converted with ``round(x·255)`` first (``wandb.Image``
would otherwise cast them to an all-black image, docs/method.md §17).
"""

from __future__ import annotations

import csv
import io as _io
import json
import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from dmenet.config import WandbMode
from syndof import io
from syndof.choices import parse_choice

PANEL_HEIGHT = 200
MAX_TILE_ASPECT = 8
"""A panel tile (or thumbnail) is at most this many times as wide as high: a strip wider than that is shown whole,
scaled to that width and padded below (a 2×5000 photo's tiles at full height were 500 000 px wide each, past the PNG
encoder's limit: the whole evaluation failed at the end, "PNG encoding failed", nothing written)."""


def write_csv(path: str | os.PathLike, rows: Sequence[dict]) -> None:
    """Write dict rows (columns: union of keys, first row's order first) as CSV, atomically; floats to 6 digits."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    io.write_text_atomic(path, buf.getvalue())


def write_pr_csv(path: str | os.PathLike, thresholds, precision, recall) -> None:
    """``threshold,precision,recall`` rows (HiFST-protocol curve, threshold 0..255 on the min–max map)."""
    rows = [{"threshold": int(t), "precision": float(p), "recall": float(r)}
            for t, p, r in zip(thresholds, precision, recall)]
    write_csv(path, rows)


def plot_pr_curves(path: str | os.PathLike, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> None:
    """PR curves ``{label: (precision, recall)}``, each a (K,) array of fractions in [0, 1], in one PNG (axes 0–1;
    matplotlib's Agg renderer, through a bare
    :class:`~matplotlib.figure.Figure`: no pyplot, so the process's backend is left as it is)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4.5), dpi=100)
    ax = fig.subplots()
    for label, (p, r) in curves.items():
        ax.plot(r, p, linewidth=1.8, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.4)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    buf = _io.BytesIO()
    fig.savefig(buf, format="png")
    io.write_bytes_atomic(path, buf.getvalue())


def map_to_uint8(x: np.ndarray, vmax: float = 1.0) -> np.ndarray:
    """(H, W) float map in [0, vmax] → (H, W, 3) uint8 gray."""
    g = np.clip(np.rint(np.asarray(x, dtype=np.float64) / vmax * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def fit_scale(h: int, w: int, height: int) -> float:
    """The scale that shows an ``h``×``w`` image ``height`` px high, or :data:`MAX_TILE_ASPECT` × ``height`` px
    wide when it is wider than that."""
    return min(height / h, MAX_TILE_ASPECT * height / w)


def _fit(img: np.ndarray, height: int) -> np.ndarray:
    h, w = img.shape[:2]
    scale = fit_scale(h, w, height)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if size[1] < height:  # a strip wider than MAX_TILE_ASPECT: padded below
        out = np.pad(out, [(0, height - size[1])] + [(0, 0)] * (out.ndim - 1), constant_values=255)
    return out


def make_panel(rows: Sequence[dict], height: int = PANEL_HEIGHT) -> np.ndarray:
    """Stack rows of ``image | GT | prediction`` into one uint8 RGB picture.

    Args:
        rows: dicts with ``label`` (str), ``image`` ((H, W, 3) float RGB [0, 1] or None → gray tile),
            ``gt`` and ``pred`` ((H, W) float maps in [0, vmax]) and optional ``vmax`` (default 1).
    """
    lines = []
    for row in rows:
        vmax = float(row.get("vmax", 1.0))
        gt, pred = map_to_uint8(row["gt"], vmax), map_to_uint8(row["pred"], vmax)
        img = row.get("image")
        img = np.full_like(gt, 96) if img is None else np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
        tiles = [_fit(t, height) for t in (img, gt, pred)]
        sep = np.full((height, 4, 3), 255, np.uint8)
        line = np.concatenate([tiles[0], sep, tiles[1], sep, tiles[2]], axis=1)
        cv2.putText(line, row["label"], (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 0, 0), 1, cv2.LINE_AA)
        lines.append(line)
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 4), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    return np.concatenate(lines, axis=0)


def worst_best(rows: Sequence[dict], key: str, k: int = 3, higher_is_better: bool = False):
    """(worst k, best k) rows ranked by ``key``; with fewer than 2k rows no row appears twice."""
    ranked = sorted(rows, key=lambda r: r[key], reverse=higher_is_better)  # best first
    n_best = min(k, len(ranked) // 2 if len(ranked) < 2 * k else k)
    best = ranked[:n_best]
    worst = ranked[n_best:][::-1][:k]
    return worst, best


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A GitHub-markdown table of ``rows`` (floats to 4 digits)."""
    def fmt(v):
        """A cell: floats with 4 decimals, anything else as ``str``."""
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def log_wandb(mode: WandbMode | str, out_dir: Path, name: str, config: dict, summary: dict,
              per_image: Sequence[dict], images: dict[str, np.ndarray], project: str = "dmenet-eval") -> None:
    """Mirror the report to Weights & Biases with an explicit mode (:class:`WandbMode` or its value; ``offline``
    default, ``disabled`` = no-op). W&B's own closing lines are silenced: ``out_dir`` may be a staged folder renamed
    afterwards, so the ``wandb sync`` path they print would not exist (:func:`wandb_sync_hint` names the final one).
    ``images``: ``{key: (H, W, 3) or (H, W) uint8 0–255}`` (the report's panel and curves; another dtype is a
    ValueError)."""
    mode = parse_choice(WandbMode, mode, "wandb mode")
    if mode is WandbMode.DISABLED:
        return
    import wandb

    run = wandb.init(project=project, name=name, mode=mode.value, dir=str(out_dir), config=config,
                     settings=wandb.Settings(silent=True))
    try:
        run.summary.update({k: v for k, v in summary.items() if isinstance(v, (int, float, str))})
        if per_image:
            cols = list(per_image[0])
            run.log({"per_image": wandb.Table(columns=cols, data=[[r.get(c) for c in cols] for r in per_image])})
        for key, img in images.items():
            if img.dtype != np.uint8:
                raise ValueError(f"W&B image {key} must be uint8, got {img.dtype}")
            run.log({key: wandb.Image(img)})
    finally:
        run.finish()


def wandb_mode_problem(mode: WandbMode | str) -> str | None:
    """One line when W&B cannot start in ``mode`` (checked before any work), else None: ``online`` needs credentials
    (``wandb login`` / WANDB_API_KEY). Without them ``wandb.init`` raised a UsageError (a traceback) after every
    method was scored, and the staged report was dropped (at a terminal it prompted instead)."""
    mode = parse_choice(WandbMode, mode, "wandb mode")
    if mode is not WandbMode.ONLINE:
        return None
    import wandb

    try:
        found = wandb.login(prompt=False, verify=False)  # no prompt, no network: are credentials configured?
    except Exception as exc:  # noqa: BLE001 - W&B raises several types for bad credentials
        return f"--wandb online: W&B credentials are unusable ({exc}); fix them, or use --wandb offline"
    if not found:
        return ("--wandb online: no W&B credentials (run `wandb login` or set WANDB_API_KEY), or use --wandb "
                "offline and `wandb sync` later")
    return None


def wandb_sync_hint(out: Path) -> str | None:
    """The command that uploads the offline W&B runs written under the finished folder ``out``, or None."""
    runs = sorted(str(p) for p in Path(out).glob("**/wandb/offline-run-*"))
    return f"W&B offline run(s): wandb sync {' '.join(runs)}" if runs else None


REPORT_KEYS = ("benchmark", "split", "method", "protocol")
"""Keys every evaluate ``metrics.json`` holds (:func:`dmenet.eval.runner.evaluate_source`): how a report is told
from other folders."""


def _is_evaluate_metrics(path: Path) -> bool:
    """Whether ``path`` is a ``metrics.json`` written by evaluate (a JSON object holding :data:`REPORT_KEYS`)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, unreadable or not JSON: not a report
        return False
    return isinstance(data, dict) and all(key in data for key in REPORT_KEYS)


def is_evaluate_report(folder: Path) -> bool:
    """Whether ``folder`` holds an evaluate report: its own ``metrics.json`` (one method), or ``summary.md`` beside
    sub-folders of which one holds a ``metrics.json`` (several methods, :func:`dmenet.eval.runner.write_comparison`)."""
    if _is_evaluate_metrics(folder / "metrics.json"):
        return True
    try:
        return (folder / "summary.md").is_file() and any(
            _is_evaluate_metrics(sub / "metrics.json") for sub in folder.iterdir() if sub.is_dir())
    except OSError:  # an unreadable folder is not known to be a report
        return False


def enclosing_report(out: str | os.PathLike) -> Path | None:
    """The nearest folder above ``out`` (not ``out`` itself) that holds an evaluate report, or None. A new report
    inside a finished one would mix with it: ``--out EARLIER/hifst`` beside ``EARLIER/{dmenet,lbp}`` reads as a
    method of that run, whose summary does not list it."""
    for parent in Path(out).absolute().parents:
        if parent.is_dir() and is_evaluate_report(parent):
            return parent
    return None
