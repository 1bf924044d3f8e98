"""Run logging: scalars to ``RUN/metrics.jsonl`` and Weights & Biases, image panels, a tqdm progress bar.

W&B is always initialised with an explicit ``mode`` (:class:`WandbMode`: "offline" by default, "online", or
"disabled" — the tests use "disabled"), because ``wandb.init`` without one can block on an unreachable host. Image
panels are converted to uint8 first (``wandb.Image`` casts floats in [0, 1] to uint8 without rescaling, giving black
images).
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dmenet.config import WandbMode
from syndof.choices import parse_choice
from syndof.io import write_text_atomic

log = logging.getLogger(__name__)


def to_uint8_panel(image: torch.Tensor, pred: torch.Tensor, gt: torch.Tensor | None = None) -> np.ndarray:
    """Side-by-side panel [input | prediction | GT] of the first sample.

    Args:
        image: (B, 3, H, W) RGB [0, 1]; pred, gt: (B, 1, H, W) in [0, 1] (σ/σ_max or a mask), shown as gray.

    Returns:
        (H, 2W or 3W, 3) uint8.
    """
    tiles = [image[0].detach().float().cpu().clamp(0, 1)]
    tiles.append(pred[0].detach().float().cpu().clamp(0, 1).expand(3, -1, -1))
    if gt is not None:
        tiles.append(gt[0].detach().float().cpu().clamp(0, 1).expand(3, -1, -1))
    panel = torch.cat(tiles, dim=2).permute(1, 2, 0).numpy()
    return (panel * 255.0).round().clip(0, 255).astype(np.uint8)


def truncate_metrics(path: str | Path, step: int) -> None:
    """Drop the rows of ``metrics.jsonl`` logged after ``step`` (the checkpoint a resumed run restarts from), so the
    steps a killed run logged past its last checkpoint are not logged twice. Rewritten atomically; no-op if absent."""
    from syndof.io import write_text_atomic

    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = []
    for line in lines:
        try:
            if int(json.loads(line)["step"]) > step:
                continue
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by the kill
        kept.append(line if line.endswith("\n") else line + "\n")
    if kept != lines:
        write_text_atomic(path, "".join(kept))


class WandbStartError(ValueError):
    """W&B could not start in the mode asked for (e.g. ``online`` without a login); the message says what to do."""


class RunLogger:
    """JSONL + W&B sink for one run (create it on rank 0 only).

    W&B starts first: when it cannot (``online`` without ``wandb login`` or a key), :class:`WandbStartError` is
    raised before ``metrics.jsonl`` or ``wandb_id.txt`` is touched, so a trainer that makes its logger before it
    writes into the run folder leaves that folder as it was.

    Args:
        run_dir: the run folder (``metrics.jsonl`` is appended there; W&B files go under ``run_dir/wandb``).
        mode: :class:`WandbMode` or its value ("offline" | "online" | "disabled"; ValueError otherwise).
        project: W&B project name.
        config: resolved config dict (recorded by W&B).
        resume: continue the W&B run id stored in ``run_dir/wandb_id.txt``.
    """

    def __init__(self, run_dir: str | Path, mode: WandbMode | str = WandbMode.OFFLINE, project: str = "dmenet",
                 config: dict[str, Any] | None = None, resume: bool = False):
        mode = parse_choice(WandbMode, mode, "wandb mode")
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._wandb = None
        if mode is not WandbMode.DISABLED:
            self._wandb = self._init_wandb(mode, project, config, resume)
        self._jsonl = open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8")

    def _init_wandb(self, mode: WandbMode, project: str, config: dict[str, Any] | None, resume: bool):
        import wandb

        id_path = self.run_dir / "wandb_id.txt"
        run_id = id_path.read_text().strip() if resume and id_path.is_file() else uuid.uuid4().hex[:12]
        try:
            run = wandb.init(mode=mode.value, project=project, dir=str(self.run_dir), config=config, id=run_id,
                             name=self.run_dir.name, resume="allow", settings=wandb.Settings(silent=True))
        except (wandb.errors.Error, OSError) as exc:  # e.g. UsageError: no API key configured (online mode)
            problem = " ".join(str(exc).split()) or type(exc).__name__
            raise WandbStartError(f"W&B could not start in mode {mode.value} ({problem}): an online run needs "
                                  "`wandb login` (or WANDB_API_KEY), train.wandb_project must be a valid W&B project "
                                  "name; or use train.wandb offline / disabled (no file of a new run was written; a "
                                  "resume has dropped only the rows logged past its last checkpoint)") from None
        if not (id_path.is_file() and id_path.read_text().strip() == run_id):
            write_text_atomic(id_path, run_id + "\n")
        return run

    def log_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """Append ``scalars`` at ``step`` to the JSONL log (and W&B when on)."""
        record = {"step": step, **{k: float(v) for k, v in scalars.items()}}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def log_panel(self, step: int, name: str, panel: np.ndarray) -> None:
        """Log a uint8 (H, W, 3) panel to W&B (no-op when W&B is disabled)."""
        if self._wandb is not None:
            import wandb

            self._wandb.log({name: wandb.Image(panel)}, step=step)

    def close(self) -> None:
        """Close the JSONL log and finish the W&B run."""
        self._jsonl.close()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
