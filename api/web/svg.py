"""Server-generated SVG charts: a journey timeline and a supply-network graph.

Charts are drawn on the server as plain SVG strings so the pages need no chart library, no
JavaScript and no build step, render the same in every browser, and stay readable by screen
readers (each chart has ``role="img"``, a ``<title>`` and a ``<desc>``; the pages also show the
same data as a table or list). Every piece of text is XML-escaped here; callers pass raw strings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final, Literal

from markupsafe import Markup

__all__ = [
    "NetEdge",
    "NetNode",
    "TimelinePoint",
    "journey_timeline",
    "supply_network",
]

Tone = Literal["normal", "alert", "ok"]

# Colours meet WCAG AA (≥ 4.5:1) against white for text and ≥ 3:1 for graphics.
_INK: Final = "#1a1a1a"
_MUTED: Final = "#4a4a4a"
_LINE: Final = "#5c5c5c"
_TONE_FILL: Final[dict[str, str]] = {"normal": "#1f4e8c", "alert": "#b00020", "ok": "#0b6e3a"}
_TONE_BG: Final[dict[str, str]] = {"normal": "#e8f0fb", "alert": "#fdecee", "ok": "#e6f4ec"}
_FONT: Final = (
    'font-family="Noto Sans CJK SC, Noto Sans SC, WenQuanYi Zen Hei, PingFang SC, '
    'Microsoft YaHei, sans-serif"'
)


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """One stop on a journey timeline.

    Attributes:
        date: Date shown above the dot (``YYYY-MM-DD``).
        label: Main label under the dot (a city, never an organisation's name on public pages).
        sub: Second line (role and step).
        tone: ``"alert"`` draws the dot red (an event logged with an alert).
    """

    date: str
    label: str
    sub: str = ""
    tone: Tone = "normal"


@dataclass(frozen=True, slots=True)
class NetNode:
    """A site or organisation in the supply-network graph.

    Attributes:
        id: Unique key used by edges.
        label: First line of the box.
        sub: Second line (role, city).
        column: Left-to-right rank (0 = manufacturer, then distributors, then dispensers).
        tone: ``"alert"`` outlines the box red.
    """

    id: str
    label: str
    sub: str = ""
    column: int = 0
    tone: Tone = "normal"


@dataclass(frozen=True, slots=True)
class NetEdge:
    """Goods moving from one node to another.

    Attributes:
        source: ``NetNode.id`` of the sender.
        target: ``NetNode.id`` of the receiver.
        count: Number of packs (or shipments) shown on the edge.
        tone: ``"alert"`` draws the edge red (e.g. a diversion).
    """

    source: str
    target: str
    count: int = 0
    tone: Tone = "normal"


def _e(text: str) -> str:
    return escape(text, quote=True)


def _clip(text: str, limit: int) -> str:
    # CJK glyphs are about twice as wide as Latin ones at the same font size.
    width = 0.0
    for i, ch in enumerate(text):
        width += 1.0 if ord(ch) > 0x2E7F else 0.55
        if width > limit:
            return text[: max(i - 1, 1)] + "…"
    return text


def journey_timeline(points: Sequence[TimelinePoint], *, title: str, desc: str = "") -> Markup:
    """Draw a horizontal timeline: one dot per stop, date above, place and role below.

    Args:
        points: The stops in time order.
        title: Accessible name of the chart.
        desc: Longer accessible description (defaults to the stops joined as text).

    Returns:
        The ``<svg>`` element, safe to insert into a Jinja2 template unescaped.
    """
    step = 170
    margin = 90
    width = max(2 * margin, margin * 2 + step * max(len(points) - 1, 0))
    height = 150
    y = 58
    summary = desc or "; ".join(f"{p.date} {p.label} {p.sub}".strip() for p in points)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart--timeline" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="tl-title tl-desc" {_FONT}>',
        f'<title id="tl-title">{_e(title)}</title><desc id="tl-desc">{_e(summary)}</desc>',
    ]
    if len(points) > 1:
        x_end = margin + step * (len(points) - 1)
        out.append(
            f'<line x1="{margin}" y1="{y}" x2="{x_end}" y2="{y}" stroke="{_LINE}" '
            'stroke-width="3"/>'
        )
    for i, p in enumerate(points):
        x = margin + step * i
        fill = _TONE_FILL[p.tone]
        out.append(
            f'<circle cx="{x}" cy="{y}" r="11" fill="{fill}" stroke="#fff" stroke-width="3"/>'
            f'<text x="{x}" y="{y - 24}" text-anchor="middle" font-size="15" '
            f'fill="{_INK}">{_e(_clip(p.date, 16))}</text>'
            f'<text x="{x}" y="{y + 38}" text-anchor="middle" font-size="17" font-weight="700" '
            f'fill="{fill if p.tone == "alert" else _INK}">{_e(_clip(p.label, 9))}</text>'
            f'<text x="{x}" y="{y + 62}" text-anchor="middle" font-size="14" '
            f'fill="{_MUTED}">{_e(_clip(p.sub, 11))}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def supply_network(
    nodes: Sequence[NetNode], edges: Sequence[NetEdge], *, title: str, desc: str = ""
) -> Markup:
    """Draw a layered left-to-right graph of sites and the goods flowing between them.

    Nodes are placed in columns by :attr:`NetNode.column` (stable input order within a
    column); edges are cubic curves with an arrow head and the pack count at their middle.
    Edges that go backwards (returns) bend below the boxes so they never hide a forward edge.

    Args:
        nodes: The boxes.
        edges: The arrows; edges naming unknown nodes are skipped.
        title: Accessible name of the chart.
        desc: Longer accessible description (defaults to the edges as text).

    Returns:
        The ``<svg>`` element, safe to insert into a Jinja2 template unescaped.
    """
    box_w, box_h, col_gap, row_gap, pad = 190, 56, 110, 28, 24
    columns: dict[int, list[NetNode]] = defaultdict(list)
    for n in nodes:
        columns[n.column].append(n)
    order = sorted(columns)
    rank = {c: i for i, c in enumerate(order)}
    rows = max((len(v) for v in columns.values()), default=1)
    width = pad * 2 + len(order) * box_w + max(len(order) - 1, 0) * col_gap
    height = pad * 2 + rows * box_h + max(rows - 1, 0) * row_gap + 40
    pos: dict[str, tuple[float, float]] = {}
    for col, members in columns.items():
        # Centre shorter columns vertically so the flow reads as a funnel, not a staircase.
        offset = (rows - len(members)) * (box_h + row_gap) / 2
        for r, n in enumerate(members):
            x = pad + rank[col] * (box_w + col_gap)
            pos[n.id] = (x, pad + offset + r * (box_h + row_gap))
    labels = {n.id: n.label for n in nodes}
    summary = desc or "; ".join(
        f"{labels.get(e.source, e.source)} → {labels.get(e.target, e.target)}: {e.count}"
        for e in edges
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart--network" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="net-title net-desc" {_FONT}>',
        f'<title id="net-title">{_e(title)}</title><desc id="net-desc">{_e(summary)}</desc>',
        "<defs>",
    ]
    for tone, colour in (("normal", _LINE), ("alert", _TONE_FILL["alert"])):
        out.append(
            f'<marker id="arrow-{tone}" viewBox="0 0 10 10" refX="9" refY="5" '
            'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        )
    out.append("</defs>")
    for e in edges:
        if e.source not in pos or e.target not in pos:
            continue
        sx, sy = pos[e.source]
        tx, ty = pos[e.target]
        colour = _TONE_FILL["alert"] if e.tone == "alert" else _LINE
        if tx > sx:
            x1, y1, x2, y2 = sx + box_w, sy + box_h / 2, tx - 2, ty + box_h / 2
            bend = (x2 - x1) / 2
            path = f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} "
            path += f"{x2:.0f},{y2:.0f}"
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2 - 6
        else:
            x1, y1, x2, y2 = sx + box_w / 2, sy + box_h, tx + box_w / 2, ty + box_h + 2
            low = max(y1, y2) + 34
            path = f"M{x1:.0f},{y1:.0f} C{x1:.0f},{low:.0f} {x2:.0f},{low:.0f} {x2:.0f},{y2:.0f}"
            mx, my = (x1 + x2) / 2, low - 2
        out.append(
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2.5" '
            f'marker-end="url(#arrow-{"alert" if e.tone == "alert" else "normal"})"/>'
        )
        if e.count:
            out.append(
                f'<text x="{mx:.0f}" y="{my:.0f}" text-anchor="middle" font-size="14" '
                f'font-weight="700" fill="{colour}" paint-order="stroke" stroke="#fff" '
                f'stroke-width="4">{e.count}</text>'
            )
    for n in nodes:
        bx, by = pos[n.id]
        stroke = _TONE_FILL["alert"] if n.tone == "alert" else _TONE_FILL["normal"]
        out.append(
            f'<g><rect x="{bx:.0f}" y="{by:.0f}" width="{box_w}" height="{box_h}" rx="8" '
            f'fill="{_TONE_BG[n.tone]}" stroke="{stroke}" stroke-width="2"/>'
            f'<text x="{bx + 10:.0f}" y="{by + 23:.0f}" font-size="15" font-weight="700" '
            f'fill="{_INK}">{_e(_clip(n.label, 12))}</text>'
            f'<text x="{bx + 10:.0f}" y="{by + 44:.0f}" font-size="13" '
            f'fill="{_MUTED}">{_e(_clip(n.sub, 15))}</text></g>'
        )
    out.append("</svg>")
    return Markup("".join(out))
