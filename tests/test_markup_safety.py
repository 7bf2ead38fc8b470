"""Text from feeds and import files is shown as text, never parsed as markup (no stored XSS).

Free text (descriptions, reporters, contacts, actors) and names from import files (grids,
classes, departments, workers) may hold anything. The screens are safe by construction:
Dash components set text, and the map's tooltips are DOM nodes built with ``textContent``
from a plain-text ``label`` (assets/gridops_map.js). These tests hold every place where a
string could still be parsed as HTML to that: the feature builders with hostile text, every
GeoJSON layer of every screen, and a static check of the Python and JavaScript sources.
"""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import dash_leaflet as dl
import pytest

from gridrules import wall_rules
from layouts import review, wall, widgets
from tests.support import HOSTILE_TEXTS, utc

PROJECT = Path(__file__).resolve().parent.parent
NOW = utc(2026, 11, 27, 6, 0)
HOSTILE = HOSTILE_TEXTS
# properties dash-leaflet's default binding (and Leaflet's bindTooltip/bindPopup with a
# string) parse as HTML: no feature may carry them
HTML_PROPERTIES = {"tooltip", "popup"}
SQUARE = {"type": "Polygon", "coordinates": [[[120.6, 31.2], [120.7, 31.2], [120.7, 31.3], [120.6, 31.3], [120.6, 31.2]]]}


def case_record(case_id: str, category: str) -> dict:
    at = lambda minutes: (NOW + timedelta(minutes=minutes)).isoformat()  # noqa: E731
    return {
        "id": case_id, "status": "dispatched", "stage": "handle", "grid": "G1", "category": category, "grade": "A", "dept": "CGJ",
        "source": "patrol", "lat": 31.2, "lon": 120.6, "reported_at": at(-5), "stage_started_at": at(-1), "stage_deadline": at(60),
        "stage_due_soon_at": at(30), "deadline": at(60), "rework_count": 0,
    }


def hostile_features() -> list:
    """(builder, feature, the hostile text it was given) for every builder of map features."""
    found = []
    for text in HOSTILE:
        found.append(("wall_rules.case_feature", wall_rules.case_feature(case_record("C1", "K1"), NOW, {"K1": text}), text))
        found.append(("wall_rules.case_feature (id)", wall_rules.case_feature(case_record(text, "K1"), NOW, {}), text))
        found.append(("wall_rules.worker_feature", wall_rules.worker_feature(text, {"lat": 31.2, "lon": 120.6}, True, []), text))
        grids = [{"code": "G1", "name": text, "geometry": SQUARE}]
        found += [("widgets.grid_collection", f, text) for f in widgets.grid_collection(grids, {"G1": {"in_progress": 2, "overdue": 1}}, "zh")["features"]]
        children = [{"code": "T1", "name": text, "geometry": SQUARE, "reported": 3, "in_progress": 2, "overdue": 1, "score": 72.5, "grade": "C"}]
        found += [("review.area_collection", f, text) for f in review.area_collection(children, "zh")["features"]]
    return [pytest.param(*entry, id=f"{entry[0]}-{n}") for n, entry in enumerate(found)]


@pytest.mark.parametrize("builder, feature, text", hostile_features())
def test_map_features_carry_text_only_as_a_plain_label(builder, feature, text):
    properties = feature["properties"]
    assert HTML_PROPERTIES.isdisjoint(properties), f"{builder} sets {HTML_PROPERTIES & set(properties)}, which dash-leaflet renders as HTML"
    lines = properties["label"]
    assert isinstance(lines, list) and all(isinstance(line, str) for line in lines)
    # shown as given: a text node needs no escaping, and escaping would show "&lt;" on screen
    assert any(text in line for line in lines), (builder, lines)


def geojson_layers(component) -> list:
    """Every dl.GeoJSON inside a Dash component tree."""
    found = [component] if isinstance(component, dl.GeoJSON) else []
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children] if children is not None else []:
        found += geojson_layers(child)
    return found


