"""A run's curves while it trains, kept in its progress record so a page opened mid-run draws the whole curve.

The trainer reports a loss every few steps and, at each epoch's end, the epoch's mean loss and the
eval metrics. Only the latest report used to be stored; this keeps a bounded history beside it:
`points` ([step, loss] pairs, thinned by halves past MAX_POINTS so a long run stays a few kB) and
`epoch_ends` (one row per finished epoch: its step, mean train loss, eval loss and eval accuracy).
"""

MAX_POINTS = 120  # step losses kept; a chart 600 px wide gains nothing from more
EPOCH_KEYS = ("eval_loss", "eval_accuracy")  # present only in the trainer's end-of-epoch report


class CurveHistory:
    """The history of one run's progress reports, merged into each progress record written."""

    def __init__(self) -> None:
        self.points: list[list[float]] = []
        self.epochs: list[dict] = []
        self.stride, self.seen = 1, 0  # keep every stride-th step report

    def add(self, info: dict) -> None:
        """Take one progress report (every report, even those not written, so no epoch is missed)."""
        if any(key in info for key in EPOCH_KEYS):
            self._add_epoch(info)
        elif info.get("loss") is not None and info.get("step"):
            self._add_point(int(info["step"]), float(info["loss"]))

    def record(self, info: dict) -> dict:
        """The progress record to store: the latest report with the history so far."""
        return {**info, "points": [list(p) for p in self.points], "epoch_ends": list(self.epochs)}

    def _add_point(self, step: int, loss: float) -> None:
        self.seen += 1
        if (self.seen - 1) % self.stride:
            return
        self.points.append([step, round(loss, 6)])
        if len(self.points) > MAX_POINTS:
            self.points, self.stride = self.points[::2], self.stride * 2

    def _add_epoch(self, info: dict) -> None:
        row = {"epoch": info.get("epoch"), "step": info.get("step"), "loss": info.get("loss")}
        row.update({key: info.get(key) for key in EPOCH_KEYS})
        if self.epochs and self.epochs[-1]["epoch"] == row["epoch"]:
            self.epochs[-1] = row  # the same epoch reported again: keep the latest
        else:
            self.epochs.append(row)
