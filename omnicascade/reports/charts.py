"""Inline SVG charts, drawn in Python: the HTML report stays one offline file with no
scripts or fonts from anywhere else. Every chart has a fixed id the browser test looks for."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from omnicascade.reports.format import revenue
from omnicascade.vocabulary import HOLDOUT, Phase

PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#0891b2"]
HOLDOUT_COLOR = "#6b7280"
INK, MUTED, GRID = "#111827", "#6b7280", "#e5e7eb"


def colors(names: list[str]) -> dict[str, str]:
    out, i = {}, 0
    for n in names:
        if n == HOLDOUT:
            out[n] = HOLDOUT_COLOR
        else:
            out[n] = PALETTE[i % len(PALETTE)]
            i += 1
    return out


def _svg(chart_id: str, width: int, height: int, body: str, title: str) -> str:
    """The chart at the page's width; on a phone at least 900 px wide (report CSS
    `.chart-scroll`), so its 11–12 px labels stay ≥ 10 px, in a region that scrolls by
    keyboard too."""
    return (f'<div class="chart-scroll" tabindex="0" role="region" '
            f'aria-label="{escape(title)} (scrolls)">'
            f'<svg id="{chart_id}" class="chart" role="img" aria-label="{escape(title)}" '
            f'viewBox="0 0 {width} {height}" width="100%" '
            f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
            f'<title>{escape(title)}</title>{body}</svg></div>')


def _text(x: float, y: float, s: str, size: int = 12, anchor: str = "start",
          fill: str = INK, weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}" font-weight="{weight}">{escape(s)}</text>')


def _rect(x: float, y: float, w: float, h: float, fill: str, opacity: float = 1.0,
          extra: str = "") -> str:
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" '
            f'fill="{fill}" fill-opacity="{opacity}" rx="2" {extra}/>')


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def funnel_chart(report: dict[str, Any]) -> str:
    """Per variant: enrolled, then each cascade step (sent, with delivered and opened
    nested inside where the provider reports them), then converted."""
    names = [n for n in report["variants"] if n != HOLDOUT]
    col = colors(list(report["variants"]))
    width, label_w, row_h = 1000, 150, 26
    bar_w = width - label_w - 340
    parts, y = [], 10
    for name in names:
        v = report["variants"][name]
        rows = [r for r in report["funnel"]["by_variant"][name] if r["phase"] == Phase.CASCADE]
        top = max(v["enrolled"], 1)
        parts.append(_text(0, y + 14, f"{name}", 14, weight="bold", fill=col[name]))
        y += 24
        lines: list[tuple[str, list[tuple[int, float]], str]] = [
            ("Enrolled", [(v["enrolled"], 0.9)], f"{v['enrolled']:,}")]
        for r in rows:
            layers = [(r["sent"], 0.35)]
            words = [f"{r['sent']:,} sent"]
            for key, opacity in (("delivered", 0.55), ("opened", 0.8)):
                if r[key] is not None:
                    layers.append((r[key], opacity))
                    words.append(f"{r[key]:,} {key}")
            words.append(f"{r['converted_after']:,} conv.")
            lines.append((f"{r['label']} · {r['channel']}", layers,
                          " · ".join(words)))
        lines.append(("Converted", [(v["converted"], 1.0)],
                      f"{v['converted']:,} ({_pct(v['rate'])})"))
        for label, layers, detail in lines:
            parts.append(_text(label_w - 8, y + 17, label, 12, "end", MUTED))
            parts.append(_rect(label_w, y + 4, bar_w, row_h - 8, GRID, 0.6))
            for count, opacity in layers:
                parts.append(_rect(label_w, y + 4, bar_w * count / top, row_h - 8, col[name],
                                   opacity))
            parts.append(_text(label_w + bar_w + 8, y + 17, detail, 11, fill=INK))
            y += row_h
        y += 14
    if not names:
        parts.append(_text(0, 20, "No messages yet.", 13, fill=MUTED))
        y = 40
    return _svg("chart-funnel", width, y, "".join(parts), "Funnel per variant")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= value:
            return m * exp
    return 10 * exp


def curve_chart(report: dict[str, Any]) -> str:
    """Cumulative conversion rate by days since enrollment, one line per variant."""
    curves = report["conversion_curve"]
    col = colors(list(report["variants"]))
    width, height, left, right, top, bottom = 1000, 340, 56, 150, 16, 44
    pw, ph = width - left - right, height - top - bottom
    max_days = max((p[0] / 24 for pts in curves.values() for p in pts), default=0.0)
    max_days = max(_nice_max(max_days), 1.0)
    max_rate = _nice_max(max((p[1] for pts in curves.values() for p in pts), default=0.0))
    parts = []
    for i in range(6):
        frac = i / 5
        yy = top + ph - ph * frac
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}" '
                     f'stroke="{GRID}"/>')
        parts.append(_text(left - 6, yy + 4, f"{max_rate * frac:.1%}", 11, "end", MUTED))
        xx = left + pw * frac
        parts.append(_text(xx, top + ph + 18, f"{max_days * frac:g}", 11, "middle", MUTED))
    axis = "days since the customer entered" + (
        f" (campaign time, {report['rehearsal']['label']})" if report.get("rehearsal") else "")
    parts.append(_text(left + pw / 2, height - 6, axis, 12, "middle", MUTED))
    ly = top + 8
    for name, pts in curves.items():
        if not pts:
            continue
        path = []
        prev_y = top + ph
        for days_h, rate in pts:  # a step line: the rate jumps at each conversion
            x = left + pw * (days_h / 24) / max_days
            y = top + ph - ph * rate / max_rate
            path.append(f"{x:.1f},{prev_y:.1f} {x:.1f},{y:.1f}")
            prev_y = y
        last_x = left + pw * max(pts[-1][0] / 24 / max_days, 0)
        path.append(f"{max(last_x, left + pw):.1f},{prev_y:.1f}")
        dash = ' stroke-dasharray="6 4"' if name == HOLDOUT else ""
        parts.append(f'<polyline class="series" data-variant="{escape(name)}" fill="none" '
                     f'stroke="{col[name]}" stroke-width="2.5"{dash} '
                     f'points="{" ".join(path)}"/>')
        rate = report["variants"][name]["rate"]
        parts.append(f'<line x1="{left + pw + 14}" x2="{left + pw + 34}" y1="{ly:.1f}" '
                     f'y2="{ly:.1f}" stroke="{col[name]}" stroke-width="3"{dash}/>')
        parts.append(_text(left + pw + 40, ly + 4, f"{name} {_pct(rate)}", 12))
        ly += 20
    return _svg("chart-timeline", width, height, "".join(parts),
                "Conversion over time per variant")


def attribution_chart(report: dict[str, Any]) -> str:
    """Conversions credited to each channel's last message, and those with none."""
    a = report["attribution"]
    rows = [(ch, r["conversions"], revenue(r), "#2563eb")
            for ch, r in sorted(a["by_channel"].items(), key=lambda kv: -kv[1]["conversions"])]
    labels = {HOLDOUT: "holdout (no messages)", "before_first_message": "before any message"}
    rows += [(labels[k], r["conversions"], revenue(r), HOLDOUT_COLOR)
             for k, r in a["no_prior_message"].items() if r["conversions"]]
    width, label_w, row_h = 1000, 190, 30
    bar_w = width - label_w - 380  # room for `… conversions · 2,310.17 EUR + 653.80 USD`
    top = max([r[1] for r in rows] + [1])
    parts, y = [], 8
    for label, n, money, color in rows:
        parts.append(_text(label_w - 8, y + 19, label, 12, "end", MUTED))
        parts.append(_rect(label_w, y + 5, bar_w * n / top, row_h - 10, color, 0.85))
        parts.append(_text(label_w + bar_w * n / top + 8, y + 19,
                           f"{n:,} conversions · {money}", 11))
        y += row_h
    if not rows:
        parts.append(_text(0, 20, "No conversions yet.", 13, fill=MUTED))
        y = 40
    return _svg("chart-attribution", width, y + 8, "".join(parts),
                "Conversions by the channel of the last message")


