"""Where an s2 server's time goes under load: summarize py-spy's raw (collapsed-stack) output.

    python bench/_load_profile.py PROFILE.txt      # or through `bench/api_load.py --profile`

PROFILE.txt: `py-spy record -f raw --full-filenames --nolineno --gil -p SERVER_PID -s`.

Samples are split by the step of the request path they are in (the first matching frame, innermost first):
the auth token lookup, `branch_of`, staging the edit, its audit record, fetching the example, the transaction
machinery (connection checkout, pre-ping, BEGIN/COMMIT), response serialization, and the framework around the
route (uvicorn, Starlette/FastAPI, the thread pool); plus the functions with the most samples inclusive.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent) + "/"

# (bucket, frame substrings): the first bucket with a frame on the stack, scanning from the innermost frame out,
# so that e.g. the pre-ping inside the auth transaction counts as transaction machinery, not as auth.
STEPS = [
    ("SQLAlchemy event-dispatch set-up of a new Session class (a sessionmaker() per transaction)", ("sqlalchemy/event/",)),
    ("thread-pool hand-off (waking a worker thread, queue, GIL)", ("Condition.notify", "Condition.wait", "Queue.put", "Queue.get")),
    (
        "DB connection checkout + pre-ping (pool)",
        ("_ConnectionFairy._checkout", "QueuePool", "_do_ping", "do_ping", "pool/base.py", "pool/impl.py"),
    ),
    ("COMMIT / ROLLBACK", ("do_commit", "do_rollback", "Connection._commit_impl", "Connection._rollback_impl")),
    (
        "SQLAlchemy statement execution (compile, cache key, result and ORM rows)",
        ("Session.execute", "Session.scalar", "Session.scalars", "Session.get ", "Session.flush", "Connection.execute"),
    ),
    ("pydantic validation / serialization", ("pydantic", "serialize_response", "jsonable_encoder")),
]
ROUTE = [  # the step of the route a sample in a worker thread is in: the first (function, file) on its stack
    ("auth: token lookup transaction (current_user)", [("current_user", "server/api/deps.py")]),
    ("label: branch_of read transaction", [("branch_of", "server/datasets/examples.py")]),
    ("label: audit record", [("record", "server/auth/service.py")]),
    ("label: stage_edits", [("stage_edits", "server/datasets/staging.py")]),
    ("label: rest of its write transaction (session, BEGIN/COMMIT)", [("write", "server/api/deps.py")]),
    ("fetch: get_example", [("get_example", "server/datasets/examples.py")]),
    ("fetch: rest of its read transaction (session, BEGIN/COMMIT)", [("read", "server/api/deps.py")]),
]
EVENT_LOOP = "event loop: uvicorn, middleware, routing, dependencies, response (outside the worker threads)"


def _is(frame: str, func: str, file: str) -> bool:
    return frame.startswith(func + " (") and frame.endswith(file + ")")


def load(path: str) -> list[tuple[list[str], int]]:
    stacks = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            frames, _, count = line.rpartition(" ")
            parts = frames.split(";")
            stacks.append((parts[1:] if parts and parts[0].startswith("process ") else parts, int(count)))
    return stacks


def summarize(path: str, top: int = 15) -> str:
    stacks = load(path)
    total = sum(c for _, c in stacks)
    if not total:
        return "(no samples)"
    route: dict[str, int] = {}
    kind: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    for frames, count in stacks:
        if not any(f.startswith("WorkerThread.run (") for f in frames):
            step = EVENT_LOOP
        else:
            step = next(
                (name for name, pairs in ROUTE if any(_is(f, fn, fl) for f in frames for fn, fl in pairs)),
                "worker thread: other (thread pool, route wrapper)",
            )
        route[step] = route.get(step, 0) + count
        inner = next((name for f in reversed(frames) for name, keys in STEPS if any(k in f for k in keys)), "Python code")
        kind[inner] = kind.get(inner, 0) + count
        for f in set(frames):
            inclusive[f] = inclusive.get(f, 0) + count
    lines = [f"{total} samples (GIL held).", "", "| request step | share |", "|---|---:|"]
    lines += [f"| {name} | {100 * c / total:.1f}% |" for name, c in sorted(route.items(), key=lambda kv: -kv[1])]
    lines += ["", "| what the time is spent on (innermost match) | share |", "|---|---:|"]
    lines += [f"| {name} | {100 * c / total:.1f}% |" for name, c in sorted(kind.items(), key=lambda kv: -kv[1])]
    lines += ["", f"| function (top {top}, inclusive, s2's own code) | share |", "|---|---:|"]
    ours = [(f.replace(ROOT, ""), c) for f, c in inclusive.items() if "/server/" in f and "server/cli/" not in f]
    lines += [f"| `{f}` | {100 * c / total:.1f}% |" for f, c in sorted(ours, key=lambda kv: -kv[1])[:top]]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarize(sys.argv[1]))
