"""Hosts for multi-host tests: network namespaces on a private bridge, each with its own hostname and S2_HOME.

The root namespace keeps the shared services. PostgreSQL and Redis listen on its loopback only, so a
TCP forwarder bound to the bridge's address relays to them; the S3 server (moto) listens on the bridge
address itself. A host process is given only bridge addresses. Every name carries a random suffix so
two test runs on one machine never collide, and everything is removed on exit, also after a failure.
"""

import asyncio
import ipaddress
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def require_root_and_ip() -> None:
    """Fail the test at once, in one line, where namespaces cannot be made."""
    if os.geteuid() != 0:
        pytest.fail("multi-host tests need root: they make network namespaces, veth pairs and a bridge", pytrace=False)
    missing = [tool for tool in ("ip", "unshare", "hostname") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"multi-host tests need {', '.join(missing)} (iproute2, util-linux) on PATH", pytrace=False)


def ip(*args: str) -> None:
    """Run `ip ARGS`; a failure raises with what ip said."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")


def _free_subnet() -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 that no address or route on this machine overlaps."""
    listing = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    used = [ipaddress.ip_interface(line.split()[3]).network for line in listing.splitlines()]
    used += [ipaddress.ip_network(line.split()[0]) for line in routes.splitlines() if line.split()[0][0].isdigit()]
    while True:
        net = ipaddress.ip_network(f"10.{random.randint(100, 254)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(other) for other in used):
            return net


class Process:
    """A process started in its own process group (a session), so it can be killed with everything it started."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path):
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def signal(self, sig: int, timeout: float = 30) -> None:
        """Send sig to the whole process group and wait for the process; SIGKILL the group if it outlives timeout."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def output(self) -> str:
        """Everything the process logged so far."""
        return self.log_path.read_text(errors="replace")


class Host:
    """One host: a network namespace, a hostname of its own (a UTS namespace per process), an S2_HOME of its own."""

    def __init__(self, name: str, namespace: str, address: str, home: Path, env: dict[str, str]):
        self.name, self.namespace, self.address, self.home = name, namespace, address, home
        home.mkdir(parents=True)
        self.env = {**env, "S2_HOME": str(home / "s2"), "HOME": str(home)}
        self.processes: list[Process] = []

    def argv(self, *args: object) -> list[str]:
        """args as a command run on this host: in its network namespace, under its hostname."""
        set_name = 'hostname "$0" && exec "$@"'
        return ["ip", "netns", "exec", self.namespace, "unshare", "--uts", "sh", "-c", set_name, self.name, *map(str, args)]

    def run(self, *args: object) -> subprocess.CompletedProcess:
        """Run a command on this host to the end; raises with its output if it fails."""
        proc = subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{self.name}: {' '.join(map(str, args))} failed ({proc.returncode}): {proc.stderr}"
        return proc

    def start(self, log_name: str, *args: object) -> Process:
        """Start a long-lived command on this host, its output in HOME/log_name.log; stopped by Network.close."""
        process = Process(self.argv(*args), self.env, self.home / f"{log_name}.log")
        self.processes.append(process)
        return process


class Network:
    """A bridge in the root namespace with a veth pair to each host's namespace."""

    def __init__(self, root: Path):
        self.root, self.suffix = root, uuid.uuid4().hex[:6]
        self.subnet = _free_subnet()
        self.gateway = str(self.subnet[1])  # the root namespace's address on the bridge: the shared services
        self.bridge = f"s2br{self.suffix}"
        self.hosts: list[Host] = []
        self.created: list[tuple[str, ...]] = []  # `ip` arguments that undo each step, newest last

    def add_bridge(self) -> None:
        """The bridge, with the gateway address, up."""
        ip("link", "add", self.bridge, "type", "bridge")
        self.created.append(("link", "del", self.bridge))
        ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add_host(self, role: str, env: dict[str, str]) -> Host:
        """A new namespace on the bridge, its eth0 at the next address; env: the S2_* settings of its processes."""
        number = len(self.hosts) + 1
        namespace, veth = f"s2-{self.suffix}-{role}", f"s2v{self.suffix}{number}"
        address = str(self.subnet[10 + number])
        ip("netns", "add", namespace)
        self.created.append(("netns", "del", namespace))
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        self.created.append(("link", "del", veth))
        ip("link", "set", veth, "master", self.bridge, "up")
        ip("-n", namespace, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        host = Host(f"s2-{role}-{self.suffix}", namespace, address, self.root / role, env)
        self.hosts.append(host)
        return host

    def stop_processes(self) -> None:
        """Stop every host process, its whole group (SIGTERM, SIGKILL after 30 s)."""
        for host in self.hosts:
            for process in host.processes:
                process.signal(signal.SIGTERM)

    def close(self) -> None:
        """Stop every host process, then remove namespaces, veth pairs and the bridge."""
        self.stop_processes()
        leftovers = []
        for step in reversed(self.created):
            proc = subprocess.run(["ip", *step], capture_output=True, text=True)
            gone = "Cannot find device" in proc.stderr or "No such file" in proc.stderr  # a veth goes with its namespace
            if proc.returncode != 0 and not gone:
                leftovers.append(f"ip {' '.join(step)}: {proc.stderr.strip()}")
        assert not leftovers, f"could not remove the test network: {leftovers}"


class Forwarder:
    """Relays TCP connections made to (listen, an ephemeral port) to target; an asyncio loop in a thread of this process."""

    def __init__(self, listen: str, target: tuple[str, int]):
        self.target, self.connections = target, set[asyncio.Task]()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name=f"forward-{target[1]}")
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._relay, listen, 0), self.loop).result(10)
        self.address = (listen, self.server.sockets[0].getsockname()[1])

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections.add(asyncio.current_task())
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:  # the service is down: the client sees its connection closed, as it would
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))
        self.connections.discard(asyncio.current_task())

    def close(self) -> None:
        """Stop listening, drop every relayed connection, end the thread."""

        async def shutdown() -> None:
            self.server.close()
            for task in list(self.connections):
                task.cancel()
            await asyncio.gather(*self.connections, return_exceptions=True)  # cancelled on purpose

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until either side closes, then close the writer (which ends the other direction too)."""
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except ConnectionError:  # a peer reset: the relayed connection ends, like a direct one would
        pass
    finally:
        writer.close()


def free_port(address: str) -> int:
    """A port nothing listens on at address right now."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


@contextmanager
def moto_server(address: str, log_path: Path) -> Iterator[str]:
    """moto's S3 server in its own process on address; yields its endpoint URL."""
    port = free_port(address)
    server = Process([sys.executable, "-m", "moto.server", "-H", address, "-p", str(port)], dict(os.environ), log_path)
    url = f"http://{address}:{port}"
    try:
        wait_for_http(f"{url}/moto-api/", server, "moto's S3 server")
        yield url
    finally:
        server.signal(signal.SIGTERM, timeout=10)


def wait_for_http(url: str, process: Process, what: str, timeout: float = 60) -> None:
    """Wait until url answers 200; fail with the process's log if it exits or takes longer than timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise AssertionError(f"{what} exited with {process.proc.returncode}: {process.output()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not answer {url} within {timeout} s: {process.output()[-3000:]}")


@contextmanager
def network(root: Path) -> Iterator[Network]:
    """A Network, closed on exit (also when setting it up fails half-way)."""
    net = Network(root)
    try:
        net.add_bridge()
        yield net
    finally:
        net.close()
