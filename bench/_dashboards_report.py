"""The table bench/dashboards.py prints: s2's pages and MLflow's, side by side, with the goals."""

from __future__ import annotations

import os
import statistics
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dashboards import Target


def stats(values: list[float]) -> tuple[float, float]:
    """(median, p95) of some timings."""
    s = sorted(values)
    return statistics.median(s), s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


def fmt(values: list[float] | None) -> str:
    if not values:
        return "—"
    med, p95 = stats(values)
    return f"{med:.0f} / {p95:.0f}"


def report(
    targets: dict[tuple[str, str], Target], sizes: dict, loads: int, extra: dict, mlflow_version: str | None, cpu: str
) -> tuple[str, bool]:
    s2 = {name: t for (tool, name), t in targets.items() if tool == "s2"}
    peer = targets.get(("mlflow", "compare"))
    rows = [
        ("compare", "page", f"compare two models on {sizes['compare_n']:,} examples (`/d/cmp/compare/1...2`)", 1000),
        ("timeline", "page", f"timeline of a branch of {sizes['commits']:,} commits (`/d/hist/commits?branch=work`)", 500),
        ("diff", "page", f"diff of {sizes['relabels']:,} relabels, first page to its thumbnails painted", 500),
        ("diff", "summary", "  its summary fragment (htmx, counts + relabel matrix), remembered", None),
    ]
    ok = True
    lines = [
        f"Dashboards in headless Chromium, navigation start to the last table or chart painted; ms as median / p95 of {loads} loads"
        f" after a warm-up; first visit = empty browser cache, revisit = cached ({cpu})",
        "",
        f"| page | s2 first visit | s2 revisit | {'MLflow ' + mlflow_version if peer else 'peer'} first visit | peer revisit | goal | |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for name, mark, title, goal in rows:
        t = s2[name]
        first, again = t.times["first"].get(mark), t.times["revisit"].get(mark)
        verdict, goal_text, peer_first, peer_again = "", "", "—", "—"
        if goal is not None:
            passed = stats(first)[0] < goal
            ok &= passed
            verdict = "PASS" if passed else "FAIL"
            goal_text = f"< {goal:,} ms"
        if name == "compare" and peer is not None:
            peer_first, peer_again = fmt(peer.times["first"]["page"]), fmt(peer.times["revisit"]["page"])
            faster = stats(first)[0] < stats(peer.times["first"]["page"])[0] and stats(again)[0] < stats(peer.times["revisit"]["page"])[0]
            ok &= faster
            goal_text += "; faster than MLflow"
            verdict += "; " + ("PASS" if faster else "FAIL")
        lines.append(f"| {title} | {fmt(first)} | {fmt(again)} | {peer_first} | {peer_again} | {goal_text} | {verdict} |")
    if extra.get("first_summary") is not None:
        lines.append(f"| diff summary, first (warm-up load, before the server remembered it) | {extra['first_summary']:.0f} | | | | | |")
    lines += [
        "",
        "Where the time went (medians; first visit / revisit): the HTML's last byte; requests made before the page was"
        " painted (of them fetched from the network); the last of them answered.",
        "",
        "| page | HTML received ms | requests (fetched) | last response ms | |",
        "|---|---:|---:|---:|---|",
    ]
    for (tool, name), t in targets.items():
        f, r = t.details["first"], t.details["revisit"]

        def med(rows: list[dict], field: str) -> float:
            return statistics.median(d[field] for d in rows)

        thumbs = f"{med(f, 'thumbs'):.0f} thumbnails on the first screen" if f and f[0]["thumbs"] is not None else ""
        lines.append(
            f"| {tool} {name} | {med(f, 'html'):.0f} / {med(r, 'html'):.0f} | {med(f, 'requests'):.0f} ({med(f, 'fetched'):.0f}) /"
            f" {med(r, 'requests'):.0f} ({med(r, 'fetched'):.0f}) | {med(f, 'last_response'):.0f} / {med(r, 'last_response'):.0f} | {thumbs} |"
        )
    if peer is not None:
        lines += [
            "",
            "MLflow's compare-runs page shows each run's last value per metric (run table, a parallel coordinates plot, the"
            " metrics grid); it has no per-example predictions, so it cannot show which examples one model fixed or broke."
            " s2's compare page lists them (the flips table, with each example's label history between the two commits).",
        ]
    return "\n".join(lines), ok


def cpu_note() -> str:
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return f"{os.cpu_count()} cores, load average {load:.1f} at the end"
