"""Whether an image file holds more than the one image :func:`syndof.io.read_image` reads (an animated GIF, PNG or
WebP, a multi-page TIFF), from Pillow's header of it (its ``n_frames``, which walks block, chunk and directory
headers without decoding pixels), so that the reader can say so (:class:`FirstFrameWarning`) instead of taking the
first frame silently."""

from __future__ import annotations

FRAMED_FORMATS = {"GIF": ("an animated GIF", "frame"), "PNG": ("an animated PNG", "frame"),
                  "WEBP": ("an animated WebP", "frame"), "TIFF": ("a TIFF", "page")}
"""Formats (Pillow's names) whose further frames or pages :func:`extra_images_note` names: an MPO's second picture
(a camera's preview or the other eye) is no frame and is not named."""


class FirstFrameWarning(UserWarning):
    """An image file holds several frames or pages and only the first was read. One warning per read, naming the
    file (``warnings.simplefilter("ignore", FirstFrameWarning)`` silences it); a tool that reads a file again in one
    run reads it with ``read_image(path, note_frames=False)`` after the first, so it warns once per file per run."""


def extra_images_note(pil) -> str | None:
    """What a reader of the first image leaves out of the file whose Pillow header is ``pil`` (an ``Image.open``
    result, pixels not loaded), as one phrase naming the number of frames or pages, e.g. ``"an animated GIF of 12
    frames: only the first is read"``; None for a file of one image and for formats not in :data:`FRAMED_FORMATS`.

    An APNG whose default image (its ``IDAT``) is no frame of the animation (Pillow's ``default_image``; its
    ``n_frames`` counts that image too) is named as such: the reader decodes the animation's first frame, as OpenCV's
    ``imdecode`` gives it, and viewers without APNG support show the default image."""
    named = FRAMED_FORMATS.get(getattr(pil, "format", None))
    if named is None:
        return None
    kind, unit = named
    count = getattr(pil, "n_frames", 1)
    if getattr(pil, "default_image", False):  # APNG only (Pillow's attribute): n_frames counts the default image
        count -= 1
        return f"{kind} of {count} {unit}{'s' * (count != 1)} beside its default image: only the first {unit} is read"
    return f"{kind} of {count} {unit}s: only the first is read" if count > 1 else None
