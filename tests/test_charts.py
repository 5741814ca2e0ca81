"""Server-drawn charts: label names from datasets are text, gaps stay gaps, the figures are also a table."""

from server.web.charts import Series, bar_rows, line_chart


def test_a_line_chart_escapes_names_and_lists_its_figures():
    hostile = '<img src=x onerror="alert(1)">'
    html = str(line_chart("F1 <per> class", ["v1", "v2", "v3"], [Series(hostile, [0.5, None, 0.75])], y_min=0, y_max=1))
    assert "<img" not in html and "&lt;img src=x" in html and "F1 &lt;per&gt; class" in html
    assert html.count("<circle") == 2  # the gap has no point
    assert "<polyline" not in html  # and no line crosses it: two single points
    assert "<td>0.5</td><td>" not in html and "<td>0.75</td>" in html and '<th scope="row">v2</th><td></td>' in html


def test_an_empty_chart_says_so_and_bars_are_relative_to_the_largest():
    assert "nothing to draw yet" in str(line_chart("accuracy", [], []))
    rows = bar_rows([("a", 30), ("b", 15), ("<b>", 0)], total=45)
    assert [(name, n, round(share, 3)) for name, n, share, _ in rows] == [("a", 30, 0.667), ("b", 15, 0.333), ("<b>", 0, 0.0)]
    assert 'width="100.0"' in rows[0][3] and 'width="50.0"' in rows[1][3] and 'width="0.0"' in rows[2][3]