def test_every_geojson_layer_of_every_map_binds_labels_as_text():
    collection = {"type": "FeatureCollection", "features": []}
    bounds = [[31.2, 120.6], [31.3, 120.7]]
    maps = {
        "home": widgets.district_map("m", collection, collection, bounds, "http://tiles.local/{z}/{x}/{y}.png", "g", "o", "gridops.map.gridStyle"),
        "review": review.area_map(collection, collection, bounds),
        "wall": wall.wall_map(collection, collection, collection, bounds, None, {}, {}, False, collection, collection, collection),
    }
    for screen, component in maps.items():
        layers = geojson_layers(component)
        assert layers, screen
        for layer in layers:
            # without onEachFeature dash-leaflet binds properties.tooltip and .popup as HTML
            assert layer.onEachFeature == widgets.LABEL_BINDER, (screen, getattr(layer, "id", None))


def test_a_geojson_layer_cannot_be_given_another_binding():
    with pytest.raises(ValueError):
        widgets.geojson(data={"type": "FeatureCollection", "features": []}, onEachFeature={"variable": "somewhere.else"})


# ---------------------------------------------------------------- static checks of the sources


def python_sources() -> list[Path]:
    return [p for folder in ("dashboard", "layouts", "callbacks") for p in sorted((PROJECT / folder).rglob("*.py"))]


# Ways to put markup from a string on a page, each with why it is refused.
PYTHON_MARKUP_SINKS = {
    r"\bdl\.GeoJSON\(": "a GeoJSON layer not made by layouts.widgets.geojson (its default binding renders tooltip/popup as HTML)",
    r"[\"']tooltip[\"']\s*:": "a tooltip property (HTML to dash-leaflet); use label",
    r"[\"']popup[\"']\s*:": "a popup property (HTML to dash-leaflet); use label",
    r"dangerously_allow_html": "raw HTML in a Dash component",
    r"\bMarkdown\(": "Markdown may carry raw HTML",
    r"\bDivMarker\(": "a marker whose icon is an HTML string",
    r"\bMarkup\(|\|\s*safe\b|autoescape\s+false": "switches off Jinja's escaping",
    r"srcDoc": "an iframe document from a string",
}


def test_no_python_source_renders_a_string_as_markup():
    offences = []
    for path in python_sources():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for pattern, why in PYTHON_MARKUP_SINKS.items():
                allowed = path == PROJECT / "layouts" / "widgets.py" and pattern == r"\bdl\.GeoJSON\(" and "return dl.GeoJSON(" in line
                if re.search(pattern, line) and not allowed:
                    offences.append(f"{path.relative_to(PROJECT)}:{number}: {why}: {line.strip()}")
    assert offences == []


# Ways JavaScript parses a string as HTML or code. Tooltips are bound in one place only
# (gridops.text.bindLabel, with a function that returns a node built with textContent),
# and a divIcon's html is always a node (a variable), never a string.
JS_MARKUP_SINKS = {
    r"\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML|document\.write|DOMParser|createContextualFragment": "parses a string as HTML",
    r"\beval\(|new Function\b|set(?:Timeout|Interval)\(\s*[\"'`]": "runs a string as code (and needs 'unsafe-eval')",
    r"\bhtml\s*:(?!\s*[A-Za-z_$][\w$]*\s*[,}])": "a divIcon html that is not a DOM node in a variable",
    r"\.(?:bindPopup|setContent|setTooltipContent|setPopupContent)\(": "popup or tooltip content outside gridops.text.bindLabel",
}
BIND_TOOLTIP = r"\.bindTooltip\("
THE_ONE_BINDING = "return layer.bindTooltip(function () { return textBox(lines); }, options);"


