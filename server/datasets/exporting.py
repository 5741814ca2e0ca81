"""Writing a revision out as an ImageFolder folder, Parquet or JSONL, inputs byte for byte."""

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from server.blobs import BlobStore
from server.datasets.arrow import batch_to_rows
from server.datasets.inputs import input_bytes
from server.datasets.layout import folder_path, place
from server.datasets.rows import Row
from server.errors import InvalidInput

FORMATS = ("imagefolder", "parquet", "jsonl")
Tick = Callable[[int], None]


def images_dir_of(out: Path) -> Path:
    """Where a JSONL export of an image dataset puts the image files: beside the JSONL file."""
    return out.parent / f"{Path(out.name).stem}-images"


def check_target(out: Path, fmt: str | None = None, modality: str | None = None) -> None:
    """Refuse to overwrite: export writes a new file or folder, or fills an empty folder."""
    out = Path(out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise InvalidInput(f"export target '{out}' already exists; choose a new path or remove it")
    if fmt == "jsonl" and modality == "image" and images_dir_of(out).exists():
        raise InvalidInput(
            f"export target '{images_dir_of(out)}' (the images of a JSONL export) already exists; choose a new path or remove it"
        )


def export_rows(
    rows: Iterator[Row], *, out: Path, fmt: str, modality: str, labels: list[str], blobs: BlobStore, tick: Tick | None = None
) -> int:
    """Write rows to out in fmt; out appears only once complete. Returns the number of examples."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "imagefolder" and modality == "tabular":
        raise InvalidInput("imagefolder export needs an image or text dataset; use --format parquet or jsonl")
    out = Path(out)
    check_target(out, fmt, modality)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        writer = {"imagefolder": _write_folder, "parquet": _write_parquet, "jsonl": _write_jsonl}[fmt]
        count = writer(rows, staging, out.name, modality, labels, blobs, tick or (lambda n: None))
        if out.is_dir():
            out.rmdir()  # an empty folder the user made for us
        for item in sorted(staging.iterdir(), key=lambda p: p.is_file()):  # the data file lands last
            item.rename(out if item.name == "_out" else out.parent / item.name)
        return count
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_folder(rows, staging: Path, name: str, modality: str, labels: list[str], blobs: BlobStore, tick: Tick) -> int:
    root = staging / "_out"
    root.mkdir()
    count, made = 0, set()
    for row in rows:
        data = input_bytes(blobs, row)
        place(root, folder_path(row, labels, data, modality), row.key, data, made)
        count += 1
        tick(1)
    return count


def _records(rows, modality: str, blobs: BlobStore, tick: Tick, image_value: Callable[[Row, bytes], object]) -> Iterator[dict]:
    for row in rows:
        data = input_bytes(blobs, row)
        record: dict = {"key": row.key, "label": row.label, "split": row.split}  # null: no explicit split (as in Parquet)
        if modality == "tabular":
            record.update(json.loads(data))
        elif modality == "text":
            record["text"] = data.decode("utf-8")
        else:
            record["image"] = image_value(row, data)
        if row.meta:
            record.update(json.loads(row.meta))
        tick(1)
        yield record


def _write_jsonl(rows, staging: Path, name: str, modality: str, labels, blobs: BlobStore, tick: Tick) -> int:
    images_dir = images_dir_of(Path(name)).name

    made: set[Path] = set()

    def save_image(row: Row, data: bytes) -> str:
        return place(staging, f"{images_dir}/{row.key}", row.key, data, made).relative_to(staging).as_posix()

    count = 0
    with open(staging / "_out", "w", encoding="utf-8") as f:
        for record in _records(rows, modality, blobs, tick, save_image):
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def _write_parquet(rows, staging: Path, name: str, modality: str, labels, blobs: BlobStore, tick: Tick) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer, count, chunk = None, 0, []

    def flush() -> None:
        nonlocal writer
        if writer is None:
            writer = pq.ParquetWriter(staging / "_out", _parquet_schema(pa.Table.from_pylist(chunk).schema, modality))
        unknown = {name for record in chunk for name in record} - set(writer.schema.names)
        if unknown:  # Parquet needs one schema; metadata columns that start late do not fit it
            raise InvalidInput(
                f"metadata column(s) {', '.join(sorted(unknown))} first appear after row {count - len(chunk)}; export as jsonl"
            )
        writer.write_table(pa.Table.from_pylist(chunk, schema=writer.schema))
        chunk.clear()

    for record in _records(rows, modality, blobs, tick, lambda row, data: data):
        chunk.append(record)
        count += 1
        if len(chunk) >= 8192:
            flush()
    if chunk or writer is None:
        flush()
    writer.close()
    return count


def iter_rows(batches) -> Iterator[Row]:
    """Rows of a stream of snapshot batches."""
    for batch in batches:
        yield from batch_to_rows(batch)


def _parquet_schema(inferred, modality: str):
    """The inferred schema with fixed types for the columns s2 owns (a column of nulls gets string)."""
    import pyarrow as pa

    fixed = {"key": pa.string(), "label": pa.string(), "split": pa.string(), "text": pa.string(), "image": pa.binary()}
    fields = [pa.field(n, fixed[n]) for n in ("key", "label", "split")]
    if modality in ("text", "image"):
        fields.append(pa.field(modality, fixed[modality]))
    for field in inferred:
        if field.name not in {f.name for f in fields}:
            fields.append(pa.field(field.name, pa.string() if pa.types.is_null(field.type) else field.type))
    return pa.schema(fields)
