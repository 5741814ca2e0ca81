"""The geometry of a run's curves, so the server draws the same SVG the page's module redraws live.

Kept to plain numbers (no SVG text here): the template writes the elements, escaping what it writes.
server/dashboards/static/run.js holds the same layout constants and scaling; change both together.
"""

import math
from dataclasses import dataclass, field

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 12, 40  # room for the tick labels and the axis titles


@dataclass
class Chart:
    """One chart: its series as SVG point lists, its ticks, and its axis titles."""

    x_title: str
    y_title: str
    lines: list[dict] = field(default_factory=list)  # {"name", "css", "points": "x,y x,y", "dots": [(x, y)]}
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM
    width: int = WIDTH
    height: int = HEIGHT


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5, 10 times a power of ten that is at least value (the y axis' top)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(power * m for m in (1, 2, 2.5, 5, 10) if power * m >= value * (1 - 1e-9))


def tick_label(value: float) -> str:
    """A tick's text: at most three significant digits (JS: Number(v.toPrecision(3)).toString())."""
    if value == 0:
        return "0"
    return f"{float(f'{value:.3g}'):.10f}".rstrip("0").rstrip(".")


def _scale(chart: Chart, x_max: float, y_max: float):
    def to_xy(x: float, y: float) -> tuple[float, float]:
        px = chart.left + (chart.right - chart.left) * (x / x_max)
        py = chart.bottom - (chart.bottom - chart.top) * (min(max(y, 0.0), y_max) / y_max)
        return round(px, 1), round(py, 1)

    return to_xy


def _ticks(chart: Chart, to_xy, x_max: float, y_max: float, whole_x: bool) -> None:
    for i in range(5):
        x = x_max * i / 4
        if whole_x:
            x = math.floor(x + 0.5)  # as JS's Math.round
        if not chart.x_ticks or chart.x_ticks[-1][1] != tick_label(x):
            chart.x_ticks.append((to_xy(x, 0)[0], tick_label(x)))
        y = y_max * i / 4
        chart.y_ticks.append((to_xy(0, y)[1], tick_label(y)))


def loss_chart(progress: dict | None) -> Chart | None:
    """Train loss by step (the kept step losses) and eval loss at each epoch's end; None before any loss."""
    progress = progress or {}
    points = [p for p in progress.get("points") or [] if p[1] is not None]
    evals = [(e["step"], e["eval_loss"]) for e in progress.get("epoch_ends") or [] if e.get("eval_loss") is not None and e.get("step")]
    if not points and not evals:
        return None
    x_max = max([progress.get("total_steps") or 0, *[p[0] for p in points], *[s for s, _ in evals]]) or 1
    y_max = nice_ceiling(max([p[1] for p in points] + [v for _, v in evals]))
    chart = Chart(x_title="step", y_title="loss")
    to_xy = _scale(chart, x_max, y_max)
    _ticks(chart, to_xy, x_max, y_max, whole_x=True)
    if points:
        drawn = [to_xy(s, v) for s, v in points]
        chart.lines.append({"name": "train loss", "css": "train", "points": _path(drawn), "dots": drawn[-1:]})  # where it is now
    if evals:
        drawn = [to_xy(s, v) for s, v in evals]
        chart.lines.append({"name": "eval loss (epoch end)", "css": "eval", "points": _path(drawn), "dots": drawn})
    return chart


def accuracy_chart(progress: dict | None) -> Chart | None:
    """Eval accuracy at each epoch's end (0 to 1); None when the run reports none."""
    rows = [(e["epoch"], e["eval_accuracy"]) for e in (progress or {}).get("epoch_ends") or [] if e.get("eval_accuracy") is not None]
    if not rows:
        return None
    x_max = max([(progress or {}).get("epochs") or 0, *[epoch for epoch, _ in rows]]) or 1
    chart = Chart(x_title="epoch", y_title="accuracy")
    to_xy = _scale(chart, x_max, 1.0)
    _ticks(chart, to_xy, x_max, 1.0, whole_x=True)
    drawn = [to_xy(epoch, value) for epoch, value in rows]
    chart.lines.append({"name": "eval accuracy", "css": "accuracy", "points": _path(drawn), "dots": drawn})
    return chart


def _path(drawn: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:g},{y:g}" for x, y in drawn)
