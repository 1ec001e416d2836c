"""A static SVG of a run's curves, kept beside a live view so a saved notebook shows them without a kernel."""

from __future__ import annotations

import html
import math
from typing import Any, Protocol

__all__ = ["LoggedCurves", "curves_svg"]


class LoggedCurves(Protocol):
    """What the snapshot reads from a run's ``TrainingHistory``: its log-step and evaluation records."""

    @property
    def train(self) -> list[dict[str, Any]]: ...

    @property
    def eval(self) -> list[dict[str, Any]]: ...


_MAX_POINTS = 400


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= _MAX_POINTS:
        return points
    stride = len(points) / _MAX_POINTS
    return [points[int(i * stride)] for i in range(_MAX_POINTS)] + [points[-1]]


def curves_svg(runs: list[tuple[str, str, LoggedCurves]], title: str = "", width: int = 560, height: int = 200) -> str:
    """SVG (as an HTML string) of each run's smoothed train loss and eval loss; names are escaped.

    ``runs`` holds (name, colour, TrainingHistory). A few kilobytes whatever the run's length.
    """
    pad_l, pad_r, pad_t, pad_b = 48, 10, 22, 22
    series: list[tuple[str, str, list[tuple[float, float]], list[tuple[float, float]]]] = []
    for name, color, history in runs:
        train: list[tuple[float, float]] = [
            (r["step"], r["smoothed_loss"]) for r in history.train if _finite(r["smoothed_loss"])
        ]
        evals: list[tuple[float, float]] = [
            (r["step"], r["eval_loss"]) for r in history.eval if _finite(r.get("eval_loss"))
        ]
        series.append((name, color, _thin(train), evals))
    xs = [x for s in series for x, _ in s[2] + s[3]]
    ys = [y for s in series for _, y in s[2] + s[3]]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" class="wb-snapshot" role="img" '
        'style="font: 10px sans-serif; background: white">',
        f'<text x="{pad_l}" y="14" style="font-weight: 600">{html.escape(title or "final curves")}</text>',
    ]
    if xs:
        x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
        y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

        def px(x: float) -> float:
            return pad_l + (x - x0) / (x1 - x0) * (width - pad_l - pad_r)

        def py(y: float) -> float:
            return height - pad_b - (y - y0) / (y1 - y0) * (height - pad_t - pad_b)

        decimals = max(0, min(8, 1 - math.floor(math.log10(max(y1 - y0, 1e-12)))))  # ticks tell apart
        for value in (y0, (y0 + y1) / 2, y1):
            parts.append(
                f'<text x="{pad_l - 4}" y="{py(value) + 3:.1f}" text-anchor="end" '
                f'fill="#656d76">{value:.{decimals}f}</text>'
            )
        parts.append(f'<text x="{pad_l}" y="{height - 6}" fill="#656d76">step {x0:g}</text>')
        parts.append(f'<text x="{width - pad_r}" y="{height - 6}" text-anchor="end" fill="#656d76">step {x1:g}</text>')
        for i, (name, color, train, evals) in enumerate(series):
            if train:
                d = " ".join(f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for j, (x, y) in enumerate(train))
                parts.append(f'<path d="{d}" fill="none" stroke="{html.escape(color)}" stroke-width="1.6"/>')
            for x, y in evals:
                parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{html.escape(color)}"/>')
            parts.append(
                f'<text x="{width - pad_r}" y="{14 + 12 * i}" text-anchor="end" '
                f'fill="{html.escape(color)}">{html.escape(name)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
