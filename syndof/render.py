"""Replay renderer: re-render an image from a per-pixel σ map and its depth map, as the SYNDOF generator does.

    python -m syndof.render --image IMG --depth DEPTH [--depth-scale K] --sigma-map MAP --out OUT.png \
        [--max-coc 29] [--kernel gaussian] [--device cpu|cuda] [--reference REF.png] \
        [--merge-tolerance PX] [--sigma-out RENDERED_SIGMA.png]

The σ map is a SYNDOF 16-bit PNG (``round(10·σ)``, read by :func:`syndof.io.read_sigma_map`) or a float ``.npy``
in px. The depth (``.dpt``/``.png``/``.npy``/``.pfm``, scaled to mm, Sintel ×1000 by default) orders the layers far →
near; :func:`syndof.camera.layers_from_sigma` recovers the original's exact CoC layers when the map comes from
the thin-lens generator (focal-length hint parsed from a ``…_f_<mm>_…`` file name), else one layer per σ run.
With ``--reference`` the PSNR (8-bit, peak 255) of the render against that image is printed. The summary line lists
every camera (f, N, focus) that gives the rendered layers (``cameras``): the σ map fixes the focus and the CoCs, not f
and N (docs/method.md §8), so it does not say which of them made it.

``--merge-tolerance`` (px of σ, default 0 = exact) renders adjacent layers whose σ lie within that range as one
layer (:meth:`syndof.camera.LayeredDepth.merged`): faster, approximate. ``--sigma-out`` writes the σ map the image
was actually rendered with (SYNDOF 16-bit PNG, ``round(10·σ)``), which differs from the input map once layers are
merged.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import torch

from syndof import cli, io, units
from syndof.blur import render_layers
from syndof.camera import FOCAL_LENGTHS_MM, CameraParams, LayeredDepth, exact_replays, layers_from_sigma
from syndof.choices import parse_choice
from syndof.depth_io import read_depth
from syndof.images import as_rgb_float
from syndof.psf import Kernel
from syndof.render_checks import MAX_MAX_COC, check_max_coc, coc_problem


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (0–255, peak 255) of the same shape, any (e.g. (H, W, 3)); inf when
    identical."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def focal_hint(name: str | Path) -> float | None:
    """Focal length in mm from a SYNDOF file name (``…_f_<mm>_fp_…``), or None."""
    m = re.search(r"_f_(\d+(?:\.\d+)?)_fp_", Path(name).name)
    return float(m.group(1)) if m else None


def render_image(image: np.ndarray, layered: LayeredDepth, max_coc: int = units.DEFAULT_MAX_COC,
                 kernel: Kernel | str = Kernel.GAUSSIAN, device: str = "cpu",
                 dtype: torch.dtype = torch.float32) -> np.ndarray:
    """Render ``image`` with the given layers (as they are: merge them first with :meth:`LayeredDepth.merged` for a
    faster approximate render) and :class:`~syndof.psf.Kernel` ``kernel`` (or its value).

    ``image``: (H, W, 3) RGB, float in [0, 1] or uint8 / uint16 (scaled to [0, 1]); gray and RGBA are accepted too
    (:func:`syndof.images.as_rgb_float`). ``layered``: its CoCs in px of ``image``; ``max_coc``: the largest CoC in
    px (the kernel grid, :func:`syndof.blur.render_layers`). Returns (H, W, 3) uint8 (MATLAB ``im2uint8`` rounding).

    Raises:
        ValueError: naming the argument: an image :func:`~syndof.images.as_rgb_float` refuses (float values in
            0…255, NaN / inf, other shapes or dtypes), an unknown ``device``, or what
            :func:`syndof.blur.render_layers` refuses (layers of another size, a CoC that is not finite, negative or
            above ``max_coc``, …).
    """
    rgb = as_rgb_float(image, "image", dtype=np.float64)  # float input: the same values (already in [0, 1])
    img_t = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"device: unknown device {device!r} ({exc})") from None
    out = render_layers(img_t.to(dev), torch.from_numpy(layered.labels).to(dev), torch.from_numpy(layered.coc),
                        max_coc=max_coc, kernel=kernel, dtype=dtype)
    return io.to_uint8(out.permute(1, 2, 0).cpu().double().numpy())


def render_file(image: str | Path, depth: str | Path, sigma_map: str | Path, out: str | Path | None = None,
                depth_scale: float | None = None, max_coc: int = units.DEFAULT_MAX_COC,
                kernel: Kernel | str = Kernel.GAUSSIAN, device: str = "cpu", reference: str | Path | None = None,
                merge_tolerance: float = 0.0, sigma_out: str | Path | None = None) -> dict:
    """Replay one render from files; writes ``out`` (PNG, or JPEG for a .jpg name) when given.

    ``out`` / ``sigma_out`` never replace earlier work: a ValueError (before anything is read) refuses one that
    exists, is a folder or one of the inputs, or both naming one file (:func:`outputs_problem`, as the CLI). The two
    are written as one set: both, or (a write failed: an OSError naming the file) neither.

    ``merge_tolerance`` (px of σ, 0 = exact): render the recovered layers merged by
    :meth:`LayeredDepth.merged`. ``sigma_out``: write the σ map the image was rendered with (the merged layers'
    ``sigma10``; equal to the input map's values when nothing is merged). ``kernel``: :class:`~syndof.psf.Kernel` or
    its value (ValueError naming ``--kernel`` otherwise, before any file is read).

    Returns:
        dict with ``image`` (uint8 (H, W, 3)), ``layers`` (the LayeredDepth rendered, merged when asked),
        ``source_layers`` (the layers recovered from the σ map), ``psnr`` (dB or None), ``seconds`` (render time,
        merging included), ``cameras`` (every :class:`~syndof.camera.CameraParams` of
        :func:`~syndof.camera.exact_replays` that gives these layers, hence this render; ``source_layers.camera``
        first; empty for the σ-run fallback) and ``other_cameras`` (those that reproduce the σ map with other layers,
        not rendered). The map fixes the focus and the CoCs, not f and N: which camera made it is not known.
    """
    from syndof.layer_merge import check_merge_tolerance

    check_merge_tolerance(merge_tolerance)
    kernel = parse_choice(Kernel, kernel, "--kernel")
    if not 2 <= check_max_coc(max_coc, "--max-coc") <= MAX_MAX_COC:  # 100000: a 75 GiB kernel grid, a traceback
        raise ValueError(f"--max-coc must be in 2..{MAX_MAX_COC} px (σ_max = (max_coc − 1)/4), got {max_coc}")
    problem = outputs_problem(argparse.Namespace(image=image, depth=depth, sigma_map=sigma_map, reference=reference,
                                                 out=out, sigma_out=sigma_out))
    if problem:
        raise ValueError(problem)
    if out is not None and Path(out).suffix.lower() not in io.WRITE_IMAGE_EXTENSIONS:
        raise ValueError(f"--out {out}: name the render {' or '.join(io.WRITE_IMAGE_EXTENSIONS)} (PNG, or JPEG by the "
                         "name)")
    if sigma_out is not None and Path(sigma_out).suffix.lower() != ".png":
        raise ValueError(f"--sigma-out {sigma_out}: name it .png (the σ map is written as a SYNDOF 16-bit PNG)")
    img = io.read_image(image)
    dep = read_depth(depth, depth_scale)
    sig = io.read_sigma_map(sigma_map)
    if dep.shape != img.shape[:2] or sig.shape != img.shape[:2]:
        raise io.InputError(sigma_map, f"size mismatch: image {img.shape[:2]}, depth {dep.shape}, σ map {sig.shape}")
    problem = coc_problem(units.sigma_to_coc(float(sig.max())), max_coc, "--max-coc")  # the renderer's own check
    if problem:
        raise io.InputError(sigma_map, f"{problem} (the generator skips such samples; raise --max-coc if intended)")
    ref = None
    if reference is not None:
        ref = io.to_uint8(io.read_image(reference))
        if ref.shape != img.shape:
            raise io.InputError(reference, f"reference is {ref.shape[1]}x{ref.shape[0]} px, the image "
                                           f"{img.shape[1]}x{img.shape[0]} px")
    replays = exact_replays(dep, sig, max_coc=max_coc, focal_mm=focal_hint(sigma_map))
    # the first is layers_from_sigma's own exact result; none: its σ-run fallback
    source = replays[0] if replays else layers_from_sigma(dep, sig, max_coc=max_coc, focal_mm=focal_hint(sigma_map))
    same, other = [], []  # cameras that give the rendered layers; those that fit the map with other layers
    for r in replays:
        (same if np.array_equal(r.coc, source.coc) and np.array_equal(r.labels, source.labels) else other).append(
            r.camera)
    t0 = time.perf_counter()
    layered = source.merged(merge_tolerance)
    rendered = render_image(img, layered, max_coc=max_coc, kernel=kernel, device=device)
    seconds = time.perf_counter() - t0
    files = {}  # written as one set: both files, or (a write failed) neither
    if sigma_out is not None:
        files[Path(sigma_out)] = io.encode_syndof_values(layered.sigma10)
    if out is not None:
        files[Path(out)] = io.encode_image(out, rendered)
    io.write_set_atomic(files)  # an OSError names the file that failed, never the temporary one
    score = None if ref is None else psnr_uint8(rendered, ref)
    return {"image": rendered, "layers": layered, "source_layers": source, "psnr": score, "seconds": seconds,
            "cameras": same, "other_cameras": other}


def camera_record(camera: CameraParams) -> dict[str, float]:
    """The summary line's record of one fitting camera: f (mm), N, the focus z_f (mm, in the 5f-shifted depths
    when ``depth_shift_mm`` > 0) and that shift (mm)."""
    return {"focal_mm": camera.focal_mm, "f_number": round(camera.f_number, 4), "focus_mm": round(camera.focus_mm, 3),
            "depth_shift_mm": round(camera.depth_shift_mm, 3)}


def cameras_note(res: dict, hint_mm: float | None) -> str:
    """One sentence for the summary line: which cameras :func:`render_file`'s result ``res`` lists (``hint_mm``: the
    σ map's file name's focal length, tried first), and that the σ map does not say which of them made it."""
    tried = [hint_mm] if hint_mm is not None else []
    tried += [f for f in FOCAL_LENGTHS_MM if f not in tried]
    tried = "of the focal lengths tried: " + ", ".join(f"{f:g}" for f in tried) + " mm"
    n = len(res["cameras"])
    head = f"each of these {n} cameras gives this render" if n > 1 else "the one camera that gives this render"
    tail = ("; the σ map fixes the focus and the CoCs, not f and N, so it does not say which camera made it"
            if n > 1 else "; f and N are not otherwise known")
    other = (f"; {len(res['other_cameras'])} other camera(s) reproduce the σ map with other layers (not rendered)"
             if res["other_cameras"] else "")
    return f"{head} ({tried}){tail}{other}"


EXAMPLE = ("syndof-render --image ../shared/data/syndof_reference/input/sintel_market_2_frame_0001.png "
           "--depth ../shared/data/syndof_reference/input/sintel_market_2_frame_0001.dpt "
           "--sigma-map ../shared/data/syndof_reference/output/blur_map/MPI_market_2_frame_0001_f_50_fp_0_33_A_0_2.png "
           "--out runs/render_example.png")


def outputs_problem(args: argparse.Namespace) -> str | None:
    """One line when ``--out`` / ``--sigma-out`` would replace earlier work or an input, else None (checked before
    the render): a folder, an existing file, one of the inputs, or both options naming one file."""
    inputs: dict[Path, str] = {}
    for flag, p in (("--image", args.image), ("--depth", args.depth), ("--sigma-map", args.sigma_map),
                    ("--reference", args.reference)):
        if p is not None:
            inputs.setdefault(Path(p).resolve(), flag)
    outs = [(flag, p) for flag, p in (("--out", args.out), ("--sigma-out", args.sigma_out)) if p is not None]
    if len(outs) == 2 and Path(outs[0][1]).resolve() == Path(outs[1][1]).resolve():
        return f"--sigma-out {args.sigma_out}: the same file as --out"
    for flag, p in outs:
        path = Path(p)
        if path.is_dir():
            return f"{flag} {p}: is a folder (give the output PNG's file name)"
        if path.resolve() in inputs:
            return f"{flag} {p}: is the {inputs[path.resolve()]} input; write to a new name"
        if os.path.lexists(path):
            return f"{flag} {p}: exists; write to a new name (earlier results are never overwritten)"
    return None


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    ap = cli.parser("syndof.render", __doc__, EXAMPLE)
    ap.add_argument("--image", required=True, help="sharp source image")
    ap.add_argument("--depth", required=True, help="depth map (.dpt, 16-bit .png, .npy, .pfm)")
    cli.add_depth_scale(ap)
    ap.add_argument("--sigma-map", required=True, help="σ map: SYNDOF 16-bit PNG (10·σ) or float .npy in px")
    ap.add_argument("--out", required=True, help="output PNG")
    cli.add_max_coc(ap, use="as the σ map was generated with")
    cli.add_kernel(ap)
    cli.add_device(ap)
    cli.add_threads(ap)
    ap.add_argument("--reference", default=None, help="print the PSNR of the render against this image")
    cli.add_merge_tolerance(ap)
    ap.add_argument("--sigma-out", default=None, help="also write the σ map actually rendered (16-bit PNG)")
    args = ap.parse_args(argv)
    cli.prepare_process(args)
    # render_file refuses outputs that would replace earlier work (outputs_problem) before it reads anything
    res = render_file(args.image, args.depth, args.sigma_map, args.out, args.depth_scale, args.max_coc,
                      args.kernel, args.device, args.reference, args.merge_tolerance, args.sigma_out)
    lay = res["source_layers"]
    info = {"out": str(args.out), "layers": lay.n_layers, "exact_layers": lay.exact,
            "render_seconds": round(res["seconds"], 3)}
    if args.merge_tolerance > 0:
        info.update(merge_tolerance=args.merge_tolerance, rendered_layers=res["layers"].n_layers)
    if res["cameras"]:  # every fitting camera, not the first one tried as if it were the generator's
        info.update(focus_percentile=round(lay.camera.focus_percentile, 4),
                    cameras=[camera_record(c) for c in res["cameras"]],
                    cameras_note=cameras_note(res, focal_hint(args.sigma_map)))
        if res["other_cameras"]:
            info.update(other_cameras=[camera_record(c) for c in res["other_cameras"]])
    if res["psnr"] is not None:
        # an identical render has PSNR inf, which json.dumps writes as the non-JSON token Infinity: null + a flag
        finite = np.isfinite(res["psnr"])
        info["psnr_db"] = round(res["psnr"], 2) if finite else None
        info["identical_to_reference"] = not finite
        print(f"PSNR {res['psnr']:.2f} dB against {args.reference}")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
