"""The PRISMA 2020 flow diagram (new studies via databases) as a standalone SVG.

Drawn directly rather than through Graphviz so the report needs no system binary;
layout follows the PRISMA 2020 template: phase bars on the left, the main flow in the
middle column, removals and exclusions beside it.
"""

from __future__ import annotations

from html import escape

from cmosynth.report.prisma import PrismaCounts

_WIDTH = 860
_MAIN_X, _SIDE_X, _BOX_W, _SIDE_W = 60, 470, 340, 360
_LINE = 17


def _box(x: int, y: int, width: int, lines: list[str], fill: str = "#ffffff",
         min_height: int = 0) -> tuple[str, int]:
    height = max(16 + _LINE * len(lines), min_height)
    text = "".join(
        f'<tspan x="{x + 10}" dy="{_LINE if i else 0}">{escape(line)}</tspan>'
        for i, line in enumerate(lines))
    svg = (f'<rect x="{x}" y="{y}" width="{width}" height="{height}" rx="4" fill="{fill}" '
           f'stroke="#333" stroke-width="1.2"/>'
           f'<text x="{x + 10}" y="{y + 21}" font-size="13" xml:space="preserve">{text}</text>')
    return svg, height


def _arrow(x1: int, y1: int, x2: int, y2: int) -> str:
    return (f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#333" stroke-width="1.2" '
            f'marker-end="url(#arrow)"/>')


def _phase(y: int, height: int, label: str) -> str:
    cx, cy = 22, y + height / 2
    return (f'<rect x="8" y="{y}" width="28" height="{height}" rx="4" fill="#a8c4e5"/>'
            f'<text x="{cx}" y="{cy}" font-size="13" font-weight="bold" text-anchor="middle" '
            f'transform="rotate(-90 {cx} {cy})">{escape(label)}</text>')


def _row(y: int, main: list[str], side: list[str] | None, min_height: int = 0
         ) -> tuple[list[str], int, int]:
    """A flow step at height `y`: its box, and beside it the box of what left the flow,
    joined by an arrow. Returns the SVG parts, the row's height and the main box's."""
    svg, main_height = _box(_MAIN_X, y, _BOX_W, main, min_height=min_height)
    parts, height = [svg], main_height
    if side:
        side_svg, side_height = _box(_SIDE_X, y, _SIDE_W, side)
        middle = y + main_height / 2
        parts += [side_svg, _arrow(_MAIN_X + _BOX_W, middle, _SIDE_X, middle)]
        height = max(height, side_height)
    return parts, height, main_height


def render_flow_svg(counts: PrismaCounts, title: str = "") -> str:
    """SVG text of the flow diagram for `counts`."""
    identified = [f"Records identified from databases (n = {counts.identified:,})"]
    identified += [f"  {name} (n = {n:,})" for name, n in counts.database_results.items()]
    removed = ["Records removed before screening:",
               f"  Duplicate records linked (n = {counts.duplicates:,})",
               "  Marked as ineligible by automation",
               f"  tools (n = {counts.excluded_automatic_total:,})"]
    removed += [f"    {reason} (n = {n:,})" for reason, n in counts.excluded_automatic.items()]
    removed.append(f"  Removed for other reasons (n = {counts.excluded_other:,})")
    excluded = [f"Records excluded (n = {counts.records_excluded:,})"]
    excluded += [f"  by {who} (n = {n:,})" for who, n in counts.excluded_by.items()]
    if counts.awaiting_screening:
        excluded.append(f"Awaiting screening (n = {counts.awaiting_screening:,})")
    # (phase, main box, side box, minimum height): the PRISMA 2020 steps for databases.
    # The last box is tall enough for the rotated "Included" label of its phase bar.
    steps = [
        ("Identification", identified, removed, 0),
        ("Screening", [f"Records screened (n = {counts.records_screened:,})"], excluded, 0),
        ("Screening", [f"Reports sought for retrieval (n = {counts.included:,})"],
         [f"Reports not retrieved (n = {counts.reports_not_retrieved:,})"]
         + (["  (full texts are not sought)"] if counts.full_texts_retrieved is None
            else ["  (no open-access full text in PMC;", "  included on the abstract)"]
            if counts.reports_not_retrieved else []), 0),
        ("Screening", [f"Reports assessed for eligibility (n = {counts.reports_assessed:,})"],
         ["Reports excluded (n = 0)", "  (full texts are not assessed by cmosynth)"], 0),
        ("Included", [f"Studies included in review (n = {counts.included:,})",
                      f"Reports of included studies (n = {counts.included:,})"], None, 80),
    ]
    parts = [f'<rect x="{_MAIN_X}" y="50" width="{_SIDE_X + _SIDE_W - _MAIN_X}" height="30" '
             f'rx="4" fill="#ffc000"/><text x="{(_MAIN_X + _SIDE_X + _SIDE_W) / 2}" y="70" '
             'font-size="14" font-weight="bold" text-anchor="middle">'
             'Identification of new studies via databases</text>']
    phases: dict[str, list[float]] = {}
    y, main_bottom = 100, None
    for phase, main, side, min_height in steps:
        if main_bottom is not None:
            parts.append(_arrow(_MAIN_X + _BOX_W // 2, main_bottom, _MAIN_X + _BOX_W // 2, y))
        row, height, main_height = _row(y, main, side, min_height)
        parts += row
        main_bottom = y + main_height
        span = phases.setdefault(phase, [y, y + height])
        span[1] = y + height
        y += height + 40
    parts += [_phase(int(top), int(bottom - top), phase) for phase, (top, bottom) in phases.items()]
    height = y - 20
    heading = (f'<text x="{_WIDTH / 2}" y="28" font-size="15" text-anchor="middle">'
               f'{escape(title)}</text>') if title else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
            f'viewBox="0 0 {_WIDTH} {height}" font-family="Helvetica, Arial, sans-serif" '
            'role="img" aria-label="PRISMA 2020 flow diagram">'
            '<defs><marker id="arrow" markerWidth="10" markerHeight="8" refX="9" refY="4" '
            'orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="#333"/></marker></defs>'
            f'{heading}{"".join(parts)}</svg>\n')
