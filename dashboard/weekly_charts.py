"""The weekly meeting report's charts, drawn with matplotlib as SVG for the PDF.

Text stays text in the SVG (the PDF's embedded CJK font draws it) and names are drawn as
written (``$…$`` in one is not TeX); the same report gives the same SVG. The charts are sized
for the PDF's A4 landscape page, whose widths are defined here.
"""
from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import matplotlib
import pandas as pd

from dashboard.formatting import plain_number
from dashboard.i18n import period_key, t
from dashboard.weekly_columns import list_marks, text_of
from dashboard.weekly_report import WeeklyReport

if TYPE_CHECKING:  # imported where a chart is drawn
    from matplotlib.figure import Figure

matplotlib.use("Agg")  # no display on a server; figures are drawn straight to SVG

FONT_FAMILY = "Noto Sans CJK SC"  # the PDF embeds it
CHART_WIDTH_MM = 273  # A4 landscape (297 mm) less 12 mm margins
DAILY_CHART_HEIGHT_MM = 56
RED_BLACK_WIDTH_MM = 125  # the lists' column on the red/black page; the score chart takes the rest
SCORES_CHART_WIDTH_MM = CHART_WIDTH_MM - RED_BLACK_WIDTH_MM - 6
SCORES_CHART_MAX_MM = 168  # a page's height under its heading; more departments make thinner bars
SCORES_BAR_MM = 6.0
MM_PER_INCH = 25.4

RED_COLOUR = "#c62828"
BLACK_COLOUR = "#212121"
BAR_COLOUR = "#5b7fa6"
THIS_WEEK_COLOURS = {"reported": "#1f5fa8", "closed": "#2e8b57"}
LAST_WEEK_COLOURS = {"reported": "#7fa7d6", "closed": "#8fcca8"}


def _chart_style() -> dict:
    return {
        "svg.fonttype": "none",  # text stays text: the PDF's embedded CJK font draws it
        "svg.hashsalt": "gridops-weekly",  # stable ids, so the same report gives the same SVG
        "font.family": [FONT_FAMILY, "DejaVu Sans"],
        "font.size": 11,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 12,
        "legend.frameon": False,
        "text.parse_math": False,  # names are drawn as written: "$…$" in one is not TeX
    }


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _inch(mm: float) -> float:
    return mm / MM_PER_INCH


def daily_chart_svg(daily: pd.DataFrame, lang: str = "zh", width_mm: float = CHART_WIDTH_MM, height_mm: float = DAILY_CHART_HEIGHT_MM,
                    kind: str = "week") -> str:
    """Bars for reported and closed per day (per 7 days in a quarter) this period, lines for
    the same days of the period before; a week's days are named by weekday."""
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_chart_style()):
        figure = Figure(figsize=(_inch(width_mm), _inch(height_mm)), layout="constrained")
        axes = figure.add_subplot()
        positions = list(range(len(daily)))
        if kind == "week":
            labels = [f"{t(f'weekday_{weekday}', lang)}\n{day:%m-%d}" for weekday, day in zip(daily["weekday"], daily["date"])]
        else:  # a month's 31 days or a quarter's 14 buckets: the date alone, smaller
            labels = [f"{day:%m-%d}" if day is not None else "" for day in daily["date"]]
        bar = 0.36
        for shift, name, label in ((-bar / 2, "reported", "chart_reported_this"), (bar / 2, "closed", "chart_closed_this")):
            label = period_key(label, kind)
            values = [plain_number(value) for value in daily[name]]
            drawn = [(position + shift, value) for position, value in zip(positions, values) if value is not None]
            rects = axes.bar([x for x, _ in drawn], [v for _, v in drawn], width=bar, color=THIS_WEEK_COLOURS[name], label=t(label, lang))
            axes.bar_label(rects, fontsize=9 if len(positions) <= 14 else 6, padding=1)
        for name, label in (("previous_reported", "chart_reported_last"), ("previous_closed", "chart_closed_last")):
            label = period_key(label, kind)
            values = [plain_number(value) for value in daily[name]]
            colour = LAST_WEEK_COLOURS[name.removeprefix("previous_")]
            axes.plot(positions, [math.nan if value is None else value for value in values], color=colour, linestyle="--",
                      linewidth=2, marker="o", markersize=4, label=t(label, lang))
        axes.set_xticks(positions, labels, fontsize=11 if len(positions) <= 14 else 7, rotation=0 if len(positions) <= 14 else 90)
        axes.set_xlim(-0.6, len(positions) - 0.4)
        axes.set_ylim(bottom=0)
        axes.margins(y=0.15)
        axes.grid(axis="y", color="#dddddd", linewidth=0.6)
        axes.set_axisbelow(True)
        handles, labels = axes.get_legend_handles_labels()
        order = [2, 3, 0, 1]  # this week's bars first, then last week's lines
        axes.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return _svg(figure)


def scores_chart_svg(report: WeeklyReport, lang: str = "zh", width_mm: float = SCORES_CHART_WIDTH_MM, height_mm: float | None = None) -> str:
    """Department scores as horizontal bars, best at the top; red-list bars red, black-list bars black."""
    from matplotlib.figure import Figure

    table = report.departments[report.departments["score"].notna()] if not report.departments.empty else report.departments
    marks = list_marks(report)
    names = [text_of(name) for name in table["name"]] if not table.empty else []
    scores = [plain_number(score) for score in table["score"]] if not table.empty else []
    colours = [{"red": RED_COLOUR, "black": BLACK_COLOUR}.get(marks.get(code), BAR_COLOUR) for code in table.get("dept", [])]
    height_mm = height_mm or scores_chart_height_mm(len(names))
    with matplotlib.rc_context(_chart_style()):
        figure = Figure(figsize=(_inch(width_mm), _inch(height_mm)), layout="constrained")
        axes = figure.add_subplot()
        positions = list(range(len(names)))
        rects = axes.barh(positions, scores, color=colours, height=0.7)
        axes.bar_label(rects, labels=[f"{score:.1f}" for score in scores], fontsize=10, padding=2)
        axes.set_yticks(positions, names)
        axes.invert_yaxis()
        axes.set_xlim(0, 105)
        axes.set_xlabel(t("score", lang))
        axes.grid(axis="x", color="#dddddd", linewidth=0.6)
        axes.set_axisbelow(True)
        return _svg(figure)


def scores_chart_height_mm(bars: int) -> float:
    """One legible row per department, within the red/black page."""
    return max(40.0, min(SCORES_CHART_MAX_MM, 14.0 + SCORES_BAR_MM * bars))
