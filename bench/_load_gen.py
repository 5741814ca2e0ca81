"""The API load benchmark's load generator: a process of its own, simulated labelers on asyncio + aiohttp.

    python bench/_load_gen.py PLAN.json RESULT.json      # run the labelers a plan describes
    python bench/_load_gen.py --echo PORT                # a no-op HTTP server, to measure this client's ceiling

Each labeler has its own connection (a ClientSession with a one-connection pool, keep-alive) and loops until
the plan's deadline: fetch its next example, label it, then think if the plan says so (think_ms > 0: a seeded
uniform 0.5-1.5 x think_ms each time, the first start staggered over 0-1 x think_ms, so that labelers do not move
in waves). Every request's start (s since the plan's start), kind, HTTP status and latency (request written ->
whole body read, ms) is recorded. Labelers start together at the plan's `start_at` (epoch seconds), so that
several generator processes can share one run. The result also holds every acknowledged edit, in the order each
labeler got its acknowledgements, and this process's CPU time.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import sys
import time

GET, PUT = 0, 1  # request kinds: fetch the example / stage the label (s2 PUT edit, Label Studio POST annotation)
NETWORK_ERROR = 0  # status recorded for a request that got no HTTP answer (refused, reset, timed out)


def cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


class Labeler:
    """One simulated labeler: its token, its keys (every N-th, so that labelers do not collide), its records."""

    def __init__(self, plan: dict, index: int, spec: dict):
        self.plan, self.index, self.token, self.keys = plan, index, spec["token"], spec["keys"]
        self.name = spec.get("name", str(index))
        self.records: list[tuple[float, int, int, float]] = []  # (start s, kind, status, latency ms)
        self.acks: list[list] = []  # s2: [key, label, labeler name]; Label Studio: [task id, label, annotation id]

    async def request(self, session, method: str, url: str, kind: int, body: dict | None = None):
        """One timed request; returns (status, parsed JSON or None)."""
        t0 = time.perf_counter()
        start = time.time() - self.plan["start_at"]
        try:
            async with session.request(method, url, json=body) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, OSError, Exception) as exc:  # aiohttp.ClientError and friends: no answer
            if isinstance(exc, asyncio.CancelledError):
                raise
            self.records.append((start, kind, NETWORK_ERROR, (time.perf_counter() - t0) * 1e3))
            return NETWORK_ERROR, None
        self.records.append((start, kind, status, (time.perf_counter() - t0) * 1e3))
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    async def run(self) -> None:
        import aiohttp

        plan = self.plan
        system, base, labels = plan["system"], plan["base"], plan["labels"]
        auth = {"Authorization": f"{'Token' if system == 'ls' else 'Bearer'} {self.token}"}
        timeout = aiohttp.ClientTimeout(total=plan["timeout"])
        connector = aiohttp.TCPConnector(limit=1)  # one connection per labeler, kept alive
        deadline = plan["start_at"] + plan["warmup"] + plan["duration"]
        think = plan["think_ms"] / 1e3
        rng = random.Random(f"think:{self.index}")  # labelers think for different times: no synchronized waves
        async with aiohttp.ClientSession(base, headers=auth, timeout=timeout, connector=connector) as session:
            await asyncio.sleep(max(0.0, plan["start_at"] - time.time()) + (rng.uniform(0, think) if think else 0.0))
            i = 0
            while time.time() < deadline:
                key = self.keys[i % len(self.keys)]
                label = labels[(i + self.index) % len(labels)]
                i += 1
                if system == "s2":
                    status, body = await self.request(
                        session, "GET", f"/api/v1/datasets/{plan['dataset']}/examples/{key}?rev={plan['branch']}", GET
                    )
                    if status != 200 or body is None:
                        await asyncio.sleep(0.05)  # an error: do not spin
                        continue
                    status, _ = await self.request(
                        session,
                        "PUT",
                        f"/api/v1/datasets/{plan['dataset']}/edits/{key}?branch={plan['branch']}",
                        PUT,
                        {"label": label, "version": body["version"]},
                    )
                    if status == 200:
                        self.acks.append([key, label, self.name])
                elif system == "ls":
                    status, body = await self.request(session, "GET", f"/api/tasks/{key}", GET)
                    if status != 200 or body is None:
                        await asyncio.sleep(0.05)
                        continue
                    result = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]
                    status, made = await self.request(
                        session, "POST", f"/api/tasks/{key}/annotations/", PUT, {"result": result, "lead_time": 1.0}
                    )
                    if status == 201 and made is not None:
                        self.acks.append([key, label, made.get("id")])
                else:  # echo: the client's own ceiling, the same two requests against a no-op server
                    status, body = await self.request(session, "GET", f"/examples/{key}", GET)
                    status, _ = await self.request(session, "PUT", f"/edits/{key}", PUT, {"label": label, "version": "1"})
                    if status == 200:
                        self.acks.append([key, label])
                if think:
                    await asyncio.sleep(rng.uniform(0.5, 1.5) * think)


async def run_plan(plan: dict) -> dict:
    labelers = [Labeler(plan, spec.get("index", i), spec) for i, spec in enumerate(plan["labelers"])]
    cpu0, t0 = cpu_seconds(), time.time()
    await asyncio.gather(*(lab.run() for lab in labelers))
    return {
        "records": [r for lab in labelers for r in lab.records],
        "acks": [a for lab in labelers for a in lab.acks],
        "cpu_s": cpu_seconds() - cpu0,
        "wall_s": time.time() - t0,
    }


# -- a no-op HTTP/1.1 server: the client's ceiling -------------------------------------------------
class Echo(asyncio.Protocol):
    BODY = b'{"key":"k","version":"1","label":"c0"}'
    ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(BODY)) + BODY

    def connection_made(self, transport) -> None:
        self.transport, self.buf = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15 :].split(b"\r\n", 1)[0])
            if len(self.buf) < head_end + 4 + length:
                return
            self.buf = self.buf[head_end + 4 + length :]
            self.transport.write(self.ANSWER)


async def echo(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port, backlog=1024)
    print(f"echo listening on {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    try:
        import uvloop  # the same loop for both sides of the comparison; a faster client

        uvloop.install()
    except ImportError:
        pass
    if sys.argv[1] == "--echo":
        asyncio.run(echo(int(sys.argv[2])))
        return
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    out = asyncio.run(run_plan(plan))
    out["pid"] = os.getpid()
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
