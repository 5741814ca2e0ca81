"""Build test data through the real services: datasets, imports, staged edits."""
import csv
import io
from pathlib import Path

from PIL import Image

from server.blobs import BlobStore
from server.datasets.commits import upsert_rows
from server.datasets.rows import Row
from server.datasets.schemas import CommitRead
from server.datasets.service import commit_read, create_dataset, get_branch, get_dataset
from server.datasets.staging import commit_staged, stage_edits
from server.db import run_in_transaction
from server.errors import NothingToCommit

AUTHOR = "tester@example.com"


def make_dataset(name: str = "ds", modality: str = "text", labels: tuple[str, ...] = ("a", "b", "c")) -> None:
    """Create a dataset through the service."""
    run_in_transaction(lambda db: create_dataset(db, name=name, modality=modality, labels=list(labels), author=AUTHOR))


def text_rows(blobs: BlobStore, items: dict[str, tuple[str, str | None]]) -> list[Row]:
    """Rows for a text dataset from {key: (text, label)}, inputs stored in blobs."""
    return [Row(key, blobs.put(txt.encode()), label) for key, (txt, label) in items.items()]


def upsert(blobs: BlobStore, name: str, rows: list[Row], branch: str | None = None, message: str = "import") -> CommitRead:
    """Commit rows as an upsert on branch."""
    def work(db):
        ds = get_dataset(db, name)
        return commit_read(upsert_rows(db, blobs, dataset=ds, branch=get_branch(db, ds, branch), rows=rows, message=message, author=AUTHOR))

    return run_in_transaction(work)


def relabel(blobs: BlobStore, name: str, edits: dict[str, str | None], branch: str | None = None, remove: tuple[str, ...] = ()) -> CommitRead:
    """Stage edits {key: label} and removals, then commit them."""
    staged = [(k, v, False) for k, v in edits.items()] + [(k, None, True) for k in remove]
    run_in_transaction(lambda db: stage_edits(db, blobs, dataset=name, branch=branch, edits=staged, author=AUTHOR))
    made = run_in_transaction(lambda db: commit_staged(db, blobs, dataset=name, branch=branch, message="edit", author=AUTHOR))
    if made is None:
        raise NothingToCommit("the staged edits matched the branch head")
    return made


def png_bytes(seed: int, size: int = 8) -> bytes:
    """A small valid PNG whose pixels depend on seed."""
    img = Image.new("RGB", (size, size), ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256))
    img.putpixel((seed % size, (seed // size) % size), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_image_csv(folder: Path, items: dict[str, str], name: str = "labels.csv") -> Path:
    """A CSV import source with PNG files beside it: {key: label}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "img").mkdir(exist_ok=True)
    path = folder / name
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "label", "image"])
        for i, (key, label) in enumerate(items.items()):
            (folder / "img" / f"{i}.png").write_bytes(png_bytes(i))
            writer.writerow([key, label, f"img/{i}.png"])
    return path
