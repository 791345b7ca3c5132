"""A small, dependency-free SVG bar chart for tools/bench.

One panel per group of rows (all rows of a panel share one linear scale). Each row is
one measurement with one horizontal bar per side (the median), a min-max
whisker, the median as text, and an optional dashed target marker.
"""

from xml.sax.saxutils import escape

WIDTH = 960
LABEL_W = 360          # left column with the row labels
VALUE_W = 110          # room right of the longest bar for its value text
BAR_H = 13
BAR_GAP = 3
ROW_GAP = 12
PANEL_GAP = 34
TOP = 64
FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"

DEFAULT_COLORS = {"ours": "#2f6db5", "qemu": "#e08a1e"}
FALLBACK_COLORS = ["#5a9e3a", "#9b4fb0", "#c23b3b", "#3aa0a0"]


def _fmt(value):
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _nice_max(value):
    """Rounds value up to 1, 2 or 5 times a power of ten (axis maximum)."""
    if value <= 0:
        return 1.0
    exp = 1.0
    while exp * 10 <= value:
        exp *= 10
    while exp > value:
        exp /= 10
    for step in (1, 2, 5, 10):
        if step * exp >= value:
            return step * exp
    return 10 * exp


def _text(x, y, s, size=12, anchor="start", weight="normal", fill="#222"):
    return (f"<text x='{x:.1f}' y='{y:.1f}' {FONT} font-size='{size}' "
            f"text-anchor='{anchor}' font-weight='{weight}' fill='{fill}'>{escape(s)}</text>")


def bar_chart(rows, title, subtitle="", sides=("ours", "qemu")):
    """Returns an SVG document as a string.

    rows: list of dicts with
      label  - row label
      unit   - unit string, printed after the values
      panel  - panel title; rows are grouped into panels (in order seen), each with
               its own scale, so give rows of different units different panels
      values - {side: (median, min, max)} for the sides that have data
      target - optional absolute value drawn as a dashed marker
      result - optional "PASS"/"MISS" shown after the label
    """
    colors = dict(DEFAULT_COLORS)
    for i, side in enumerate(s for s in sides if s not in colors):
        colors[side] = FALLBACK_COLORS[i % len(FALLBACK_COLORS)]

    panels = {}
    for row in rows:
        panels.setdefault(row.get("panel", row["unit"]), []).append(row)

    bar_area = WIDTH - LABEL_W - VALUE_W - 20
    parts = []
    y = TOP
    for panel, panel_rows in panels.items():
        peak = 0.0
        for row in panel_rows:
            for med, lo, hi in row["values"].values():
                peak = max(peak, hi if hi is not None else med)
            if row.get("target") is not None:
                peak = max(peak, row["target"])
        axis_max = _nice_max(peak * 1.05)
        scale = bar_area / axis_max

        parts.append(_text(10, y, panel, size=13, weight="bold"))
        y += 8
        panel_top = y
        for row in panel_rows:
            n_bars = max(1, len(row["values"]))
            row_h = n_bars * BAR_H + (n_bars - 1) * BAR_GAP
            label = row["label"]
            if row.get("result"):
                label += f"  [{row['result']}]"
            parts.append(_text(LABEL_W - 8, y + row_h / 2 + 4, label, size=11, anchor="end"))
            by = y
            for side in sides:
                if side not in row["values"]:
                    continue
                med, lo, hi = row["values"][side]
                x0 = LABEL_W
                parts.append(f"<rect x='{x0}' y='{by:.1f}' width='{max(med * scale, 1):.1f}' "
                             f"height='{BAR_H}' fill='{colors[side]}'/>")
                if lo is not None and hi is not None and hi > lo:
                    wy = by + BAR_H / 2
                    xl, xh = x0 + lo * scale, x0 + hi * scale
                    parts.append(f"<line x1='{xl:.1f}' y1='{wy:.1f}' x2='{xh:.1f}' y2='{wy:.1f}' "
                                 "stroke='#111' stroke-width='1'/>")
                    for xw in (xl, xh):
                        parts.append(f"<line x1='{xw:.1f}' y1='{by + 3:.1f}' x2='{xw:.1f}' "
                                     f"y2='{by + BAR_H - 3:.1f}' stroke='#111' stroke-width='1'/>")
                end = x0 + max(med, hi or 0) * scale
                parts.append(_text(end + 5, by + BAR_H - 2, f"{_fmt(med)} {row['unit']}", size=10))
                by += BAR_H + BAR_GAP
            if row.get("target") is not None:
                tx = LABEL_W + row["target"] * scale
                parts.append(f"<line x1='{tx:.1f}' y1='{y - 3:.1f}' x2='{tx:.1f}' "
                             f"y2='{y + row_h + 3:.1f}' stroke='#c00' stroke-width='1.5' "
                             "stroke-dasharray='4,3'/>")
            y += row_h + ROW_GAP
        # axis: baseline and ticks at 0, 1/4 .. 1 of axis_max
        parts.append(f"<line x1='{LABEL_W}' y1='{panel_top - 4}' x2='{LABEL_W}' y2='{y - ROW_GAP + 4}' "
                     "stroke='#888'/>")
        for i in range(5):
            v = axis_max * i / 4
            tx = LABEL_W + v * scale
            parts.append(f"<line x1='{tx:.1f}' y1='{y - ROW_GAP + 4}' x2='{tx:.1f}' "
                         f"y2='{y - ROW_GAP + 8}' stroke='#888'/>")
            parts.append(_text(tx, y - ROW_GAP + 20, _fmt(v), size=10, anchor="middle", fill="#555"))
        y += PANEL_GAP

    height = y + 10
    head = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}'>",
        f"<rect width='{WIDTH}' height='{height}' fill='white'/>",
        _text(10, 22, title, size=16, weight="bold"),
        _text(10, 40, subtitle, size=11, fill="#555"),
    ]
    lx = WIDTH - 20
    for side in reversed(sides):
        head.append(_text(lx, 22, side, size=12, anchor="end"))
        lx -= 8 + 7 * len(side)
        head.append(f"<rect x='{lx - 12}' y='12' width='12' height='12' fill='{colors[side]}'/>")
        lx -= 24
    head.append(f"<line x1='{lx - 40}' y1='18' x2='{lx - 16}' y2='18' stroke='#c00' "
                "stroke-width='1.5' stroke-dasharray='4,3'/>")
    head.append(_text(lx - 44, 22, "target", size=12, anchor="end"))
    return "\n".join(head + parts + ["</svg>", ""])
