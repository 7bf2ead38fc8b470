"""The weekly meeting report (周例会) as a printable PDF: HTML rendered by WeasyPrint.

A pure builder: it takes a ``WeeklyReport`` and returns bytes. No database, no network: the
HTML's only resources are inline ``data:`` URIs (the charts of ``dashboard.weekly_charts``;
anything else is refused), with the system's Noto Sans CJK embedded as a subset. Every text is
escaped; numbers and changes are written by ``dashboard.formatting``, the tables' columns come
from ``dashboard.weekly_columns``.
"""
from __future__ import annotations

import base64
import html
from collections.abc import Callable
from datetime import datetime

import pandas as pd

from dashboard.formatting import change_parts, format_value, plain_number
from dashboard.i18n import period_key, t, tf
from dashboard.weekly_charts import (
    BLACK_COLOUR,
    CHART_WIDTH_MM,
    DAILY_CHART_HEIGHT_MM,
    FONT_FAMILY,
    RED_BLACK_WIDTH_MM,
    RED_COLOUR,
    SCORES_CHART_WIDTH_MM,
    daily_chart_svg,
    scores_chart_height_mm,
    scores_chart_svg,
)
from dashboard.weekly_columns import (
    Column,
    category_columns,
    cell_text,
    department_page_columns,
    hot_grid_columns,
    list_marks,
    local_time,
    overdue_columns,
    period_text,
    records,
    red_black_columns,
    report_title,
    reworked_columns,
    text_of,
    trend_columns,
    week_label,
    worker_columns,
)
from dashboard.weekly_report import SUMMARY_KEYS, WeeklyReport

CASE_ROWS = 15  # overdue and reworked cases printed (the spreadsheet has all the report holds)
WORKER_ROWS = 20
TONE_COLOURS = {"good": "#1b7f3b", "bad": "#c62828", "neutral": "#5f6368"}

_CSS = """
@page {
  size: A4 landscape;
  margin: 11mm 12mm 14mm 12mm;
  @bottom-left { content: "%(footer_left)s"; font-size: 9pt; color: #555; }
  @bottom-right { content: %(page_of)s; font-size: 9pt; color: #555; }
}
html { font-family: "%(font)s", sans-serif; color: #1a1a1a; font-size: 12pt; line-height: 1.3; }
body { margin: 0; }
h1 { font-size: 22pt; margin: 0; line-height: 1.2; }
h2 { font-size: 15pt; margin: 3mm 0 2mm 0; padding-left: 2.5mm; border-left: 2mm solid #1f5fa8; }
.period { font-size: 12pt; color: #333; margin: 0 0 2mm 0; }
.new-page { break-before: page; }
.keep { break-inside: avoid; }
.tiles { display: grid; grid-template-columns: repeat(6, 1fr); gap: 2mm; }
.tile { border: 0.3mm solid #c5cfdc; border-radius: 1.5mm; padding: 1.2mm 2mm; background: #f6f8fb; }
.tile .label { font-size: 10.5pt; color: #333; }
.tile .value { font-size: 19pt; font-weight: bold; line-height: 1.15; }
.tile .delta { font-size: 10.5pt; font-weight: bold; }
.tile .prev { font-size: 9.5pt; color: #555; }
.good { color: %(good)s; } .bad { color: %(bad)s; } .neutral { color: %(neutral)s; }
.legend { font-size: 9.5pt; color: #555; margin: 1mm 0 0 0; }
.chart img { display: block; }
table { border-collapse: collapse; width: 100%%; font-size: 11pt; }
th { background: #e8eef6; font-weight: bold; text-align: right; padding: 1.1mm 1.5mm; border-bottom: 0.4mm solid #7f8fa6; }
th.text { text-align: left; }
td { padding: 0.8mm 1.5mm; border-bottom: 0.2mm solid #d5dbe3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.red td { background: #fde2e2; }
tr.black td { background: #dcdcdc; }
.tag { white-space: nowrap; display: inline-block; padding: 0 1.5mm; border-radius: 1mm; color: white; font-weight: bold; }
.tag.red { background: %(red)s; } .tag.black { background: %(black)s; }
.red-black { display: grid; grid-template-columns: %(lists_mm)smm 1fr; gap: 6mm; }
.list { margin-bottom: 5mm; }
.list h3 { margin: 0; padding: 1.5mm 3mm; color: white; font-size: 14pt; }
.list.red h3 { background: %(red)s; } .list.black h3 { background: %(black)s; }
.list.red { border: 0.5mm solid %(red)s; } .list.black { border: 0.5mm solid %(black)s; }
.list table { font-size: 12pt; }
.list th { white-space: nowrap; }
.note { font-size: 10pt; color: #555; margin: 1mm 0; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 6mm; }
.empty { color: #777; text-align: center; padding: 3mm; }
"""


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _css_string(text: str) -> str:
    """A CSS string literal's content: quotes, backslashes, line breaks and ``<`` escaped."""
    return "".join({"\\": "\\\\", '"': '\\"', "\n": "\\a ", "<": "\\3c "}.get(char, char) for char in text)


