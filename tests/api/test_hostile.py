"""A hostile client against a real `s2 serve`: bodies before authentication, oversized JSON, damaged
archives, zip bombs and pixel bombs each get a clear 4xx, change nothing, and cost the server no memory."""

import io
import json
import os
import socket
import struct
import tarfile
import threading
import time
import zipfile
import zlib
from pathlib import Path

import httpx

from tests.api.factories import imported
from tests.api.test_uploads import assert_refused, commit_ids, create, csv_bytes, refusal, upload, zip_bytes
from tests.factories import png_bytes

MB = 1 << 20


def server_pid(api) -> int:
    """The process id of the `s2 serve` this test started (a child of this process, found by its port)."""
    port = api.url.rsplit(":", 1)[1].encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # a process that ended meanwhile
        if parent == os.getpid() and b"serve" in args and port in args:
            return int(proc.name)
    raise AssertionError(f"no s2 serve process on port {port.decode()}")


def rss_mb(pid: int) -> float:
    """The resident memory of a process, in MiB (VmRSS of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def healthz_seconds(api) -> float:
    """How long /healthz takes to answer (it must answer 200)."""
    start = time.monotonic()
    assert httpx.get(f"{api.url}/healthz", timeout=30).status_code == 200
    return time.monotonic() - start


class RawRequest:
    """A request written to a socket by hand: its head at once, then (optionally) its body from a thread, while the answer is read."""

    def __init__(self, api, method: str, path: str, headers: dict[str, str]):
        host, port = api.url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", *(f"{k}: {v}" for k, v in headers.items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.started, self.sent, self.sender = time.monotonic(), 0, None

    def stream(self, total: int, chunk: bytes) -> None:
        """Send up to total bytes of body, chunk after chunk, from a thread; it stops when the server closes the connection."""

        def push():
            try:
                while self.sent < total:
                    piece = chunk[: total - self.sent]
                    self.sock.sendall(piece)
                    self.sent += len(piece)
            except OSError:
                pass  # refused: the server closed the connection on the rest of the body

        self.sender = threading.Thread(target=push, daemon=True)
        self.sender.start()

    def answer(self, timeout: float) -> tuple[int, dict, float]:
        """(status, problem+json body, seconds since the head was sent); fails if none comes within timeout."""
        self.sock.settimeout(timeout)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                got = self.sock.recv(65536)
                assert got, f"the server closed the connection without an answer: {data!r}"
                data += got
            head, _, body = data.partition(b"\r\n\r\n")
            headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
            headers = {k.lower(): v for k, v in headers.items()}
            while len(body) < int(headers["content-length"]):
                got = self.sock.recv(65536)
                assert got, "the server closed the connection in the middle of its answer"
                body += got
        except TimeoutError:
            raise AssertionError(f"no answer within {timeout} s (the server is reading the body?)") from None
        elapsed = time.monotonic() - self.started
        assert headers["content-type"].startswith("application/problem+json"), headers
        return int(head.split()[1]), json.loads(body), elapsed

    def close(self) -> None:
        """Close the connection and wait for the sending thread."""
        self.sock.close()
        if self.sender is not None:
            self.sender.join(timeout=30)


def refused(c, r, where: int | str, *names: str) -> None:
    """An upload refused at once with status `where`, or by its import job ("job"), naming each of names."""
    kind, detail = refusal(c, r)
    assert kind == where, (kind, detail)
    assert all(name in detail for name in names), (names, detail)


def multipart_head(boundary: str = "s2-hostile") -> str:
    """The Content-Type of a multipart upload."""
    return f"multipart/form-data; boundary={boundary}"


def test_a_strangers_huge_json_body_is_refused_before_it_is_read(api):
    """An anonymous 200 MB JSON body: 401 from its headers at once, /healthz answers meanwhile, the server's memory does not grow."""
    pid = server_pid(api)
    with api.client() as anonymous:
        assert_refused(anonymous.post("/datasets", json={"name": "warm-up"}), 401, "token")
    healthz_seconds(api)
    before = rss_mb(pid)

    attack = RawRequest(api, "POST", "/api/v1/datasets", {"Content-Type": "application/json", "Content-Length": str(200 * MB)})
    attack.stream(200 * MB, b"[0" + b",0" * (MB // 2 - 1))  # JSON-looking bytes
    assert healthz_seconds(api) < 1.0
    status, problem, elapsed = attack.answer(timeout=20)
    attack.close()
    after = rss_mb(pid)
    assert status == 401 and "token" in problem["detail"], problem
    assert elapsed < 2.0, f"answered after {elapsed:.1f} s"
    assert after - before < 4, f"server RSS grew {before:.1f} -> {after:.1f} MiB"
    assert healthz_seconds(api) < 1.0

    # A route that needs no token (here: one that does not exist) still caps the body, from the headers.
    stray = RawRequest(api, "POST", "/api/v1/nothing-here", {"Content-Type": "application/json", "Content-Length": str(200 * MB)})
    status, problem, elapsed = stray.answer(timeout=20)
    stray.close()
    assert status == 413 and "S2_JSON_MAX_BYTES" in problem["detail"] and elapsed < 2.0, problem
    assert rss_mb(pid) - before < 4
    with api.admin as c:
        assert c.get("/datasets").json()["items"] == []
    assert "Traceback" not in api.log()


def test_an_upload_is_authenticated_before_its_body_is_read(api_factory):
    """An import without a token, or with a bad one, is a 401 from its headers alone; a known caller's is
    bounded by S2_UPLOAD_MAX_BYTES (from Content-Length: 413 at once), and under it imports as before."""
    api = api_factory(S2_UPLOAD_MAX_BYTES=str(8 * MB))
    with api.admin as c:
        create(c, "texts", "text", ("pos", "neg"))
    declared = {"Content-Type": multipart_head(), "Content-Length": str(4 * MB)}  # under the upload limit: only the token stops it
    for headers, expected in [
        (declared, "no API token"),
        ({**declared, "Authorization": "Bearer not-a-token"}, "unknown API token"),
        ({**declared, "Authorization": "Basic cm9vdDpyb290"}, "no API token"),
    ]:
        request = RawRequest(api, "POST", "/api/v1/datasets/texts/imports", headers)  # the head only: no body is ever sent
        status, problem, elapsed = request.answer(timeout=10)
        request.close()
        assert status == 401 and expected in problem["detail"] and elapsed < 2.0, (headers, problem)
        assert problem["instance"] == "/api/v1/datasets/texts/imports"

    admin = {"Authorization": f"Bearer {api.admin_token}"}
    request = RawRequest(api, "POST", "/api/v1/datasets/texts/imports", {**declared, **admin, "Content-Length": str(9 * MB)})
    status, problem, elapsed = request.answer(timeout=10)
    request.close()
    assert status == 413 and "S2_UPLOAD_MAX_BYTES" in problem["detail"] and elapsed < 2.0, problem

    # Over the JSON cap, under the upload limit: an import still takes it.
    big = csv_bytes([[f"t{i}", "pos", "x" * 100] for i in range(30_000)], ("key", "label", "text"))
    assert 2 * MB < len(big) < 8 * MB
    with api.admin as c:
        assert imported(c, upload(c, "texts", ("big.csv", big)))["changes"] == 30_000
        assert len(commit_ids(c, "texts")) == 2
    assert "Traceback" not in api.log()


def test_json_bodies_over_the_cap_are_413_even_from_a_known_caller(api):
    """A body over S2_JSON_MAX_BYTES (1 MiB by default) on any route but an import: 413, declared or streamed; nothing changes."""
    labels = [f"label-{i:06d}" for i in range(100_000)]
    body = json.dumps({"name": "huge", "modality": "image", "labels": labels}).encode()
    assert len(body) > 1.2 * MB
    with api.admin as c:
        assert_refused(c.post("/datasets", content=body, headers={"content-type": "application/json"}), 413, "S2_JSON_MAX_BYTES")
        streamed = c.post(
            "/datasets",
            content=(body[i : i + 65536] for i in range(0, len(body), 65536)),  # chunked: no Content-Length
            headers={"content-type": "application/json"},
        )
        assert_refused(streamed, 413, "S2_JSON_MAX_BYTES")
        multipart = httpx.Request("POST", "http://unused", files={"file": ("x.bin", b"x" * (2 * MB))})
        r = c.post("/datasets", content=multipart.read(), headers={"content-type": multipart.headers["content-type"]})
        assert_refused(r, 413, "S2_JSON_MAX_BYTES")
        assert c.get("/datasets").json()["items"] == []
        create(c, "small", labels=tuple(labels[:1000]))  # under the cap: as before
        assert c.get("/datasets/small").json()["labels"][-1] == labels[999]
    assert "Traceback" not in api.log()


def damaged_deflate(members: dict[str, bytes], victim: str) -> bytes:
    """A zip of members whose victim's deflate data is damaged (an invalid block type), its sizes and CRC intact."""
    data = bytearray(zip_bytes(members))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        local = zf.getinfo(victim).header_offset
    name_len, extra_len = struct.unpack("<HH", data[local + 26 : local + 30])
    data[local + 30 + name_len + extra_len] = 0x07  # BFINAL=1, BTYPE=11 (reserved): "invalid block type"
    return bytes(data)


def bad_crc(members: dict[str, bytes], victim: str) -> bytes:
    """A zip of members whose victim's recorded CRC-32 (in its local header and the central directory) is wrong."""
    data = bytearray(zip_bytes(members))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo(victim)
    wrong = struct.pack("<I", info.CRC ^ 0xFFFFFFFF)
    data[info.header_offset + 14 : info.header_offset + 18] = wrong
    entry = data.find(b"PK\x01\x02")  # the central directory's first entry
    while data[entry + 46 : entry + 46 + struct.unpack("<H", data[entry + 28 : entry + 30])[0]].decode() != victim:
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[entry + 28 : entry + 34])
        entry += 46 + name_len + extra_len + comment_len
    data[entry + 16 : entry + 20] = wrong
    return bytes(data)


def test_damaged_archive_members_are_422_naming_upload_and_member(api):
    """Damaged deflate data (an image read in place, a table unpacked to disk), a wrong CRC, a damaged tar.gz: each a 422, nothing lands."""
    images = {"cat/a.png": png_bytes(1), "cat/b.png": png_bytes(2), "dog/c.png": png_bytes(3)}
    table = {"d/l.csv": csv_bytes([[f"k{i}", "cat", "i/0.png"] for i in range(500)]), "d/i/0.png": png_bytes(4)}
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w:gz") as tf:
        for name, data in images.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    damaged_tar = bytearray(tarred.getvalue())
    damaged_tar[len(damaged_tar) // 2 : len(damaged_tar) // 2 + 64] = b"\xff" * 64
    with api.admin as c:
        create(c, "pets")
        imported(c, upload(c, "pets", ("ok.zip", zip_bytes({"cat/ok.png": png_bytes(9)}))))
        before = commit_ids(c, "pets")
        cases = [  # a zip's images are read in place by the import job; tables and tars are unpacked at upload
            (("pets.zip", damaged_deflate(images, "cat/b.png")), "job", ["pets.zip", "cat/b.png"]),
            (("table.zip", damaged_deflate(table, "d/l.csv")), 422, ["table.zip", "d/l.csv"]),
            (("crc.zip", bad_crc(images, "dog/c.png")), "job", ["crc.zip", "dog/c.png"]),
            (("pets.tar.gz", bytes(damaged_tar)), 422, ["pets.tar.gz"]),
        ]
        for file, where, names in cases:
            refused(c, upload(c, "pets", file), where, *names)
        assert commit_ids(c, "pets") == before
    assert "Traceback" not in api.log()


def zip_bomb(name: str, size: int) -> bytes:
    """A small zip holding one member of size zero bytes (deflate squeezes them about 1000:1)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open(name, "w", force_zip64=True) as member:
            zero = bytes(MB)
            for _ in range(size // MB):
                member.write(zero)
    return buf.getvalue()


def test_a_zip_bomb_member_is_422_and_never_inflated(api):
    """A 5 MB zip declaring a 1 GiB image: 422 naming it and S2_INPUT_MAX_BYTES, and the server's memory stays flat."""
    pid = server_pid(api)
    bomb = zip_bomb("cat/bomb.png", 1 << 30)
    assert len(bomb) < 8 * MB
    with api.admin as c:
        create(c, "pets")
        imported(c, upload(c, "pets", ("ok.zip", zip_bytes({"cat/ok.png": png_bytes(1)}))))  # warm-up
        before, commits = rss_mb(pid), commit_ids(c, "pets")
        assert_refused(upload(c, "pets", ("bomb.zip", bomb)), 422, "bomb.zip", "cat/bomb.png", "S2_INPUT_MAX_BYTES")
        after = rss_mb(pid)
        assert after - before < 16, f"server RSS grew {before:.1f} -> {after:.1f} MiB"
        assert commit_ids(c, "pets") == commits
    assert "Traceback" not in api.log()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height RGB pixels but carries only a few: what a pixel bomb looks like."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(1024))) + chunk(b"IEND", b"")


def test_images_declaring_too_many_pixels_are_422_before_decoding(api):
    """A PNG header declaring 50000x50000 (Pillow's own guard) or 9000x9000 (over S2_IMAGE_MAX_PIXELS' 8192x8192): 422 naming the file."""
    with api.admin as c:
        create(c, "pets")
        before = commit_ids(c, "pets")
        r = upload(c, "pets", ("pets.zip", zip_bytes({"cat/ok.png": png_bytes(1), "cat/huge.png": png_header(50_000, 50_000)})))
        refused(c, r, "job", "cat/huge.png", "S2_IMAGE_MAX_PIXELS", "2500000000")
        table = csv_bytes([["k", "dog", "big.png"]])
        refused(
            c,
            upload(c, "pets", ("l.csv", table), ("big.png", png_header(9000, 9000))),
            "job",
            "big.png",
            "9000x9000",
            "S2_IMAGE_MAX_PIXELS",
        )
        assert commit_ids(c, "pets") == before
    assert "Traceback" not in api.log()


def test_input_and_pixel_limits_follow_their_settings(api_factory):
    """S2_INPUT_MAX_BYTES bounds an uploaded input file, a zip's or a tar's member; S2_IMAGE_MAX_PIXELS an image; under both, as before."""
    api = api_factory(S2_INPUT_MAX_BYTES="100000", S2_IMAGE_MAX_PIXELS="100")
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w:gz") as tf:
        info = tarfile.TarInfo("cat/big.png")
        info.size = 200_000
        tf.addfile(info, io.BytesIO(bytes(200_000)))
    with api.admin as c:
        create(c, "pets")
        before = commit_ids(c, "pets")
        assert_refused(upload(c, "pets", ("p.tar.gz", tarred.getvalue())), 422, "p.tar.gz", "cat/big.png", "S2_INPUT_MAX_BYTES")
        assert_refused(upload(c, "pets", ("z.zip", zip_bytes({"dog/big.png": bytes(200_000)}))), 422, "dog/big.png", "S2_INPUT_MAX_BYTES")
        table = csv_bytes([["k", "dog", "big.png"]])
        refused(c, upload(c, "pets", ("l.csv", table), ("big.png", bytes(200_000))), 422, "big.png", "S2_INPUT_MAX_BYTES")
        r = upload(c, "pets", ("z.zip", zip_bytes({"cat/a.png": png_bytes(1, size=10), "cat/b.png": png_bytes(2, size=11)})))
        refused(c, r, "job", "cat/b.png", "11x11", "S2_IMAGE_MAX_PIXELS")
        assert commit_ids(c, "pets") == before
        imported(c, upload(c, "pets", ("z.zip", zip_bytes({"cat/a.png": png_bytes(1, size=10)}))))
    assert "Traceback" not in api.log()
