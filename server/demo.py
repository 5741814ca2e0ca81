"""The demo dataset `s2 up` builds on an empty store: scikit-learn's bundled digits, trained once."""

import logging
import tempfile
from pathlib import Path

from server.db import run_in_transaction

log = logging.getLogger(__name__)
DEMO = "digits"
DEMO_SPEC = {"epochs": 8, "image_size": 16, "image_channels": 1, "batch_size": 32, "learning_rate": 0.003}  # ~10 s on a laptop CPU


def write_digits(root: Path) -> Path:
    """The 1,797 bundled 8x8 digits as an ImageFolder of grayscale PNGs: root/<digit>/d0000.png."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (pixels, target) in enumerate(zip(digits.images, digits.target)):
        folder = root / str(target)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels * 15).astype(np.uint8), mode="L").save(folder / f"d{i:04d}.png")
    return root


def needs_demo() -> bool:
    """Whether the store is empty, the only kind build_demo builds on (a store with any dataset keeps its own)."""
    from server.datasets.datasets import list_datasets

    return not run_in_transaction(lambda db: list_datasets(db, limit=1))


def build_demo(author: str) -> int | None:
    """On a store without datasets, create `digits`, import it and queue one training; returns the run id."""
    from server.blobs import default_blob_store
    from server.datasets.datasets import create_dataset
    from server.datasets.importing import iter_source_rows
    from server.datasets.ingest import ingest
    from server.runs.service import submit_run

    if not needs_demo():
        return None
    store = default_blob_store()
    labels = [str(d) for d in range(10)]
    run_in_transaction(lambda db: create_dataset(db, name=DEMO, modality="image", labels=labels, author=author))
    with tempfile.TemporaryDirectory(prefix="s2-demo-") as tmp:
        rows = iter_source_rows(write_digits(Path(tmp)), "image", labels, store)
        ingest(
            run_in_transaction, store, dataset=DEMO, branch=None, rows=rows, message="import scikit-learn's bundled digits", author=author
        )
    return run_in_transaction(lambda db: submit_run(db, store, dataset=DEMO, rev=None, spec=DEMO_SPEC, requested_by=author).id)
