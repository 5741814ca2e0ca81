"""Where an example's input lives: with the example when it is small text, else in the blob store.

A tabular row or a short text is a few dozen bytes; as a file of its own it would take a whole
file-system block and an inode, and ten million of them would be ten million files. Inputs up
to S2_INLINE_MAX_BYTES (default one 4 KiB block) of text and tabular datasets are therefore
stored in the delta rows and the checkpoints; images and larger inputs stay content-addressed
blobs. Either way the input's id is the sha256 of its bytes, so identity, diffs and edit
versions do not depend on where the bytes are.
"""

from server.blobs import BlobStore, blob_id_of
from server.config import get_settings
from server.datasets.rows import Row


def store_input(blobs: BlobStore, data: bytes, modality: str) -> tuple[str, str | None]:
    """(input id, inline text or None): small text and tabular inputs inline, the rest as blobs."""
    # PostgreSQL text cannot hold NUL: such an input (rare, but valid UTF-8) stays a blob.
    if modality != "image" and len(data) <= get_settings().inline_max_bytes and b"\x00" not in data:
        return blob_id_of(data), data.decode("utf-8")  # text and tabular inputs are UTF-8 by construction
    return blobs.put(data), None


def input_bytes(blobs: BlobStore, row: Row) -> bytes:
    """The bytes of a row's input, from the row itself or (verified) from the blob store."""
    return row.inline.encode("utf-8") if row.inline is not None else blobs.get(row.input)


class InputReader:
    """input id -> bytes for one snapshot: inline inputs from memory, the rest verified from the blob store.

    A class, not a closure, so a snapshot handed to training processes (DDP ranks) pickles.
    """

    def __init__(self, blobs: BlobStore, inline: dict[str, str]):
        self.blobs, self.inline = blobs, inline

    def __call__(self, input_id: str) -> bytes:
        text = self.inline.get(input_id)
        return text.encode("utf-8") if text is not None else self.blobs.get(input_id)
