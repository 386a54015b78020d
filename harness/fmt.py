"""The one place that turns numbers into text: "value [low, high]" and tables, plain or markdown.

Every analysis command prints through here, so the same FID reads the same in ``report``,
``pareto``, ``budget``, ``compare``, ``history`` and ``claims``: 4 significant digits for values
and interval ends, ``-`` for a missing value, no brackets where there is no interval.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

DIGITS = 4


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (hasattr(v, "dtype") and v != v)


def num(v: Any, digits: int = DIGITS) -> str:
    """A number with ``digits`` significant digits; ``-`` when missing; anything else as ``str``."""
    if _missing(v):
        return "-"
    if isinstance(v, (bool, str)):
        return str(v)
    try:
        return f"{float(v):.{digits}g}"
    except (TypeError, ValueError):
        return str(v)


def ci(value: Any, low: Any = None, high: Any = None, digits: int = DIGITS) -> str:
    """``value [low, high]``; just ``value`` when the interval is missing or has no width."""
    s = num(value, digits)
    if s == "-" or _missing(low) or _missing(high) or float(low) == float(high):
        return s
    return f"{s} [{num(low, digits)}, {num(high, digits)}]"


def estimate(e: Any, digits: int = DIGITS) -> str:
    """An object with ``value``, ``low`` and ``high`` (``harness.stats.Estimate``, an estimates row)."""
    return ci(e.value, e.low, e.high, digits)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], markdown: bool = False, indent: str = "") -> str:
    """Cells (strings, or numbers formatted by ``num``) as aligned plain text or a markdown table."""
    body = [[c if isinstance(c, str) else num(c) for c in r] for r in rows]
    if markdown:
        lines = [list(header), ["---"] * len(header), *body]
        return "\n".join(indent + "| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in lines)
    widths = [max(len(r[i]) for r in [list(header), *body] if i < len(r)) for i in range(len(header))]
    line = lambda cells: indent + "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])
