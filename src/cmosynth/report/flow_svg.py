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


def render_flow_svg(counts: PrismaCounts, title: str = "") -> str:
    """SVG text of the flow diagram for `counts`."""
    parts: list[str] = []
    y = 50
    parts.append(f'<rect x="{_MAIN_X}" y="{y}" width="{_SIDE_X + _SIDE_W - _MAIN_X}" height="30" '
                 f'rx="4" fill="#ffc000"/><text x="{(_MAIN_X + _SIDE_X + _SIDE_W) / 2}" '
                 f'y="{y + 20}" font-size="14" font-weight="bold" text-anchor="middle">'
                 'Identification of new studies via databases</text>')
    y += 50
    ident_top = y
    lines = [f"Records identified from databases (n = {counts.identified:,})"]
    lines += [f"  {name} (n = {n:,})" for name, n in counts.database_results.items()]
    svg, h_ident = _box(_MAIN_X, y, _BOX_W, lines)
    parts.append(svg)
    removed = ["Records removed before screening:",
               f"  Duplicate records linked (n = {counts.duplicates:,})",
               "  Marked as ineligible by automation",
               f"  tools (n = {counts.excluded_automatic_total:,})"]
    removed += [f"    {reason} (n = {n:,})" for reason, n in counts.excluded_automatic.items()]
    removed.append(f"  Removed for other reasons (n = {counts.excluded_other:,})")
    svg, h_removed = _box(_SIDE_X, y, _SIDE_W, removed)
    parts.append(svg)
    parts.append(_arrow(_MAIN_X + _BOX_W, y + h_ident / 2, _SIDE_X, y + h_ident / 2))
    y += max(h_ident, h_removed) + 40
    parts.append(_arrow(_MAIN_X + _BOX_W // 2, ident_top + h_ident, _MAIN_X + _BOX_W // 2, y))
    ident_bottom = y - 20

    screen_top = y
    svg, h = _box(_MAIN_X, y, _BOX_W, [f"Records screened (n = {counts.records_screened:,})"])
    parts.append(svg)
    excluded = [f"Records excluded (n = {counts.records_excluded:,})"]
    excluded += [f"  by {who} (n = {n:,})" for who, n in counts.excluded_by.items()]
    if counts.awaiting_screening:
        excluded.append(f"Awaiting screening (n = {counts.awaiting_screening:,})")
    svg, h_ex = _box(_SIDE_X, y, _SIDE_W, excluded)
    parts.append(svg)
    parts.append(_arrow(_MAIN_X + _BOX_W, y + h / 2, _SIDE_X, y + h / 2))
    y += max(h, h_ex) + 40
    parts.append(_arrow(_MAIN_X + _BOX_W // 2, screen_top + h, _MAIN_X + _BOX_W // 2, y))

    svg, h = _box(_MAIN_X, y, _BOX_W, [f"Reports sought for retrieval (n = {counts.included:,})"])
    parts.append(svg)
    svg, _ = _box(_SIDE_X, y, _SIDE_W, ["Reports not retrieved (n = 0)"])
    parts.append(svg)
    parts.append(_arrow(_MAIN_X + _BOX_W, y + h / 2, _SIDE_X, y + h / 2))
    y += h + 40
    parts.append(_arrow(_MAIN_X + _BOX_W // 2, y - 40, _MAIN_X + _BOX_W // 2, y))
    svg, h = _box(_MAIN_X, y, _BOX_W,
                  [f"Reports assessed for eligibility (n = {counts.included:,})"])
    parts.append(svg)
    svg, _ = _box(_SIDE_X, y, _SIDE_W, ["Reports excluded (n = 0)",
                                         "  (full texts are not assessed by cmosynth)"])
    parts.append(svg)
    parts.append(_arrow(_MAIN_X + _BOX_W, y + h / 2, _SIDE_X, y + h / 2))
    y += h + 40
    screen_bottom = y - 20
    parts.append(_arrow(_MAIN_X + _BOX_W // 2, y - 40, _MAIN_X + _BOX_W // 2, y))

    included_top = y
    # Tall enough for the rotated "Included" label of its phase bar.
    svg, h = _box(_MAIN_X, y, _BOX_W, [f"Studies included in review (n = {counts.included:,})",
                                       f"Reports of included studies (n = {counts.included:,})"],
                  min_height=80)
    parts.append(svg)
    y += h + 20

    parts.append(_phase(ident_top, ident_bottom - ident_top, "Identification"))
    parts.append(_phase(screen_top, screen_bottom - screen_top, "Screening"))
    parts.append(_phase(included_top, h, "Included"))
    heading = (f'<text x="{_WIDTH / 2}" y="28" font-size="15" text-anchor="middle">'
               f'{escape(title)}</text>') if title else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{y}" '
            f'viewBox="0 0 {_WIDTH} {y}" font-family="Helvetica, Arial, sans-serif" '
            'role="img" aria-label="PRISMA 2020 flow diagram">'
            '<defs><marker id="arrow" markerWidth="10" markerHeight="8" refX="9" refY="4" '
            'orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="#333"/></marker></defs>'
            f'{heading}{"".join(parts)}</svg>\n')