def rates_chart(report: dict[str, Any]) -> str:
    """Conversion rate per variant with its 95% Wilson interval."""
    names = list(report["variants"])
    col = colors(names)
    width, label_w, row_h = 1000, 190, 34
    pw = width - label_w - 200
    hi = _nice_max(max([report["variants"][n]["ci_high"] or 0 for n in names] + [0.01]))
    parts, y = [], 8
    for i in range(6):
        x = label_w + pw * i / 5
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="4" y2="{8 + row_h * len(names)}" '
                     f'stroke="{GRID}"/>')
        parts.append(_text(x, 22 + row_h * len(names), f"{hi * i / 5:.1%}", 11, "middle",
                           MUTED))
    for n in names:
        v = report["variants"][n]
        parts.append(_text(label_w - 8, y + 21, n, 12, "end", MUTED))
        if v["rate"] is not None:
            x0, x1 = (label_w + pw * v[k] / hi for k in ("ci_low", "ci_high"))
            xm = label_w + pw * v["rate"] / hi
            cy = y + row_h / 2
            parts.append(f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
                         f'stroke="{col[n]}" stroke-width="3" stroke-linecap="round"/>')
            parts.append(f'<circle cx="{xm:.1f}" cy="{cy:.1f}" r="6" fill="{col[n]}"/>')
            parts.append(_text(label_w + pw + 12, y + 21,
                               f"{_pct(v['rate'])} ({_pct(v['ci_low'])}–{_pct(v['ci_high'])})",
                               12))
        y += row_h
    return _svg("chart-rates", width, y + 24, "".join(parts),
                "Conversion rate per variant with 95% confidence interval")
