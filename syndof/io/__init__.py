"""File input/output shared by ``syndof`` and ``dmenet``: images, σ maps, masks, atomic writes.

Every reader raises :class:`InputError` (a ``ValueError``) whose message names the file and the problem, so batch
jobs can log one line and skip the sample. Every writer goes through a temporary file in the target folder and an
``os.replace``, so a killed run never leaves a half-written output behind.

One module per purpose; every name below is importable from ``syndof.io`` itself:

- :mod:`syndof.io.files`: the error every reader raises, special-file and emptiness checks, hidden names, SHA-256;
- :mod:`syndof.io.decode`: reading images (first frame, EXIF orientation, stored channels and pixel type, header
  sizes);
- :mod:`syndof.io.encode`: PNG / JPEG bytes of an image, writing it, 8-bit levels ↔ [0, 1] (arrays and torch tensors);
- :mod:`syndof.io.maps`: σ maps and ``.npy`` arrays (SYNDOF's PNG encoding);
- :mod:`syndof.io.atomic`: temporary names renamed into place, staged folders, the ``--out`` lock, JSON files;
- :mod:`syndof.io.listing`: the images of a folder, what could not be listed, files by stem.
"""

from __future__ import annotations

from syndof.io.atomic import (
    atomic_path,
    folder_lock,
    move_to_new_name,
    read_json,
    read_json_object,
    staged_folder,
    write_bytes_atomic,
    write_json_atomic,
    write_set_atomic,
    write_text_atomic,
)
from syndof.io.decode import (
    DECODER_ORIENTED,
    EXIF_ORIENTED,
    IMAGE_EXTENSIONS,
    Stored,
    header_size,
    image_format,
    read_image,
    read_image_sha256,
    read_image_stored,
    read_raw,
    stored_dtype,
)
from syndof.io.encode import (
    JPEG_EXTENSIONS,
    PNG_FAST,
    PNG_SMALL,
    WRITE_IMAGE_EXTENSIONS,
    encode_bgr_png,
    encode_image,
    encode_png,
    from_uint8,
    from_uint8_tensor,
    to_uint8,
    write_image,
)
from syndof.io.files import (
    HASH_BLOCK,
    SYMLINK_LOOP,
    InputError,
    check_nonempty_file,
    file_sha256,
    is_hidden,
    not_a_folder,
    read_errors_named,
    read_input_bytes,
    readable_file_sha256,
    special_file_problem,
    update_digest,
)
from syndof.io.listing import (
    UNREADABLE_NAMES_SHOWN,
    image_entries,
    image_names,
    index_by_stem,
    list_images,
    list_images_and_unlisted,
    refuse_unreadable_names,
    unlistable_folder_reason,
    unlisted_images,
    unlisted_note,
)
from syndof.io.maps import (
    MAX_MAP_CHANNELS,
    SIGMA_MAP_EXTENSIONS,
    SIGMA_MAP_LISTED_EXTENSIONS,
    encode_npy,
    encode_sigma_map,
    encode_syndof_values,
    read_npy_map,
    read_sigma_map,
    write_npy,
    write_sigma_map,
)

__all__ = [
    "InputError",
    "check_nonempty_file",
    "read_input_bytes",
    "read_errors_named",
    "SYMLINK_LOOP",
    "special_file_problem",
    "is_hidden",
    "not_a_folder",
    "HASH_BLOCK",
    "update_digest",
    "file_sha256",
    "readable_file_sha256",
    "IMAGE_EXTENSIONS",
    "Stored",
    "stored_dtype",
    "read_image_stored",
    "read_raw",
    "image_format",
    "EXIF_ORIENTED",
    "DECODER_ORIENTED",
    "header_size",
    "read_image",
    "read_image_sha256",
    "WRITE_IMAGE_EXTENSIONS",
    "JPEG_EXTENSIONS",
    "PNG_SMALL",
    "PNG_FAST",
    "encode_png",
    "encode_bgr_png",
    "to_uint8",
    "from_uint8",
    "from_uint8_tensor",
    "encode_image",
    "write_image",
    "MAX_MAP_CHANNELS",
    "read_npy_map",
    "read_sigma_map",
    "encode_sigma_map",
    "encode_syndof_values",
    "SIGMA_MAP_EXTENSIONS",
    "SIGMA_MAP_LISTED_EXTENSIONS",
    "write_sigma_map",
    "encode_npy",
    "write_npy",
    "atomic_path",
    "move_to_new_name",
    "folder_lock",
    "staged_folder",
    "write_bytes_atomic",
    "write_text_atomic",
    "read_json",
    "read_json_object",
    "write_json_atomic",
    "write_set_atomic",
    "image_names",
    "unlistable_folder_reason",
    "list_images",
    "unlisted_images",
    "list_images_and_unlisted",
    "image_entries",
    "unlisted_note",
    "UNREADABLE_NAMES_SHOWN",
    "refuse_unreadable_names",
    "index_by_stem",
]
