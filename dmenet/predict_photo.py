"""One photo of a ``dmenet.predict`` batch, in the batch's process or in a worker: the memory guard (from the
file's header first), the method's maps (:func:`method_maps`) and the photo's set written (:func:`predict_one`)."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from dmenet import memory
from dmenet.predict_inputs import Job
from dmenet.predict_outputs import Maps, existing_outputs, write_outputs
from syndof import cli
from syndof import io as sio


def method_maps(estimator, image: np.ndarray) -> Maps:
    """:class:`Maps` of one (H, W, 3) float32 RGB [0, 1] image: σ when the method gives it, and the blur map."""
    res = estimator.estimate(image, sigma=estimator.gives_sigma, probability=True)
    return Maps(blur=res.blur_probability, sigma=res.sigma, sigma_max=res.sigma_max)


def predict_one(job: Job, number: int, count: int, estimator, max_side: int | None,
                args: argparse.Namespace, batch_alive=None) -> float | str | None:
    """Read, estimate and write one photo: its seconds, or the reason it was skipped (one line, without the file's
    name). With ``job.same_settings`` the batch has decided to write it (a set under its prefix is this photo's own,
    to be completed: :func:`~dmenet.predict_resume.resume_place`); otherwise a prefix with any output file is
    skipped. A batch, or a large image, gets its ``[number/count] FILE: W×H px`` line first. ``batch_alive`` (a
    worker's): called before the files are written; False (the batch process was killed) writes nothing, so no set
    lands after the batch's lock is gone."""
    start = time.perf_counter()
    earlier = existing_outputs(job.prefix)
    if earlier and not job.same_settings:
        return (f"{earlier[0]} exists: earlier results are never overwritten (remove them or choose another "
                f"--out)")
    try:
        def fits(height: int, width: int) -> None:  # the reason as one line naming no exception type
            """InputError naming the photo when a ``height``×``width`` px image would not fit the available memory
            (after ``max_side``)."""
            try:
                memory.check_memory(height, width, max_side, memory.available_memory(),
                                    estimator.extra_bytes_per_pixel(), estimator.input_bytes_per_pixel(),
                                    estimator.min_short_side, args.method.spec.reads_max_side)
            except ValueError as exc:
                raise sio.InputError(job.source, str(exc)) from None

        headers: list[tuple[int, int]] = []

        def header_fits(width: int, height: int) -> None:  # before decoding: refused without its pixels
            """Memory check from the file header's ``width``×``height`` px, before decoding (the size is kept for the
            later check)."""
            headers.append((width, height))
            fits(height, width)

        # one read: the set records the SHA-256 of exactly the bytes its maps were made from
        image, digest = sio.read_image_sha256(job.source, check_size=header_fits)
        h, w = image.shape[:2]
        if headers != [(w, h)]:  # a header PIL cannot read
            fits(h, w)
        if count > 1 or h * w > memory.LARGE_IMAGE_PIXELS:  # progress before the long part, not only after it
            faster = "--max-side" + (" or --flips 1" if args.flips not in (None, 1) else "")  # None: 1 already
            note = f" (large: tiled, this takes a while; {faster} is faster)" \
                if h * w > memory.LARGE_IMAGE_PIXELS and not max_side and args.method.spec.reads_max_side else ""
            print(cli.one_line(f"[{number}/{count}] {job.source}: {w}x{h} px{note}"), file=sys.stderr, flush=True)
        maps = method_maps(estimator, image)
        if batch_alive is not None and not batch_alive():
            return "not written: the batch process is gone (killed); a rerun does it"
        appeared = [p for p in existing_outputs(job.prefix) if p not in earlier]
        if appeared:  # made while the photo ran (another program, a copy): never replaced
            return f"not written: {appeared[0]} appeared while the photo ran; it is never overwritten"
        write_outputs(job.prefix, image, maps, args.fmt, source=job.source, digest=digest)
    except Exception as exc:
        if isinstance(exc, sio.InputError):
            reason = str(exc)
        elif isinstance(exc, OSError) and exc.filename is not None:  # an output's name kept, the photo's dropped
            reason = cli.error_line(exc)
        else:
            reason = f"{exc.__class__.__name__}: {exc}"
        return reason.removeprefix(f"{job.source}: ")
    return time.perf_counter() - start
