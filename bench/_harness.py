"""Shared pieces of the versioning benchmark: timed subprocesses, sizes, the dataset."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import random
import sqlite3
import subprocess
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

from PIL import Image

CLASSES = [f"c{i}" for i in range(10)]
SIDE = 18  # 18x18 RGB noise -> ~1.06 KB PNG
CHUNK = 2000  # images per worker task


class CommandFailed(RuntimeError):
    """A benchmarked command exited non-zero."""


@dataclasses.dataclass
class Measured:
    """Wall-clock seconds and peak RSS (KiB, largest process of the tree) of commands."""

    seconds: float = 0.0
    peak_kib: int = 0
    stdout: str = ""

    def __add__(self, other: Measured) -> Measured:
        return Measured(self.seconds + other.seconds, max(self.peak_kib, other.peak_kib), other.stdout)


def run(cmd: list, *, cwd: Path, env: dict) -> Measured:
    """Run one command end to end as a user would; raise CommandFailed on non-zero exit."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # rusage covers the child and its waited-for descendants
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        if proc.returncode != 0:
            tail = (stdout + err.read().decode(errors="replace")).strip().splitlines()[-20:]
            raise CommandFailed(f"`{' '.join(map(str, cmd))}` (in {cwd}) exited {proc.returncode}:\n  " + "\n  ".join(tail))
    return Measured(seconds, usage.ru_maxrss, stdout)  # ru_maxrss is KiB on Linux


def sqlite_live_bytes(path: str) -> int | None:
    """Bytes of the live pages of an SQLite database (WAL included), None if not one."""
    with open(path, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            return None
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)  # read-only: never checkpoints
    try:
        size, count, free = (con.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count", "freelist_count"))
    finally:
        con.close()
    return (count - free) * size


def dir_bytes(*paths: Path) -> int:
    """Stored bytes below paths (missing paths count 0): apparent file sizes, except that an
    SQLite database counts its live pages and its -wal/-shm files count 0 (a WAL holds pages
    until a checkpoint copies them into the database, and is reused, not shrunk, after)."""
    total = 0
    stack = [str(p) for p in paths if os.path.exists(p)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.name.endswith(("-wal", "-shm")) and os.path.exists(entry.path[:-4]):
                    continue
                else:
                    size = entry.stat(follow_symlinks=False).st_size
                    if size >= 512 and entry.name.endswith((".db", ".sqlite", ".sqlite3")):
                        size = sqlite_live_bytes(entry.path) or size
                    total += size
    return total


def count_files(root: Path, suffix: str) -> int:
    """Number of files below root whose name ends with suffix."""
    return sum(1 for _, _, files in os.walk(root) for f in files if f.endswith(suffix))


def key_of(idx: int) -> str:
    return f"img{idx:07d}"


def image_name(idx: int) -> str:
    return f"{idx:07d}.png"


def png_bytes(seed: int, idx: int) -> bytes:
    """A deterministic ~1 KB RGB noise PNG for example idx."""
    raw = hashlib.shake_256(f"{seed}:{idx}".encode()).digest(SIDE * SIDE * 3)
    buf = io.BytesIO()
    Image.frombytes("RGB", (SIDE, SIDE), raw).save(buf, format="PNG")
    return buf.getvalue()


def _write_chunk(task: tuple[int, str, int, int]) -> int:
    seed, images_dir, lo, hi = task
    for idx in range(lo, hi):
        with open(os.path.join(images_dir, image_name(idx)), "wb") as f:
            f.write(png_bytes(seed, idx))
    return hi - lo


def write_images(seed: int, images_dir: Path, lo: int, hi: int) -> None:
    """Write the PNGs of examples lo..hi-1 (flat, so a relabel never moves a file)."""
    images_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(seed, str(images_dir), a, min(a + CHUNK, hi)) for a in range(lo, hi, CHUNK)]
    procs = min(os.cpu_count() or 1, len(tasks))
    if procs <= 1:
        for task in tasks:
            _write_chunk(task)
        return
    with get_context("fork").Pool(procs) as pool:
        for _ in pool.imap_unordered(_write_chunk, tasks):
            pass


class Dataset:
    """The benchmark's labeled image dataset: data/images/*.png + data/labels.csv."""

    def __init__(self, seed: int, data_dir: Path):
        self.seed, self.data_dir = seed, data_dir
        self.labels: list[str] = []

    @property
    def labels_csv(self) -> Path:
        return self.data_dir / "labels.csv"

    def _new_labels(self, lo: int, hi: int) -> list[str]:
        rng = random.Random(f"labels:{self.seed}:{lo}")
        return [CLASSES[rng.randrange(len(CLASSES))] for _ in range(lo, hi)]

    def _write_rows(self, path: Path, lo: int, hi: int, mode: str, image_prefix: str) -> None:
        with open(path, mode, newline="") as f:
            w = csv.writer(f)
            if mode == "w":
                w.writerow(["key", "label", "image"])
            w.writerows([key_of(i), self.labels[i], f"{image_prefix}images/{image_name(i)}"] for i in range(lo, hi))

    def generate(self, n: int) -> None:
        """Write n examples and labels.csv."""
        write_images(self.seed, self.data_dir / "images", 0, n)
        self.labels = self._new_labels(0, n)
        self._write_rows(self.labels_csv, 0, n, "w", "")

    def relabel(self, fraction: float, edits_csv: Path) -> tuple[int, int]:
        """Relabel a seeded random fraction; write edits_csv (key,label), rewrite labels.csv.

        Returns (rows changed, their bytes: len(key) + len(label) + 64 (input blob id) each).
        """
        n = len(self.labels)
        rng = random.Random(f"relabel:{self.seed}:{n}")
        picked = sorted(rng.sample(range(n), max(1, int(n * fraction))))
        changed = 0
        with open(edits_csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["key", "label"])
            for idx in picked:
                old = CLASSES.index(self.labels[idx])
                self.labels[idx] = CLASSES[(old + rng.randint(1, len(CLASSES) - 1)) % len(CLASSES)]
                w.writerow([key_of(idx), self.labels[idx]])
                changed += len(key_of(idx)) + len(self.labels[idx]) + 64
        self._write_rows(self.labels_csv, 0, n, "w", "")
        return len(picked), changed

    def add(self, fraction: float, new_csv: Path) -> int:
        """Add a fraction of new examples: images, rows appended to labels.csv, and new_csv
        holding only the new rows (image paths relative to new_csv). Returns how many."""
        lo = len(self.labels)
        hi = lo + max(1, int(lo * fraction))
        write_images(self.seed, self.data_dir / "images", lo, hi)
        self.labels += self._new_labels(lo, hi)
        self._write_rows(self.labels_csv, lo, hi, "a", "")
        prefix = os.path.relpath(self.data_dir, new_csv.parent) + "/"
        self._write_rows(new_csv, lo, hi, "w", prefix)
        return hi - lo
