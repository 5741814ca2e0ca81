"""Reading an import source (ImageFolder folder, CSV, JSONL, Parquet) into validated rows."""

import csv
import io
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from server.blobs import BlobStore
from server.datasets.inputs import store_input
from server.datasets.paths import check_key
from server.datasets.rows import Row, canonical_json
from server.errors import InvalidInput

RESERVED = ("key", "label", "split")
INPUT_COLUMN = {"image": "image", "text": "text"}


def check_image(data: bytes, where: str) -> None:
    """Decode the whole image: a corrupt or truncated file is refused at import, not at training.

    Its declared width x height is checked first (S2_IMAGE_MAX_PIXELS): decoding allocates that
    many pixels whatever the file's size, and a few bytes can declare gigapixels.
    """
    from PIL import Image, UnidentifiedImageError

    from server.config import get_settings

    limit = get_settings().image_max_pixels
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            width, height = img.size
            if width * height > limit:
                raise InvalidInput(f"{where}: the image is {width}x{height} pixels, over the {limit} pixel limit (S2_IMAGE_MAX_PIXELS)")
            img.load()
    except Image.DecompressionBombError as exc:  # Pillow's own guard fires before we see the size, far past ours
        raise InvalidInput(f"{where}: the image is over the {limit} pixel limit (S2_IMAGE_MAX_PIXELS); Pillow: {exc}") from None
    except UnidentifiedImageError:
        raise InvalidInput(
            f"{where}: not a readable image (not a format Pillow recognises: PNG, JPEG, GIF, BMP, TIFF, WebP, ...)"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInput(f"{where}: not a readable image ({exc})") from None


def iter_source_rows(
    source: Path,
    modality: str,
    labels: list[str],
    blobs: BlobStore,
    confine: Path | None = None,
    members: Mapping[str, Callable[[], bytes]] | None = None,
) -> Iterator[tuple[str, Row]]:
    """Every example of source as (where it came from, validated row), refusing the first bad one.

    Rows stream: a source of any size is read in constant memory (duplicates are found later,
    when the rows are sorted). Inputs go to the blob store, or inline when small.
    confine: image paths named by a table must lie inside this folder (uploads: the upload's own
    files, never the server's). members: files of that folder that are read in place (an uploaded
    zip's), by their path below it.
    """
    source = Path(source)
    readers = {".csv": _csv_records, ".jsonl": _jsonl_records, ".parquet": _parquet_records}
    virtual = _members_below(source, confine, members)
    if not source.exists() and not virtual:
        raise InvalidInput(f"import source '{source}' does not exist")
    if source.is_dir() or virtual:
        records = _folder_records(source, modality, virtual)
    else:
        reader = readers.get(source.suffix.lower())
        if reader is None:
            raise InvalidInput(
                f"import source '{source}': unsupported file type '{source.suffix}' (use a folder, .csv, .jsonl or .parquet)"
            )
        records = reader(source)
    label_set = set(labels)
    for where, record in records:
        if confine is not None:
            record["_confine"], record["_members"] = confine, members
        yield where, _to_row(where, record, modality, source, label_set, labels, blobs)


def _to_row(where: str, rec: dict, modality: str, source: Path, label_set: set, labels: list[str], blobs: BlobStore) -> Row:
    key = check_key(rec.get("key"), where)
    where = f"{where} (key '{key}')"
    if "label" not in rec:
        raise InvalidInput(f"{where}: no 'label' column")
    label = rec["label"]
    label = None if label is None or (isinstance(label, str) and label.strip() == "") else str(label)
    if label is not None and label not in label_set:
        raise InvalidInput(f"{where}: label {label!r} is not in the label set ({', '.join(labels)})")
    split = rec.get("split")
    split = None if split in (None, "") else str(split)
    extra = {k: v for k, v in rec.items() if k not in RESERVED and not k.startswith("_")}
    if modality == "tabular":
        features = {k: _number(v) for k, v in extra.items()}
        if not features:
            raise InvalidInput(f"{where}: no feature columns (a tabular example needs columns besides key, label, split)")
        data, meta = canonical_json(features).encode(), None
    else:
        column = INPUT_COLUMN[modality]
        value = extra.pop(column, None)
        if value is None or value == "":
            raise InvalidInput(f"{where}: no '{column}' value")
        data = _input_bytes(value, modality, source, rec.get("_base"), where, rec.get("_confine"), rec.get("_members"))
        meta = canonical_json(extra)
    input_id, inline = store_input(blobs, data, modality)
    return Row(key, input_id, label, split, meta, inline)


def _input_bytes(
    value: object,
    modality: str,
    source: Path,
    base: str | None,
    where: str,
    confine: Path | None = None,
    members: Mapping[str, Callable[[], bytes]] | None = None,
) -> bytes:
    if modality == "text":
        if isinstance(value, bytes):
            value = _utf8(value, where)
        return str(value).encode("utf-8")
    if isinstance(value, bytes):
        data = value
    else:
        root = Path(base) if base else source.parent
        path = root / str(value)
        if members:  # an uploaded zip's file, read in place (no links can be in an upload: a lexical path is its path)
            rel = os.path.relpath(os.path.normpath(path), confine)
            if rel in members:
                data = members[rel]()
                check_image(data, f"{where}, file '{path}'")
                return data
        if confine is not None and not path.resolve().is_relative_to(confine.resolve()):
            raise InvalidInput(f"{where}: image path {str(value)!r} points outside the upload; name a file uploaded with it")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"{where}: cannot read image file '{path}': {exc.strerror or exc}") from None
        where = f"{where}, file '{path}'"
    check_image(data, where)
    return data


