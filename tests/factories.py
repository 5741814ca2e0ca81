"""Build test data through the real services: datasets, imports, staged edits."""

import csv
import io
from pathlib import Path

from PIL import Image

from server.blobs import BlobStore
from server.datasets.datasets import create_dataset, get_dataset
from server.datasets.history import commit_read, resolve_rev
from server.datasets.ingest import ingest
from server.datasets.rows import Row
from server.datasets.schemas import CommitRead
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
    """Commit rows as an upsert on branch, through the import pipeline; NothingToCommit when nothing changes."""
    done = ingest(
        run_in_transaction,
        blobs,
        dataset=name,
        branch=branch,
        rows=[(f"row {i}", r) for i, r in enumerate(rows, 1)],
        message=message,
        author=AUTHOR,
    )
    if done.changes == 0:
        raise NothingToCommit(f"the import matches '{branch or 'main'}' of dataset '{name}' already")
    return run_in_transaction(lambda db: commit_read(db, resolve_rev(db, get_dataset(db, name), done.commit)))


def relabel(
    blobs: BlobStore, name: str, edits: dict[str, str | None], branch: str | None = None, remove: tuple[str, ...] = ()
) -> CommitRead:
    """Stage edits {key: label} and removals, then commit them."""
    staged = [(k, v, False) for k, v in edits.items()] + [(k, None, True) for k in remove]
    run_in_transaction(lambda db: stage_edits(db, blobs, dataset=name, branch=branch, edits=staged, author=AUTHOR))
    made = run_in_transaction(lambda db: commit_staged(db, blobs, dataset=name, branch=branch, message="edit", author=AUTHOR)).commit
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


def write_digits_folder(root: Path, limit: int | None = None) -> Path:
    """scikit-learn's bundled digits as an ImageFolder of 8x8 grayscale PNGs: root/<digit>/d0000.png."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (pixels, target) in enumerate(zip(digits.images, digits.target)):
        if limit is not None and i >= limit:
            break
        folder = root / str(target)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels * 15).astype(np.uint8), mode="L").save(folder / f"d{i:04d}.png")
    return root


def write_topics_csv(path: Path, n: int = 300, seed: int = 0) -> Path:
    """A text dataset of three topics, sentences drawn from each topic's words plus shared noise."""
    import random

    rng = random.Random(seed)
    topics = {
        "sport": "goal match team score player coach league referee stadium win".split(),
        "food": "bread cheese recipe oven salt butter soup flavor kitchen bake".split(),
        "tech": "server code compile kernel network chip memory python cloud bug".split(),
    }
    noise = "the a of and to in is was it for on with as at by this".split()
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "label", "text"])
        for i in range(n):
            label = list(topics)[i % 3]
            words = rng.choices(topics[label], k=4) + rng.choices(noise, k=6)
            rng.shuffle(words)
            writer.writerow([f"t{i:04d}", label, " ".join(words)])
    return path


def write_wine_csv(path: Path) -> Path:
    """scikit-learn's bundled wine data as a tabular CSV: key, label (class_0..2), 13 features."""
    from sklearn.datasets import load_wine

    wine = load_wine()
    names = [n.replace("/", "_") for n in wine.feature_names]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "label", *names])
        for i, (row, target) in enumerate(zip(wine.data, wine.target)):
            writer.writerow([f"w{i:03d}", f"class_{target}", *row.tolist()])
    return path


def write_csv(path: Path, rows: list[list], header=("key", "label", "text")) -> Path:
    """A CSV file with header and rows (parent folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path
