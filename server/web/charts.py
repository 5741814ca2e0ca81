"""Charts drawn on the server as SVG: no chart library in the page, nothing to run, nothing to load.

A chart is a figure (`role="img"` with a title and a description) followed by the same figures as
a table for screen readers and for copying. The pages' CSP forbids inline styles, so everything is
drawn with SVG presentation attributes and classes from s2.css. Names from datasets (labels) are
escaped like any other text.
"""

from dataclasses import dataclass
from itertools import count

from markupsafe import Markup, escape

# Ten colours that stay apart for the common colour-vision deficiencies (Okabe-Ito, then Tol's muted).
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#332288", "#999933", "#882255", "#44aa99")
_ids = count(1)


@dataclass
class Series:
    name: str
    values: list[float | None]  # one per x; None leaves a gap


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.0f}"


def line_chart(
    title: str,
    x_labels: list[str],
    series: list[Series],
    *,
    y_min: float | None = None,
    y_max: float | None = None,
    width: int = 640,
    height: int = 220,
    x_caption: str = "",
) -> Markup:
    """A line chart of each series over the x labels (points marked, each with its value as a tooltip)."""
    values = [v for s in series for v in s.values if v is not None]
    uid = next(_ids)
    if not values or not x_labels:
        return Markup('<p class="muted">{}: nothing to draw yet.</p>').format(title)
    lo = min(values) if y_min is None else min(y_min, min(values))
    hi = max(values) if y_max is None else max(y_max, max(values))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    left, right, top, bottom = 44, 12, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_at(i: int) -> float:
        return left + (plot_w * i / (len(x_labels) - 1) if len(x_labels) > 1 else plot_w / 2)

    def y_at(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    parts: list[str] = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="chart{uid}-t chart{uid}-d" preserveAspectRatio="xMinYMin meet">',
        f'<title id="chart{uid}-t">{escape(title)}</title>',
        f'<desc id="chart{uid}-d">{escape(", ".join(s.name for s in series))} over {len(x_labels)} points; '
        "the figures are in the table that follows.</desc>",
    ]
    for k in range(5):  # grid lines and y ticks
        v = lo + (hi - lo) * k / 4
        y = y_at(v)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(_fmt(v))}</text>')
    step = max(1, len(x_labels) // 8)
    for i in range(0, len(x_labels), step):
        parts.append(f'<text class="tick" x="{x_at(i):.1f}" y="{height - 8}" text-anchor="middle">{escape(x_labels[i])}</text>')
    for n, s in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        run: list[str] = []
        for i, v in enumerate(s.values):
            if v is None:
                if len(run) > 1:
                    parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>')
                run = []
                continue
            run.append(f"{x_at(i):.1f},{y_at(v):.1f}")
        if len(run) > 1:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>')
        for i, v in enumerate(s.values):
            if v is not None:
                parts.append(
                    f'<circle cx="{x_at(i):.1f}" cy="{y_at(v):.1f}" r="3" fill="{colour}">'
                    f"<title>{escape(s.name)} at {escape(x_labels[i])}: {escape(_fmt(v))}</title></circle>"
                )
    parts.append("</svg>")
    legend = "".join(
        f'<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="{PALETTE[n % len(PALETTE)]}"/></svg> '
        f"{escape(s.name)}</li>"
        for n, s in enumerate(series)
    )
    head = "".join(f'<th scope="col">{escape(s.name)}</th>' for s in series)
    rows = "".join(
        f'<tr><th scope="row">{escape(x)}</th>'
        + "".join(f"<td>{'' if s.values[i] is None else escape(_fmt(s.values[i]))}</td>" for s in series)
        + "</tr>"
        for i, x in enumerate(x_labels)
    )
    table = (
        f'<details class="figures"><summary>Figures</summary><table class="list"><caption>{escape(title)}</caption>'
        f'<thead><tr><th scope="col">{escape(x_caption)}</th>{head}</tr></thead><tbody>{rows}</tbody></table></details>'
    )
    return Markup(f'<figure class="chart-box">{"".join(parts)}<ul class="legend">{legend}</ul>{table}</figure>')


def bar_rows(items: list[tuple[str, int]], *, total: int) -> list[tuple[str, int, float, Markup]]:
    """(name, count, share, a bar as SVG) per item: for a table with a bar per row (CSS widths are inline styles, refused here).

    The bar is drawn in a 100-wide box scaled to its cell (s2.css), its length relative to the largest count."""
    out = []
    most = max((n for _, n in items), default=0) or 1
    for name, n in items:
        share = n / total if total else 0.0
        bar = Markup(
            '<svg class="meter" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">'
            f'<rect width="100" height="10" fill="currentColor" opacity="0.12"/>'
            f'<rect width="{100 * n / most:.1f}" height="10" fill="currentColor"/></svg>'
        )
        out.append((name, n, share, bar))
    return out
