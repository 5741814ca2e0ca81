"""Example inputs served as media: which blobs a dataset may serve, and their content types."""

from sqlalchemy.orm import Session

from server.datasets.datasets import get_dataset
from server.datasets.models import DatasetInput
from server.errors import NotFound

IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def input_modality(db: Session, dataset: str, blob_id: str) -> str:
    """The dataset's modality if blob_id is the input of one of its examples at some revision; else NotFound.

    The blob store is shared by every dataset and also holds checkpoints and model weights: a
    reader of one dataset must not fetch another's inputs, or anything else, by its hash.
    """
    ds = get_dataset(db, dataset)
    if db.get(DatasetInput, (ds.id, blob_id)) is None:
        raise NotFound(f"no input '{blob_id}' in dataset '{dataset}'")
    return ds.modality


def media_type(data: bytes, modality: str) -> str:
    """The Content-Type to serve an input with."""
    if modality == "text":
        return "text/plain; charset=utf-8"
    if modality == "tabular":
        return "application/json"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in IMAGE_MAGIC if data.startswith(magic)), "application/octet-stream")