def _page_of_css(lang: str) -> str:
    """``"第 " counter(page) " 页 / 共 " counter(pages) " 页"`` from the ``page_of`` label."""
    template = t("page_of", lang)
    parts = []
    rest = template
    while rest:
        positions = [(rest.find(token), token, counter) for token, counter in (("{page}", "counter(page)"), ("{pages}", "counter(pages)")) if token in rest]
        if not positions:
            parts.append(f'"{_css_string(rest)}"')
            break
        index, token, counter = min(positions)
        if index:
            parts.append(f'"{_css_string(rest[:index])}"')
        parts.append(counter)
        rest = rest[index + len(token):]
    return " ".join(parts)


def _e(value: object) -> str:
    return html.escape(text_of(value))


def _table_html(columns: list[Column], rows: list[dict], lang: str, row_class: Callable[[dict], str] | None = None,
                cell_html: dict[str, Callable[[dict], str]] | None = None) -> str:
    head = "".join(f'<th class="{"text" if column.kind == "text" else "num"}">{_e(t(column.label, lang))}</th>' for column in columns)
    if not rows:
        body = f'<tr><td class="empty" colspan="{len(columns)}">{_e(t("no_data", lang))}</td></tr>'
    else:
        lines = []
        for record in rows:
            cells = []
            for column in columns:
                if cell_html and column.label in cell_html:
                    content = cell_html[column.label](record)
                else:
                    content = _e(cell_text(column.kind, column.value(record)))
                css = ' class="num"' if column.kind != "text" else ""
                cells.append(f"<td{css}>{content}</td>")
            css = f' class="{row_class(record)}"' if row_class and row_class(record) else ""
            lines.append(f"<tr{css}>{''.join(cells)}</tr>")
        body = "".join(lines)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _tiles_html(report: WeeklyReport, lang: str) -> str:
    tiles = []
    for key in SUMMARY_KEYS:
        current, previous = report.totals.get(key), report.previous_totals.get(key)
        delta, tone = change_parts(key, current, previous, lang)
        tiles.append(
            '<div class="tile">'
            f'<div class="label">{_e(t(key, lang))}</div>'
            f'<div class="value">{_e(format_value(key, plain_number(current), lang))}</div>'
            f'<div class="delta {tone}">{_e(delta)}</div>'
            f'<div class="prev">{_e(t(period_key("last_week", report.kind), lang))} {_e(format_value(key, plain_number(previous), lang))}</div>'
            "</div>"
        )
    return f'<div class="tiles">{"".join(tiles)}</div><p class="legend">{_e(t("tone_legend", lang))}</p>'


def _red_black_html(report: WeeklyReport, lang: str) -> str:
    columns = red_black_columns()
    boxes = []
    for kind, frame in (("red", report.red), ("black", report.black)):
        boxes.append(f'<div class="list {kind}"><h3>{_e(t(f"{kind}_list", lang))}</h3>{_table_html(columns, records(frame), lang)}</div>')
    return "".join(boxes)


def _rows_note(shown: int, total: object, lang: str) -> str:
    total = plain_number(total)
    if total is None or total <= shown:
        return ""
    return f'<p class="note">{_e(tf("rows_shown", lang, shown=shown, total=total))}</p>'


