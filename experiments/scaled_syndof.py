"""A SYNDOF folder shown at another scale: each image and its σ map resized by ``--scale`` (area averaging), σ in the
new px (``units.rescale_sigma`` by the factor each image got, ``resize.applied_scale``: its sides are rounded).
Writes ``image/`` and ``blur_map/`` (what ``dmenet.evaluate --benchmark syndof`` reads) and a ``dataset.json`` that
says where the folder came from. Used by rule 21s (experiments/RULE_21S.md).

    python experiments/scaled_syndof.py runs/gsyn_val16 --scale 0.5 --out runs/gsyn_val16_x0.5

The folder is built beside ``--out`` (:func:`syndof.io.staged_folder`) and renamed into place only when every sample
is written; a bad sample (unreadable, a σ map of another size than its image, or one whose scaled σ exceeds the σ_max of
``dataset.json``'s ``max_coc``, which the copy keeps: an upscale) stops the command (exit 2, one line naming the
file) with nothing at ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmenet.eval.syndof_test import read_max_coc  # noqa: E402
from syndof import cli, io, resize, units  # noqa: E402
from syndof.render_checks import coc_problem  # noqa: E402


def scale_folder(src: Path, out: Path, scale: float) -> int:
    """Write the scaled copy of ``src`` into ``out`` (which must not exist); returns the number of samples.

    Raises:
        FileExistsError: ``out`` exists. ValueError / io.InputError: no images, an unreadable image or σ map, a bad
        ``dataset.json``, or a scaled σ above its ``max_coc``'s σ_max (+ the renderer's 0.05-px tolerance).
    """
    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new --out")
    images = sorted((src / "image").glob("*.png"))
    if not images:
        raise ValueError(f"{src / 'image'}: no PNG images")
    max_coc = read_max_coc(src)  # the copy keeps dataset.json, so its σ must stay within the σ_max it states
    with io.staged_folder(out) as tmp:  # a sibling of its own: another run's half-built folder is never touched
        (tmp / "image").mkdir()
        (tmp / "blur_map").mkdir()
        for path in images:
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # the file's own 8 bits, resized as they are
            if image is None:
                raise io.InputError(path, "unreadable image")
            sigma_path = src / "blur_map" / path.name
            sigma = io.read_sigma_map(sigma_path)
            if sigma.shape[:2] != image.shape[:2]:  # resized to the image's new size, it would label other pixels
                raise io.InputError(sigma_path, f"σ map is {sigma.shape[1]}x{sigma.shape[0]} px, its image "
                                    f"{path.name} {image.shape[1]}x{image.shape[0]}")
            size = resize.scaled_size(image.shape, scale)
            if not cv2.imwrite(str(tmp / "image" / path.name),  # BGR(A) as read: cv2 writes it back
                               cv2.resize(image, size, interpolation=cv2.INTER_AREA)):
                raise OSError(f"{out / 'image' / path.name}: could not be written")
            # σ scales by the factor the image got, not the one asked: sizes are rounded (33 px × 0.5 → 16 px)
            source_top = float(sigma.max())
            sigma = units.rescale_sigma(cv2.resize(sigma, size, interpolation=cv2.INTER_AREA),
                                        resize.applied_scale(image.shape, size))
            top = float(sigma.max())  # grows only with --scale > 1 (a shrink never raises σ: its factor is ≤ 1)
            problem = coc_problem(units.sigma_to_coc(top), max_coc, "dataset.json's max_coc") if top > source_top \
                else None
            if problem is not None:  # evaluate would clip the label at σ_max: the copy's GT says less blur than it has
                raise io.InputError(sigma_path, f"at --scale {scale:g}: {problem}; a scale this large needs a folder "
                                                f"rendered with a larger --max-coc")
            io.write_sigma_map(tmp / "blur_map" / path.name, sigma)
        meta = io.read_json_object(src / "dataset.json")
        meta["scaled_from"] = {"folder": str(src), "scale": scale, "interpolation": "INTER_AREA (image and σ map)"}
        io.write_json_atomic(tmp / "dataset.json", meta)
    return len(images)


EXAMPLE = "python experiments/scaled_syndof.py runs/gsyn_val16 --scale 0.5 --out runs/gsyn_val16_x0.5"


@cli.entry_point
def main(argv=None) -> int:
    p = cli.script_parser("experiments/scaled_syndof.py", __doc__, EXAMPLE)
    p.add_argument("src", type=Path)
    p.add_argument("--scale", type=cli.positive_float, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    n = scale_folder(args.src, args.out, args.scale)
    print(f"{n} samples at ×{args.scale:g} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
