"""Inline SVG plots for the HTML pages: scales, ticks, CI whiskers, markers, step lines, bands.

Rendering only, and dependency-free, so a page is one self-contained file that draws offline: no
plotting library is fetched or embedded at view time. Every data point is one ``circle.mark``
whose ``data-tip`` the page script shows on hover (``harness/assets/page.js``), and whose
``data-series`` a click on the legend toggles. The browser test counts these marks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Iterable, Sequence

from harness import fmt

# matplotlib's tab10, so a method has the colour it has in the PNG plots
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def color(k: int) -> str:
    return PALETTE[k % len(PALETTE)]


def _finite(values: Iterable[float]) -> list[float]:
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))
            and math.isfinite(float(v))]


@dataclass
class Scale:
    """Data -> pixels on one axis; logarithmic when ``log``. ``px0`` is where ``lo`` lands."""

    lo: float
    hi: float
    px0: float
    px1: float
    log: bool = False

    @classmethod
    def fit(cls, values: Iterable[float], px0: float, px1: float, log: bool | None = None,
            pad: float = 0.06) -> "Scale":
        """A scale covering ``values`` with a margin; log by default when every value is positive
        and they span more than a factor of 3 (as the PNG plots do for costs and FID)."""
        vals = _finite(values)
        if not vals:
            vals = [0.0, 1.0]
        lo, hi = min(vals), max(vals)
        if log is None:
            log = lo > 0 and hi / lo > 3
        if log and lo > 0:
            a, b = math.log10(lo), math.log10(hi)
            span = (b - a) or 1.0
            return cls(10 ** (a - pad * span), 10 ** (b + pad * span), px0, px1, True)
        span = (hi - lo) or (abs(hi) or 1.0)
        return cls(lo - pad * span, hi + pad * span, px0, px1, False)

    def __call__(self, v: float) -> float:
        if self.log:
            v = max(v, self.lo * 1e-3)
            t = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            t = (v - self.lo) / (self.hi - self.lo)
        return self.px0 + t * (self.px1 - self.px0)

    def ticks(self) -> list[float]:
        """Round values inside the range: 1-2-5 steps, or powers of ten (and 2x, 5x) on a log axis."""
        if self.log:
            a, b = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            mults = (1,) if b - a > 3 else (1, 2, 5)
            out = [m * 10 ** e for e in range(a, b + 1) for m in mults]
        else:
            raw = (self.hi - self.lo) / 6
            mag = 10 ** math.floor(math.log10(raw))
            step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
            first = math.ceil(self.lo / step) * step
            out = [first + i * step for i in range(int((self.hi - first) / step) + 1)]
            out = [0.0 if abs(t) < step * 1e-9 else t for t in out]
        return [t for t in out if self.lo <= t <= self.hi]


@dataclass
class Plot:
    """One chart: axes, grid, labels, then marks in the order they are added."""

    title: str
    xlabel: str
    ylabel: str
    xs: Sequence[float]
    ys: Sequence[float]
    xlog: bool | None = None
    ylog: bool | None = None
    width: int = 760
    height: int = 440
    kind: str = ""  # class of the <svg>, e.g. "pareto": the test finds plots by it
    margin: tuple[int, int, int, int] = (34, 24, 54, 74)  # top, right, bottom, left
    body: list[str] = field(default_factory=list)
    legend_items: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        top, right, bottom, left = self.margin
        self.x = Scale.fit(self.xs, left, self.width - right, self.xlog)
        self.y = Scale.fit(self.ys, self.height - bottom, top, self.ylog)

    def whisker(self, x0: float, y0: float, x1: float, y1: float, colour: str, series: str = "") -> None:
        """A CI whisker between two data points (horizontal or vertical), with end caps."""
        if any(math.isnan(v) for v in (x0, y0, x1, y1)):
            return
        a, b, c, d = self.x(x0), self.y(y0), self.x(x1), self.y(y1)
        cap = [(a, b - 3, a, b + 3), (c, d - 3, c, d + 3)] if b == d else [(a - 3, b, a + 3, b), (c - 3, d, c + 3, d)]
        lines = [(a, b, c, d), *cap]
        segs = "".join(f'<line x1="{p:.1f}" y1="{q:.1f}" x2="{r:.1f}" y2="{s:.1f}"/>' for p, q, r, s in lines)
        self.body.append(f'<g class="whisker" data-series="{escape(series)}" stroke="{colour}">{segs}</g>')

    def mark(self, x: float, y: float, colour: str, tip: Sequence[str], series: str = "", hollow: bool = False,
             radius: float = 4.5, cls: str = "mark") -> None:
        """One data point; ``tip`` lines show on hover."""
        fill = "#fff" if hollow else colour
        self.body.append(f'<circle class="{cls}" cx="{self.x(x):.1f}" cy="{self.y(y):.1f}" r="{radius}" '
                         f'fill="{fill}" stroke="{colour}" stroke-width="1.5" data-series="{escape(series)}" '
                         f'data-tip="{escape(chr(10).join(tip))}"/>')

    def ring(self, x: float, y: float, colour: str = "#d62728", series: str = "") -> None:
        """A ring around a point (history: the first change)."""
        self.body.append(f'<circle class="ring" cx="{self.x(x):.1f}" cy="{self.y(y):.1f}" r="10" fill="none" '
                         f'stroke="{colour}" stroke-width="2" data-series="{escape(series)}"/>')

    def label(self, x: float, y: float, text: str, series: str = "") -> None:
        self.body.append(f'<text class="point-label" x="{self.x(x) + 5:.1f}" y="{self.y(y) - 5:.1f}" '
                         f'data-series="{escape(series)}">{escape(text)}</text>')

    def step(self, xs: Sequence[float], ys: Sequence[float], colour: str, series: str = "", cls: str = "front",
             dash: bool = False) -> None:
        """A step line through the points, the step taken after each x (matplotlib's ``where="post"``)."""
        pts = [(self.x(a), self.y(b)) for a, b in zip(xs, ys) if not (math.isnan(a) or math.isnan(b))]
        if len(pts) < 1:
            return
        d = f"M{pts[0][0]:.1f},{pts[0][1]:.1f}" + "".join(f"H{px:.1f}V{py:.1f}" for px, py in pts[1:])
        self.body.append(f'<path class="{cls}" d="{d}" fill="none" stroke="{colour}" stroke-width="1.5"'
                         + (' stroke-dasharray="5,3"' if dash else "") + f' data-series="{escape(series)}"/>')

    def line(self, xs: Sequence[float], ys: Sequence[float], colour: str, series: str = "", cls: str = "line") -> None:
        pts = [(self.x(a), self.y(b)) for a, b in zip(xs, ys) if not (math.isnan(a) or math.isnan(b))]
        if len(pts) < 2:
            return
        self.body.append(f'<polyline class="{cls}" points="{" ".join(f"{p:.1f},{q:.1f}" for p, q in pts)}" '
                         f'fill="none" stroke="{colour}" stroke-width="1" data-series="{escape(series)}"/>')

    def band(self, xs: Sequence[float], lo: Sequence[float], hi: Sequence[float], colour: str,
             series: str = "") -> None:
        """A CI band as steps (``where="post"``), like the budget curves."""
        pts = [(a, b, c) for a, b, c in zip(xs, lo, hi) if not any(math.isnan(v) for v in (a, b, c))]
        if len(pts) < 2:
            return
        up = [f"{self.x(pts[0][0]):.1f},{self.y(pts[0][2]):.1f}"]
        for i, (a, _, c) in enumerate(pts[1:], 1):
            up += [f"{self.x(a):.1f},{self.y(pts[i - 1][2]):.1f}", f"{self.x(a):.1f},{self.y(c):.1f}"]
        down = [f"{self.x(pts[-1][0]):.1f},{self.y(pts[-1][1]):.1f}"]
        for i in range(len(pts) - 1, 0, -1):
            down += [f"{self.x(pts[i][0]):.1f},{self.y(pts[i - 1][1]):.1f}",
                     f"{self.x(pts[i - 1][0]):.1f},{self.y(pts[i - 1][1]):.1f}"]
        self.body.append(f'<polygon class="band" points="{" ".join(up + down)}" fill="{colour}" fill-opacity="0.15" '
                         f'stroke="none" data-series="{escape(series)}"/>')

    def hspan(self, y0: float, y1: float, colour: str = "#999") -> None:
        """A shaded horizontal stripe between two y values (compare: the no-change margin)."""
        a, b = sorted((self.y(y0), self.y(y1)))
        self.body.append(f'<rect class="span" x="{self.x.px0:.1f}" y="{a:.1f}" width="{self.x.px1 - self.x.px0:.1f}" '
                         f'height="{b - a:.1f}" fill="{colour}" fill-opacity="0.12"/>')

    def vspan(self, x0: float, x1: float, colour: str = "#999") -> None:
        a, b = sorted((self.x(x0), self.x(x1)))
        self.body.append(f'<rect class="span" x="{a:.1f}" y="{self.y.px1:.1f}" width="{b - a:.1f}" '
                         f'height="{self.y.px0 - self.y.px1:.1f}" fill="{colour}" fill-opacity="0.12"/>')

    def vline(self, x: float, colour: str = "#333") -> None:
        self.body.append(f'<line class="ref" x1="{self.x(x):.1f}" y1="{self.y.px1:.1f}" x2="{self.x(x):.1f}" '
                         f'y2="{self.y.px0:.1f}" stroke="{colour}" stroke-width="0.8"/>')

    def hline(self, y: float, colour: str = "#333") -> None:
        self.body.append(f'<line class="ref" x1="{self.x.px0:.1f}" y1="{self.y(y):.1f}" x2="{self.x.px1:.1f}" '
                         f'y2="{self.y(y):.1f}" stroke="{colour}" stroke-width="0.8"/>')

    def legend(self, label: str, colour: str, series: str = "", kind: str = "dot") -> None:
        self.legend_items.append((label, colour, series or label, kind))

    def _axes(self, xticks: list[tuple[float, str]] | None, yticks: list[tuple[float, str]] | None) -> str:
        top, right, bottom, left = self.margin
        x0, x1, y0, y1 = self.x.px0, self.x.px1, self.y.px0, self.y.px1
        out = [f'<rect x="{x0:.1f}" y="{y1:.1f}" width="{x1 - x0:.1f}" height="{y0 - y1:.1f}" fill="#fff" '
               'stroke="#bbb"/>']
        for v, text in xticks if xticks is not None else [(t, fmt.num(t, 3)) for t in self.x.ticks()]:
            px = self.x(v)
            lines = "".join(f'<tspan x="{px:.1f}" dy="{0 if i == 0 else 1.15}em">{escape(t)}</tspan>'
                            for i, t in enumerate(text.split("\n")))  # "\n" in a label: one line each
            out.append(f'<line class="grid" x1="{px:.1f}" y1="{y1:.1f}" x2="{px:.1f}" y2="{y0:.1f}"/>'
                       f'<text class="tick" x="{px:.1f}" y="{y0 + 14:.1f}" text-anchor="middle">{lines}</text>')
        for v, text in yticks if yticks is not None else [(t, fmt.num(t, 3)) for t in self.y.ticks()]:
            py = self.y(v)
            out.append(f'<line class="grid" x1="{x0:.1f}" y1="{py:.1f}" x2="{x1:.1f}" y2="{py:.1f}"/>'
                       f'<text class="tick" x="{x0 - 5:.1f}" y="{py + 3.5:.1f}" text-anchor="end">'
                       f'{escape(text)}</text>')
        log = lambda s: " (log scale)" if s.log else ""  # noqa: E731
        out.append(f'<text class="axis-label" x="{(x0 + x1) / 2:.1f}" y="{self.height - 12}" text-anchor="middle">'
                   f'{escape(self.xlabel + log(self.x))}</text>')
        out.append(f'<text class="axis-label" transform="translate(16,{(y0 + y1) / 2:.1f}) rotate(-90)" '
                   f'text-anchor="middle">{escape(self.ylabel + log(self.y))}</text>')
        out.append(f'<text class="plot-title" x="{left}" y="{top - 12}">{escape(self.title)}</text>')
        return "".join(out)

    def svg(self, xticks: list[tuple[float, str]] | None = None, yticks: list[tuple[float, str]] | None = None) -> str:
        """The chart as an inline ``<svg>`` element, with its legend as HTML buttons below it."""
        clip = f"clip-{id(self)}"
        x0, x1, y0, y1 = self.x.px0, self.x.px1, self.y.px0, self.y.px1
        svg = (f'<svg class="plot {self.kind}" viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
               f'height="{self.height}" role="img" aria-label="{escape(self.title)}">'
               f'<defs><clipPath id="{clip}"><rect x="{x0:.1f}" y="{y1:.1f}" width="{x1 - x0:.1f}" '
               f'height="{y0 - y1:.1f}"/></clipPath></defs>'
               + self._axes(xticks, yticks) + f'<g clip-path="url(#{clip})">' + "".join(self.body) + "</g></svg>")
        items = "".join(
            f'<button type="button" class="legend-item" data-series="{escape(s)}" aria-pressed="true">'
            f'<span class="swatch {kind}" style="--c:{c}"></span>{escape(label)}</button>'
            for label, c, s, kind in self.legend_items)
        return f'<figure class="chart">{svg}<figcaption class="legend">{items}</figcaption></figure>'