def test_no_javascript_asset_parses_a_string_as_markup():
    offences = []
    bindings = []
    for path in sorted((PROJECT / "assets").glob("*.js")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("//")[0] if not line.lstrip().startswith(("/*", "*")) else ""
            for pattern, why in JS_MARKUP_SINKS.items():
                if re.search(pattern, code):
                    offences.append(f"{path.name}:{number}: {why}: {line.strip()}")
            if re.search(BIND_TOOLTIP, code):
                bindings.append(line.strip())
    assert offences == []
    assert bindings == [THE_ONE_BINDING], "tooltips are bound only by gridops.text.bindLabel, with a text node"


def test_the_static_checks_catch_what_they_should():
    """The patterns above match the unsafe forms they are meant to refuse (and not the safe ones)."""
    unsafe_js = ['el.innerHTML = p.name;', 'L.divIcon({ html: "<b>" + n + "</b>" })', 'L.divIcon({html: "<div>"})',
                 'marker.bindPopup(p.name)', 'setTimeout("go()", 5)', 'new Function("x", body)']
    safe_js = ['L.divIcon({ html: box, className: "c" })', 'el.textContent = p.name;']
    matches = lambda text: any(re.search(p, text) for p in JS_MARKUP_SINKS)  # noqa: E731
    assert all(matches(line) for line in unsafe_js)
    assert not any(matches(line) for line in safe_js)
    unsafe_py = ['dl.GeoJSON(data=x)', '"tooltip": f"{name}<br>"', "dcc.Markdown(text)", "html.Div(dangerously_allow_html=True)"]
    assert all(any(re.search(p, line) for p in PYTHON_MARKUP_SINKS) for line in unsafe_py)


def test_chart_labels_show_names_as_written():
    """Plotly reads a subset of HTML in its texts: names reach it escaped, and it shows them literally."""
    import html

    import pandas as pd

    figure = wall.bar_figure(HOSTILE, list(range(len(HOSTILE))), "#3aa0ff")
    labels = list(figure.data[0].y)[::-1]
    assert [html.unescape(label) for label in labels] == HOSTILE
    assert not any("<" in label or ">" in label for label in labels)
    categories = pd.DataFrame({"name": HOSTILE, "code": [f"K{n}" for n in range(len(HOSTILE))], "previous": 1, "reported": 2})
    for bars in review.category_figure(categories, "zh").data:
        assert not any("<" in label or ">" in label for label in bars.y)
        assert {html.unescape(label) for label in bars.y} == set(HOSTILE)


# ---------------------------------------------------------------- exports


def test_the_department_csv_keeps_hostile_names_as_text():
    import csv
    import io

    rows = [{"name": text, "due_to_close": -1 if n == 0 else n, "grade": "A"} for n, text in enumerate(HOSTILE)]
    table = list(csv.reader(io.StringIO(review.department_csv(rows, "zh").lstrip("\ufeff"))))
    names = [line[0] for line in table[1:]]
    assert names == [("'" + text) if text.startswith("=") else text for text in HOSTILE]
    assert table[1][1] == "-1"  # numbers stay numbers


@pytest.mark.parametrize("demo_engine", ["sqlite"], indirect=True)
def test_the_weekly_exports_keep_hostile_names_as_text(demo_engine, domain_config):
    """The spreadsheet holds no formula and the printable HTML (the PDF's source) no markup from a name."""
    import dataclasses
    import io
    from datetime import date

    import openpyxl

    from dashboard import weekly_pdf, weekly_report, weekly_xlsx
    from data_feeds.reference import root_grid
    from gridrules.access import EVERYTHING
    from tests.support import DEMO_NOW

    report = weekly_report.build(demo_engine, domain_config, root_grid(demo_engine), "week", date(2026, 11, 23), EVERYTHING, DEMO_NOW, {})

    def hostile(frame, column):
        return frame.assign(**{column: [HOSTILE[n % len(HOSTILE)] for n in range(len(frame))]}) if len(frame) else frame

    report = dataclasses.replace(
        report, departments=hostile(report.departments, "name"), categories=hostile(report.categories, "name"),
        hot_grids=hostile(report.hot_grids, "name"), workers=hostile(report.workers, "name"),
    )
    assert len(report.departments) >= len(HOSTILE)  # every hostile text reaches the export
    book = openpyxl.load_workbook(io.BytesIO(weekly_xlsx.render(report, "zh")))
    cells = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert [cell.coordinate for cell in cells if cell.data_type == "f"] == []
    values = {cell.value for cell in cells}
    assert set(HOSTILE) <= values
    page = weekly_pdf.html_source(report, "zh")
    for text in HOSTILE:
        if any(char in text for char in "<>&\""):
            assert text not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<script>" not in page
