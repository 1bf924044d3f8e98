"""Endless, seeded, resumable mini-batch streams — one per domain (synthetic, labelled real, unlabelled real).

Each stream owns a ``torch.Generator``: it draws a permutation per pass over its dataset and one seed per sample
slot; the slot's augmentation uses a generator seeded with that seed. A batch is therefore a pure function of the
stream state, whether images are decoded in the training thread or in a thread pool, and the state (generator,
permutation, position) is saved in checkpoints so a resumed run sees the same batches.

A sample that cannot be read (``InputError``: corrupt, truncated, unsupported file) is reported once with
``logging.warning`` naming the file and replaced by the next sample in the permutation, with the same seed; the
stream keeps the line (:attr:`DomainStream.skipped`) in its state, so every checkpoint's ``train.json`` lists the
files its run skipped (a resumed run carries the list on).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Protocol

import torch

from syndof import io

log = logging.getLogger(__name__)


def derived_seed(seed: int, offset: int) -> int:
    """Seed of one random stream of a run: ``(seed · 1,000,003 + offset) mod 2**63`` (``offset`` tells the streams
    of one ``train.seed`` apart: a domain and rank, or a step)."""
    return (seed * 1_000_003 + offset) % (2**63)


class Dataset(Protocol):
    def __len__(self) -> int: ...

    def load(self, index: int) -> dict[str, Any]:
        """Sample ``index``: ``image`` (H, W, 3) float32 RGB [0, 1], ``path``, and the dataset's target if any
        (synthetic: ``sigma`` (H, W) float32 σ px; labelled: ``mask`` (H, W) float32 {0, 1}, 1 = blurred)."""

    def describe(self, index: int) -> str:
        """Sample ``index`` in words (its image path), for messages."""


Transform = Callable[[dict[str, Any], torch.Generator], dict[str, torch.Tensor]]


class DomainStream:
    """Mini-batches of ``batch_size`` transformed samples, reshuffled at every pass.

    Args:
        dataset: object with ``__len__``, ``load(i) -> sample dict`` (raising ``InputError`` when unreadable) and
            ``describe(i) -> str``.
        batch_size: samples per batch.
        seed: seed of the stream's generator.
        transform: ``(sample, generator) -> dict of tensors`` (augmentation + conversion).
        name: domain name used in messages.
        threads: decoding threads (0 = none).
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, transform: Transform, name: str,
                 threads: int = 0):
        if len(dataset) == 0:
            raise ValueError(f"{name}: empty dataset")
        self.dataset, self.batch_size, self.transform, self.name = dataset, batch_size, transform, name
        self.gen = torch.Generator().manual_seed(int(seed))
        self.epoch = 0
        self.pos = 0
        self.order = torch.randperm(len(dataset), generator=self.gen)
        self._bad: set[int] = set()
        self._skipped: set[str] = set()  # "PATH: reason" of every unreadable sample, from the run's start
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads) if threads > 0 else None

    def _next_slot(self) -> tuple[int, int]:
        if self.pos >= len(self.order):
            self.epoch += 1
            self.pos = 0
            self.order = torch.randperm(len(self.dataset), generator=self.gen)
        slot = self.pos
        self.pos += 1
        seed = int(torch.randint(0, 2**62, (1,), generator=self.gen).item())
        return slot, seed

    def _load(self, slot: int, seed: int) -> dict[str, torch.Tensor]:
        n = len(self.order)
        for attempt in range(n):
            index = int(self.order[(slot + attempt) % n])
            with self._lock:
                known_bad = index in self._bad
            if known_bad:
                continue
            try:
                sample = self.dataset.load(index)
            except io.InputError as exc:
                image = self.dataset.describe(index)
                reason = exc.reason_for(image)  # its mask or σ map: named, not the photo
                with self._lock:
                    self._bad.add(index)
                    self._skipped.add(f"{image}: {reason}")
                log.warning("%s: skipping unreadable training image %s (%s)", self.name, image, reason)
                continue
            return self.transform(sample, torch.Generator().manual_seed(seed))
        raise ValueError(f"{self.name}: none of the {n} samples could be read (e.g. {self.dataset.describe(0)}; "
                         "see the warnings above)")

    def next_batch(self) -> dict[str, torch.Tensor]:
        """Stacked batch: each key of the transformed samples → (batch_size, …) tensor. With the trainer's
        transform (:func:`dmenet.data.transforms.to_tensors`): ``image`` (N, 3, crop, crop) float32 RGB in [0, 1],
        and ``label`` (N, 1, crop, crop) σ/σ_max in [0, 1] (synthetic) or ``mask`` (N, 1, crop, crop) {0, 1},
        1 = blurred (labelled real), N = ``batch_size``."""
        slots = [self._next_slot() for _ in range(self.batch_size)]
        if self._pool is not None:
            samples = list(self._pool.map(lambda s: self._load(*s), slots))
        else:
            samples = [self._load(*s) for s in slots]
        return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}

    @property
    def skipped(self) -> list[str]:
        """``PATH: reason`` of every sample the run has skipped as unreadable so far (sorted; those of the run
        before a resume included)."""
        with self._lock:
            return sorted(self._skipped)

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON values) that restore the stream exactly; the values also list the skipped samples.
        Tensors: ``gen`` the generator's state (uint8, 1-D), ``order`` (len(dataset),) int64 permutation; values:
        ``epoch``, ``pos`` (index into ``order``), ``size``, ``skipped`` (``PATH: reason`` lines)."""
        return ({"gen": self.gen.get_state(), "order": self.order.clone()},
                {"epoch": self.epoch, "pos": self.pos, "size": len(self.dataset), "skipped": self.skipped})

    def load_state_dict(self, tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
        """Restore the stream from :meth:`state_dict`'s (tensors, values): ``gen`` 1-D uint8, ``order``
        (len(dataset),) int64; ValueError when the dataset's size changed. A checkpoint from before the values
        listed skipped samples restores none."""
        if int(scalars["size"]) != len(self.dataset):
            raise ValueError(f"{self.name}: the checkpoint's data stream had {scalars['size']} samples, the folder "
                             f"now has {len(self.dataset)}; exact resume needs the same data")
        self.gen.set_state(tensors["gen"].to(torch.uint8).contiguous())
        self.order = tensors["order"].to(torch.int64).clone()
        self.epoch, self.pos = int(scalars["epoch"]), int(scalars["pos"])
        with self._lock:
            self._skipped = {str(line) for line in scalars.get("skipped", [])}

    def close(self) -> None:
        """Shut down the loader thread pool, if any."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
