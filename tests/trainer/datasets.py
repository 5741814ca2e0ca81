"""Real datasets for the defaults' tests and bench/defaults.py: scikit-learn's breast_cancer table, and a text
dataset from this machine, docstrings of installed packages labeled by their package.

Docstrings are read with `ast` (nothing is imported), in sorted file order, so the same environment gives the same rows.
The classes are deliberately imbalanced (the largest holds ~22% of the rows), like most labeled text.
"""

from __future__ import annotations

import ast
import json
import sysconfig
from functools import cache
from pathlib import Path

from tests.trainer.factories import make_snapshot
from trainer.data import TrainingSnapshot

# package -> how many docstrings to keep (the imbalance); all are pure-Python sources in the project's venv
PACKAGES = {
    "sqlalchemy": 240,
    "numpy": 200,
    "sklearn": 160,
    "botocore": 120,
    "hypothesis": 100,
    "networkx": 90,
    "celery": 80,
    "pydantic": 70,
    "click": 60,
    "jinja2": 50,
}
MIN_WORDS, MAX_CHARS, MAX_FILES = 8, 2000, 400


def _docstrings(root: Path, limit: int) -> list[tuple[str, str]]:
    """(key, docstring) of functions and classes under root, in sorted file order, up to limit."""
    out: list[tuple[str, str]] = []
    files = sorted(p for p in root.rglob("*.py") if "tests" not in p.parts and "test" not in p.parts)[:MAX_FILES]
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc.split()) >= MIN_WORDS:
                    out.append((f"{root.name}/{path.relative_to(root).as_posix()}:{node.name}:{node.lineno}", doc[:MAX_CHARS]))
                    if len(out) >= limit:
                        return out
    return out


@cache
def docstring_items() -> tuple[tuple[str, bytes, int, None], ...]:
    """(key, text, target, None) rows, targets in PACKAGES order; packages missing here are skipped."""
    site = Path(sysconfig.get_paths()["purelib"])
    items = []
    for target, (package, limit) in enumerate(PACKAGES.items()):
        for key, doc in _docstrings(site / package, limit):
            items.append((key, doc.encode(), target, None))
    return tuple(items)


def docstrings() -> TrainingSnapshot:
    """The docstrings as a text snapshot with one label per package."""
    return make_snapshot("text", list(PACKAGES), list(docstring_items()), dataset="docstrings")


def breast_cancer() -> TrainingSnapshot:
    """scikit-learn's breast_cancer (569 rows, 30 features, 2 classes) as JSON feature objects."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    items = [
        (f"b{i:03d}", json.dumps(dict(zip(d.feature_names, map(float, row)))).encode(), int(t), None)
        for i, (row, t) in enumerate(zip(d.data, d.target))
    ]
    return make_snapshot("tabular", [str(n) for n in d.target_names], items, dataset="breast_cancer")
