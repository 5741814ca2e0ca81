"""The working-folder step of the versioning benchmark: `s2 checkout` from v1 to v3 and back, beside `git checkout`
of the same files (plain git, and git with git-lfs holding the images).

The peers' repositories hold exactly the files s2 writes (each version's ImageFolder tree), built untimed
from s2's own working folder; then each tool moves a working tree from v1 to v3 and back, which rewrites
only what differs (the 1% relabeled files move folders, the 1% added ones appear and go).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from _harness import Measured, count_files, run

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}


def has_git_lfs() -> bool:
    return subprocess.run(["git", "lfs", "version"], capture_output=True).returncode == 0


def _git(repo: Path, *args, env: dict) -> Measured:
    return run(["git", *args], cwd=repo, env=env)


def _init(repo: Path, env: dict) -> None:
    _git(repo, "init", "-q", "-b", "main", env=env)
    for k, v in (("user.name", "bench"), ("user.email", "bench@example.invalid"), ("commit.gpgsign", "false"), ("gc.auto", "0")):
        _git(repo, "config", k, v, env=env)


def s2_checkouts(s2, revs: list[str], work: Path) -> dict[str, Measured]:
    """s2 checkout v1 (a full write), then v1 -> v3 and v3 -> v1, each a timed CLI command.

    With a fourth revision (v3 plus a fixed number of relabels, the same change at every N), the
    tree is then moved to v3 (untimed) and the fixed move timed there and back: the scaling goal
    compares that move across N, since v1 -> v3 changes 2% of N files, ten times more at 1M.
    """
    s2.step = "checkout"
    full = s2.s2("checkout", "bench", revs[0], work)
    there = s2.s2("checkout", "bench", revs[2], work)
    back = s2.s2("checkout", "bench", revs[0], work)
    result = {"full": full, "forth": there, "back": back}
    if len(revs) > 3:
        s2.s2("checkout", "bench", revs[2], work)
        result["fixed_forth"] = s2.s2("checkout", "bench", revs[3], work)
        result["fixed_back"] = s2.s2("checkout", "bench", revs[2], work)
    return result


def git_repo(s2, revs: list[str], root: Path, env: dict) -> Path:
    """A git repository whose commits v1, v2, v3 hold the files of s2's v1, v2, v3 (built with s2 checkout, untimed)."""
    tree = root / "git-src"
    for i, rev in enumerate(revs, 1):
        run([s2.exe, "checkout", "bench", rev, tree], cwd=root, env=s2.env)
        if i == 1:
            _init(tree, env)
            (tree / ".gitignore").write_text(".s2/\n")
        _git(tree, "add", "-A", env=env)
        _git(tree, "commit", "-q", "-m", f"v{i}", env=env)
        _git(tree, "tag", f"v{i}", env=env)
    return tree


def git_checkouts(source: Path, root: Path, env: dict, lfs: bool) -> dict[str, Measured]:
    """A clone of source at v1, then `git checkout v3` and back to v1 (with git-lfs: the PNGs in LFS)."""
    name = "git-lfs" if lfs else "git"
    repo = root / name
    if lfs:
        migrated = root / "lfs-src"
        _git(root, "clone", "-q", "--no-local", source, migrated, env=env)
        _git(migrated, "lfs", "install", "--local", env=env)
        _git(migrated, "lfs", "migrate", "import", "--include=*.png", "--everything", "--yes", env=env)
        source = migrated
    _git(root, "clone", "-q", "--no-checkout", source, repo, env=env)
    if lfs:
        _git(repo, "lfs", "install", "--local", env=env)
    _git(repo, "checkout", "-q", "v1", env=env)
    forth = _git(repo, "checkout", "-q", "v3", env=env)
    back = _git(repo, "checkout", "-q", "v1", env=env)
    return {"files": count_files(repo, ".png"), "forth": forth, "back": back}


def compare(s2, revs: list[str], root: Path, lfs: bool = True, peers: bool = True) -> dict:
    """Every tool's checkout times; the s2 working tree checked against git's (peers=False: s2 alone)."""
    env = dict(os.environ, **GIT_ENV)
    result = {"s2": s2_checkouts(s2, revs, root / "s2-work")}
    if not peers:
        shutil.rmtree(root / "s2-work", ignore_errors=True)
        return result
    s2.s2("checkout", "bench", revs[0], root / "s2-work")  # the tree git's is compared with: v1
    revs = revs[:3]
    source = git_repo(s2, revs, root, env)
    result["git"] = git_checkouts(source, root, env, lfs=False)
    if lfs and has_git_lfs():
        result["git-lfs"] = git_checkouts(source, root, env, lfs=True)
    ours = {p.relative_to(root / "s2-work") for p in (root / "s2-work").rglob("*.png")}
    theirs = {p.relative_to(root / "git") for p in (root / "git").rglob("*.png")}
    result["same_files"] = ours == theirs
    for folder in ("s2-work", "git-src", "git", "lfs-src", "git-lfs"):
        shutil.rmtree(root / folder, ignore_errors=True)
    return result