def html_source(report: WeeklyReport, lang: str = "zh", daily: pd.DataFrame | None = None, generated_at: datetime | None = None,
                min_due: int | None = None) -> str:
    """The printable HTML of the weekly report (what ``render`` turns into the PDF); every text escaped.

    ``daily`` (``report.daily`` when not given) adds the chart of reported and closed per day;
    ``min_due`` (``DomainConfig.min_due``) adds the red/black list rule under the lists.
    """
    tz = report.window.start.tzinfo
    title = report_title(report, lang)
    footer = f"{title} {week_label(report.window)}"
    if generated_at is not None:
        footer += " · " + tf("generated_at", lang, time=local_time(generated_at, tz).strftime("%Y-%m-%d %H:%M"))
    css = _CSS % {
        "font": FONT_FAMILY, "footer_left": _css_string(footer), "page_of": _page_of_css(lang),
        "good": TONE_COLOURS["good"], "bad": TONE_COLOURS["bad"], "neutral": TONE_COLOURS["neutral"],
        "red": RED_COLOUR, "black": BLACK_COLOUR, "lists_mm": RED_BLACK_WIDTH_MM,
    }
    marks = list_marks(report)
    parts = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="period">{_e(period_text(report, lang))}</p>',
        f'<section class="keep"><h2>{_e(t(period_key("section_totals", report.kind), lang))}</h2>{_tiles_html(report, lang)}</section>',
    ]
    daily = report.daily if daily is None else daily
    if daily is not None:
        image = _data_uri(daily_chart_svg(daily, lang, kind=report.kind))
        parts.append(f'<section class="chart keep"><h2>{_e(t(period_key("section_daily", report.kind), lang))}</h2>'
                     f'<img src="{image}" style="width: {CHART_WIDTH_MM}mm; height: {DAILY_CHART_HEIGHT_MM}mm" alt=""></section>')

    rule = f'<p class="note">{_e(tf("red_black_rule", lang, min_due=min_due))}</p>' if min_due is not None else ""
    scored = int(report.departments["score"].notna().sum()) if not report.departments.empty else 0
    chart = f'<p class="empty">{_e(t("no_data", lang))}</p>'
    if scored:
        height = scores_chart_height_mm(scored)
        image = _data_uri(scores_chart_svg(report, lang, height_mm=height))
        chart = f'<img src="{image}" style="width: {SCORES_CHART_WIDTH_MM}mm; height: {height:.1f}mm" alt="">'
    parts.append(f'<section class="new-page red-black"><div><h2>{_e(t("section_red_black", lang))}</h2>{_red_black_html(report, lang)}{rule}</div>'
                 f'<div class="chart"><h2>{_e(t("section_scores", lang))}</h2>{chart}</div></section>')

    def list_tag(row: dict) -> str:
        mark = marks.get(row.get("dept"))
        return f'<span class="tag {mark}">{_e(t(f"{mark}_list", lang))}</span>' if mark else ""

    tag = {"list_mark": list_tag}
    parts.append(f'<section class="new-page"><h2>{_e(t("section_departments", lang))}</h2>'
                 f'{_table_html(department_page_columns(report, lang), records(report.departments), lang, row_class=lambda row: marks.get(row.get("dept"), ""), cell_html=tag)}'
                 "</section>")

    def change_cell(row: dict) -> str:
        text, tone = change_parts("reported", row.get("reported"), row.get("previous"), lang)  # volumes are not judged
        return f'<span class="{tone}">{_e(text)}</span>'

    parts.append(
        '<section class="new-page"><div class="pair">'
        f'<div><h2>{_e(t(period_key("section_categories", report.kind), lang))}</h2>{_table_html(category_columns(lang, report.kind), records(report.categories), lang, cell_html={period_key("change_vs_last_week", report.kind): change_cell})}</div>'
        f'<div><h2>{_e(t("section_hot_grids", lang))}</h2>{_table_html(hot_grid_columns(lang), records(report.hot_grids), lang)}</div>'
        "</div></section>"
    )
    overdue = records(report.overdue_cases)[:CASE_ROWS]
    reworked = records(report.reworked_cases)[:CASE_ROWS]
    parts.append(f'<section class="new-page"><h2>{_e(t("section_overdue", lang))}</h2>'
                 f'{_table_html(overdue_columns(lang), overdue, lang)}{_rows_note(len(overdue), report.totals.get("overdue"), lang)}</section>')
    parts.append(f'<section class="keep"><h2>{_e(t("section_reworked", lang))}</h2>'
                 f'{_table_html(reworked_columns(lang), reworked, lang)}{_rows_note(len(reworked), report.totals.get("reworked"), lang)}</section>')
    workers = records(report.workers)[:WORKER_ROWS]
    parts.append(f'<section class="new-page"><h2>{_e(t("section_workers", lang))}</h2>{_table_html(worker_columns(lang), workers, lang)}</section>')
    parts.append(f'<section class="keep"><h2>{_e(t("section_trend", lang))}</h2>{_table_html(trend_columns(lang, report.kind), records(report.trend), lang)}</section>')

    html_lang = "en" if lang == "en" else "zh-CN"
    document_title = _e(f"{title} {week_label(report.window)}")
    return (f'<!DOCTYPE html><html lang="{html_lang}"><head><meta charset="utf-8"><title>{document_title}</title>'
            f"<style>{css}</style></head><body>{''.join(parts)}</body></html>")


def _offline_fetcher():
    """A URL fetcher for ``data:`` URIs only: a report never reaches for the network."""
    from weasyprint import URLFetcher

    return URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)


def render(report: WeeklyReport, lang: str = "zh", daily: pd.DataFrame | None = None, generated_at: datetime | None = None,
               min_due: int | None = None) -> bytes:
    """The weekly report as an A4 landscape PDF with the CJK font embedded.

    ``daily``: per-day counts (``report.daily`` when not given). ``generated_at``: the time printed in the footer (the
    caller's clock; none is read here).
    """
    from weasyprint import HTML

    document = HTML(string=html_source(report, lang, daily, generated_at, min_due), base_url=None, url_fetcher=_offline_fetcher())
    return document.write_pdf()