def _utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{where}: text is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _number(value: object) -> object:
    """CSV cells arrive as text: read numbers as numbers so features keep their type."""
    if not isinstance(value, str):
        return value
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def _members_below(folder: Path, confine: Path | None, members: Mapping[str, Callable[[], bytes]] | None) -> dict[str, Callable[[], bytes]]:
    """The in-place files below folder, by their path below it."""
    if not members or confine is None:
        return {}
    rel = os.path.relpath(folder, confine)
    if rel.startswith(".."):
        return {}
    prefix = "" if rel == "." else rel + "/"
    return {path[len(prefix) :]: read for path, read in members.items() if path.startswith(prefix)}


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"file '{path}': cannot read: {exc.strerror or exc}") from None


def _folder_records(root: Path, modality: str, virtual: Mapping[str, Callable[[], bytes]] | None = None) -> Iterator[tuple[str, dict]]:
    """ImageFolder layout: root/<label>/<file>; the key is the path below root (files on disk, or read in place)."""
    if modality == "tabular":
        raise InvalidInput(f"import source '{root}': a folder import needs an image or text dataset, not tabular")
    found: dict[str, Path | Callable[[], bytes]] = {}  # a file on disk, or how to read one in place
    if root.is_dir():
        for label_dir in (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for dirpath, dirnames, filenames in os.walk(label_dir):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                for name in filenames:
                    if not name.startswith("."):
                        path = Path(dirpath) / name
                        found[path.relative_to(root).as_posix()] = path
    for key, read in (virtual or {}).items():
        if "/" in key and not any(part.startswith(".") for part in key.split("/")):  # LABEL/FILE, as on disk
            found[key] = read
    for key in sorted(found):
        where = f"file '{root / key}'"
        data = _read_file(found[key]) if isinstance(found[key], Path) else found[key]()
        value = _utf8(data, where) if modality == "text" else data
        yield where, {"key": key, "label": key.split("/", 1)[0], INPUT_COLUMN[modality]: value}


def _open_text(path: Path):
    try:
        return open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read import source '{path}': {exc.strerror or exc}") from None


def _csv_records(path: Path) -> Iterator[tuple[str, dict]]:
    try:
        with _open_text(path) as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                raise InvalidInput(f"'{path}' is empty: a CSV import needs a header line (key, label, the input column) and rows")
            if "key" not in reader.fieldnames:
                raise InvalidInput(f"'{path}': no 'key' column in the header (found: {', '.join(reader.fieldnames or []) or 'nothing'})")
            for row in reader:
                if None in row:
                    raise InvalidInput(f"'{path}' line {reader.line_num}: more cells than header columns")
                yield f"'{path}' line {reader.line_num}", row
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"'{path}': not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise InvalidInput(f"'{path}': malformed CSV ({exc})") from None


def _jsonl_records(path: Path) -> Iterator[tuple[str, dict]]:
    with _open_text(path) as f:
        for number, line in enumerate(_utf8_lines(f, path), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"'{path}' line {number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise InvalidInput(f"'{path}' line {number}: expected a JSON object")
            yield f"'{path}' line {number}", record


def _utf8_lines(f, path: Path) -> Iterator[str]:
    number = 0
    try:
        for number, line in enumerate(f, 1):  # noqa: B007 (number names the failing line below)
            yield line
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"'{path}' line {number + 1}: not UTF-8 text ({exc.reason})") from None


def _parquet_records(path: Path) -> Iterator[tuple[str, dict]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise InvalidInput(f"'{path}': not a readable Parquet file ({exc})") from None
    number = 0
    for batch in pf.iter_batches(batch_size=8192):
        for record in batch.to_pylist():
            number += 1
            yield f"'{path}' row {number}", record


def table_image_paths(table: Path) -> list[str]:
    """The image files a table names by relative path (what must travel with it to a server)."""
    readers = {".csv": _csv_records, ".jsonl": _jsonl_records, ".parquet": _parquet_records}
    reader = readers.get(table.suffix.lower())
    if reader is None:
        raise InvalidInput(f"import source '{table}': unsupported file type '{table.suffix}' (use a folder, .csv, .jsonl or .parquet)")
    paths = []
    for _where, record in reader(table):
        value = record.get("image")
        if isinstance(value, str) and value:
            paths.append(value)
    return sorted(set(paths))
