"""A self-contained HTML page of a run's funnel (opens offline, can be mailed)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any


def render_html(run: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{s['index'] + 1}</td><td>{e(s['channel'])}</td><td>{s['sent']}</td>"
        f"<td>{s['skipped']}</td><td>{s['failed']}</td>"
        f"<td>{e(', '.join(f'{k} {v}' for k, v in sorted(s['skipped_by_reason'].items())))}"
        f"</td></tr>" for s in run["steps"])
    rate = f"{run['converted'] / run['enrolled']:.1%}" if run["enrolled"] else "–"
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>{e(run['campaign'])} · {e(run['run_id'])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}}</style></head><body>
<h1>{e(run['campaign'])}</h1><p>run {e(run['run_id'])} · {e(run['status'])}</p>
<p>enrolled {run['enrolled']} · converted {run['converted']} ({rate}) · excluded
{run['excluded']} · messages after a recorded conversion: {run['sent_after_conversion']}</p>
<table><tr><th>step</th><th>channel</th><th>sent</th><th>skipped</th><th>failed</th>
<th>skip reasons</th></tr>{rows}</table></body></html>"""


def write_html(run: dict[str, Any], path: Path) -> None:
    path.write_text(render_html(run), encoding="utf-8")
