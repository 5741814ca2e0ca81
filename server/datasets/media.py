"""Content types of example inputs, told from their first bytes (images) or the dataset's modality."""

IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
               (b"BM", "image/bmp"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"))


def media_type(data: bytes, modality: str) -> str:
    """The Content-Type to serve an input with."""
    if modality == "text":
        return "text/plain; charset=utf-8"
    if modality == "tabular":
        return "application/json"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in IMAGE_MAGIC if data.startswith(magic)), "application/octet-stream")
