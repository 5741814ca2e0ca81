#!/usr/bin/env python3
"""Fetch the pinned third-party browser files from the npm registry into server/web/static/vendor/.

    python scripts/refresh-vendor.py            # the versions server/web/vendor.json pins (checks their hashes)
    python scripts/refresh-vendor.py --upgrade  # the newest release within each package's "range" (a major version)

Each package tarball is checked against the registry's sha512 before a file is taken from it; the
file's own sha384 goes into the manifest as its Subresource Integrity value, which the pages send
in `integrity=` and the tests check against the served bytes. Needs the network; the app never does.
"""

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "server" / "web" / "vendor.json"
TARGET = ROOT / "server" / "web" / "static" / "vendor"
REGISTRY = "https://registry.npmjs.org"


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def newest(name: str, major: str) -> str:
    versions = json.loads(get(f"{REGISTRY}/{name}"))["versions"]
    stable = [v for v in versions if v.split(".")[0] == major and "-" not in v]
    return max(stable, key=lambda v: tuple(int(p) for p in v.split(".")))


def sri(data: bytes, algo: str = "sha384") -> str:
    return f"{algo}-" + base64.b64encode(hashlib.new(algo, data).digest()).decode()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upgrade", action="store_true", help="move each package to the newest release of its range")
    args = p.parse_args()
    manifest = json.loads(MANIFEST.read_text())
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, pkg in manifest["packages"].items():
        version = newest(name, pkg["range"]) if args.upgrade else pkg["version"]
        meta = json.loads(get(f"{REGISTRY}/{name}/{version}"))
        tarball = get(meta["dist"]["tarball"])
        if sri(tarball, "sha512") != meta["dist"]["integrity"]:
            print(f"{name}@{version}: the tarball does not match the registry's sha512; nothing written", file=sys.stderr)
            return 1
        if pkg.get("tarball_integrity") and version == pkg["version"] and pkg["tarball_integrity"] != meta["dist"]["integrity"]:
            print(f"{name}@{version}: the registry's tarball changed since it was pinned; nothing written", file=sys.stderr)
            return 1
        with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
            data = tar.extractfile(f"package/{pkg['file']}").read()
        out = TARGET / f"{name.split('/')[-1]}-{version}.js"
        for old in TARGET.glob(f"{name.split('/')[-1]}-*.js"):
            if old != out:
                old.unlink()
        out.write_bytes(data)
        pkg.update(version=version, tarball_integrity=meta["dist"]["integrity"], integrity=sri(data))
        print(f"{name}@{version}: {out.relative_to(ROOT)} ({len(data):,} bytes) {pkg['integrity']}")
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
