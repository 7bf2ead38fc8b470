"""The situational review: the URL holds the selection; every panel follows it."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs

import redis
from dash import ALL, Input, Output, State, callback_context, dcc, no_update
from dash.exceptions import PreventUpdate
from flask import request

from callbacks import notices
from dashboard import cached_reads, case_export, interventions, review_screen
from dashboard.auth import current_principal
from dashboard.cases import audited_case, case_story, present_case
from dashboard.cases import search as search_cases
from dashboard.context import AppContext, current_context
from dashboard.i18n import t, window_error_text
from data_feeds import accounts
from gridrules.access import Forbidden
from gridrules.bounds import EARLIEST_DAY
from gridrules.clock import utc_now
from gridrules.selection import Selection, parse, window_of
from gridrules.timewindows import WindowError, latest_day
from layouts import ids, review
from layouts.home import forbidden
from layouts.widgets import bounds_of, nav_links


def _query(search: str | None) -> dict:
    return {key: values[-1] for key, values in parse_qs((search or "").lstrip("?")).items()}


def _category_options(ctx, lang: str) -> list[dict]:
    """The catalogue as one searchable list, indented by level."""
    names = cached_reads.names(ctx, lang)
    levels = names["category_levels"]
    return [{"label": "　" * (levels[code] - 1) + name, "value": code} for code, name in sorted(names["categories_all"].items())]


def _span(window, tz) -> str:
    last = (window.end - timedelta(microseconds=1)).astimezone(tz)
    return f"{window.start.astimezone(tz):%Y-%m-%d} – {last:%Y-%m-%d}"


def _period_text(data, tz, lang: str) -> str:
    return f"{t('this_period', lang)} {_span(data.window, tz)} · {t('before', lang)} {_span(data.previous, tz)}"


def _drilled(code: str | None, search: str | None, state: dict | None) -> str:
    """The URL's query with ``code`` as the area (the page checks it is within the caller's scope)."""
    if not code or not isinstance(code, str) or code == (state or {}).get("area"):
        raise PreventUpdate
    return parse(_query(search)).with_area(code).search((state or {}).get("lang"))


def parts(ctx: AppContext, principal, selection: Selection, lang: str) -> dict:
    """Every panel's content for a selection, within the caller's scope."""
    now = utc_now()
    area = cached_reads.area_in_scope(ctx, selection.area, principal.scope)
    data = review_screen.shared(ctx, area, selection, principal.scope, now, lang)
    names = cached_reads.names(ctx, lang)
    tz = ctx.settings.tz
    bounds = bounds_of(cached_reads.map_geometries(ctx, area, level=area.level)[0]["geometry"])
    collection = review.area_collection(data.children, lang)
    names_on_map = review.name_points(data.children)
    case_rows = review.case_rows(data.cases, names, tz, lang)
    return {
        "breadcrumb": review.breadcrumb(data.breadcrumb, selection, lang),
        "period": " · ".join(part for part in (_period_text(data, tz, lang), cached_reads.replica_notice(ctx, lang)) if part),
        "tiles": review.tiles(data.values, data.previous_values, lang),
        "map": review.area_map(collection, names_on_map, bounds),
        "collection": collection,
        "names_on_map": names_on_map,
        "legend": review.area_legend(review.max_reported(collection), lang),
        "ranking": review.area_ranking(data.children, lang),
        "ranking_rows": review.ranking_rows(data.children),
        "viewport": {"bounds": bounds, "transition": "fitBounds"},  # the map's bounds apply only when it is made
        "trend": review.trend_figure(data.trend, lang),
        "categories": review.category_figure(data.categories, lang),
        "departments": review.department_grid(data.departments, lang),
        "department_rows": review.department_rows(data.departments, lang),
        "hot_spots": review.hot_spot_list(data.hot_spots, selection, lang),
        "patrol": review.patrol_panel(data.patrol, lang),
        "cases": review.case_grid(case_rows, lang),
        "case_rows": case_rows,
        "area": area,
    }


def page(ctx: AppContext, principal, lang: str, query: dict, other_language_href: str):
    selection = parse(query)
    try:
        content = parts(ctx, principal, selection, lang)
    except Forbidden:
        return forbidden(lang)
    except WindowError as error:  # refused before any query: say why, show the default
        notices.show(f"{window_error_text(error, lang)} {t('showing_instead', lang)}")
        selection = Selection()
        content = parts(ctx, principal, selection, lang)
    except cached_reads.NotFound:
        selection = Selection()
        content = parts(ctx, principal, selection, lang)
    names = cached_reads.names(ctx, lang)
    departments = [{"label": f"{name}", "value": code} for code, name in sorted(names["departments"].items())]
    state = {"lang": lang, "area": content["area"].code, "selection": selection.without_case().search()}
    if selection.case:
        story = case_story(ctx, principal, selection.case, request.remote_addr, lang, utc_now())
        if story is not None:
            content.update(case_panel=review.case_panel(story, ctx.settings.tz, lang, principal.can("unmask"), principal.can("command")), case_shown=selection.case)
        else:
            notices.show(t("case_not_found", lang))
    tz, now = ctx.settings.tz, utc_now()
    dates = {"min": EARLIEST_DAY.isoformat(), "max": latest_day(tz, now).isoformat()}  # the picker offers only days within the bounds
    return review.layout(lang, principal.name if ctx.settings.auth else None, other_language_href, nav_links(principal, lang), selection,
                         {"categories": _category_options(ctx, lang), "departments": departments, "dates": dates}, content, state)


def register(app) -> None:
    @app.callback(
        Output(ids.Review.BREADCRUMB, "children"),
        Output(ids.Review.PERIOD, "children"),
        Output(ids.Review.TILES, "children"),
        Output(ids.Review.AREAS, "data"),
        Output(ids.Review.AREAS, "hideout"),
        Output(ids.Review.NAMES, "data"),
        Output(ids.Review.LEGEND, "children"),
        Output(ids.Review.RANKING, "rowData"),
        Output(ids.Review.MAP, "viewport"),
        Output(ids.Review.TREND, "figure"),
        Output(ids.Review.CATEGORIES, "figure"),
        Output(ids.Review.DEPARTMENTS, "rowData"),
        Output(ids.Review.HOT_SPOTS, "children"),
        Output(ids.Review.PATROL, "children"),
        Output(ids.Review.CASES, "rowData"),
        Output(ids.Review.STATE, "data"),
        Input("app-url", "search"),
        State("app-url", "pathname"),
        State(ids.Review.STATE, "data"),
        prevent_initial_call=True,
    )
    def follow_url(search, pathname, state):
        """Drill-down, breadcrumb, filters: the URL changed, so does every panel."""
        if pathname != "/review":
            raise PreventUpdate
        lang = (state or {}).get("lang", "zh")
        selection = parse(_query(search))
        if selection.without_case().search() == (state or {}).get("selection"):
            raise PreventUpdate  # only the open case changed: its panel follows (show_case)
        try:
            content = parts(current_context(), current_principal(), selection, lang)
        except WindowError as error:  # refused before any query: every panel keeps what it shows
            notices.show(window_error_text(error, lang))
            return (no_update,) * 16
        except (Forbidden, cached_reads.NotFound):
            raise PreventUpdate from None
        notices.clear()
        return (content["breadcrumb"], content["period"], content["tiles"], content["collection"], {"max": review.max_reported(content["collection"])},
                content["names_on_map"], content["legend"], content["ranking_rows"],
                content["viewport"], content["trend"], content["categories"], content["department_rows"], content["hot_spots"],
                content["patrol"], content["case_rows"], {**(state or {}), "area": content["area"].code, "selection": selection.without_case().search()})

    @app.callback(
        Output("app-url", "search", allow_duplicate=True),
        Input(ids.Review.WINDOW, "value"),
        Input(ids.Review.DATES, "start_date"),
        Input(ids.Review.DATES, "end_date"),
        Input(ids.Review.CATEGORY, "value"),
        Input(ids.Review.GRADE, "value"),
        Input(ids.Review.SOURCE, "value"),
        Input(ids.Review.DEPT, "value"),
        Input(ids.Review.STAGE, "value"),
        State("app-url", "search"),
        State(ids.Review.STATE, "data"),
        prevent_initial_call=True,
    )
    def filters_changed(window, start, end, category, grade, source, dept, stage, search, state):
        current = parse(_query(search))
        if window == "custom" and not (start and end):
            raise PreventUpdate  # wait for both dates
        selection = Selection(area=current.area, window=window or "today", start=(start or "")[:10] or None, end=(end or "")[:10] or None,
                              category=category, grade=grade, source=source, dept=dept, stage=stage, case=current.case)
        new = selection.search((state or {}).get("lang"))
        return no_update if new == (search or "") else new

    @app.callback(
        Output("app-url", "search", allow_duplicate=True),
        Input(ids.Review.AREAS, "clickData"),
        Input(ids.Review.RANKING, "cellClicked"),
        State("app-url", "search"),
        State(ids.Review.STATE, "data"),
        prevent_initial_call=True,
    )
    def drill_down(feature, cell, search, state):
        """A click on an area of the map, or on a name in the ranking, opens that area."""
        if callback_context.triggered_id == ids.Review.RANKING:
            code = (cell or {}).get("rowId") if (cell or {}).get("colId") == "name" else None
        else:
            code = ((feature or {}).get("properties") or {}).get("code")
        return _drilled(code, search, state)

    @app.callback(
        Output(ids.Review.DATES, "className"),
        Input(ids.Review.WINDOW, "value"),
        prevent_initial_call=True,
    )
    def show_dates(window):
        return "date-range" + ("" if window == "custom" else " hidden")

    @app.callback(
        Output("app-url", "search", allow_duplicate=True),
        Input(ids.Review.CASES, "selectedRows"),
        State("app-url", "search"),
        State(ids.Review.STATE, "data"),
        prevent_initial_call=True,
    )
    def select_case(rows, search, state):
        """A click on a case opens its panel: the case goes into the URL, which can be sent on."""
        case_id = (rows or [{}])[0].get("id")
        current = parse(_query(search))
        if not case_id or case_id == current.case:
            raise PreventUpdate
        return current.with_case(case_id).search((state or {}).get("lang"))

    @app.callback(
        Output(ids.Review.SEARCH_HITS, "children"),
        Input(ids.Review.SEARCH, "value"),
        State(ids.Review.STATE, "data"),
        prevent_initial_call=True,
    )
    def search(text, state):
        if not isinstance(text, str) or not text.strip():
            return []
        ctx, principal = current_context(), current_principal()
        principal.require("review")
        lang = (state or {}).get("lang", "zh")
        return review.search_hits(search_cases(ctx, principal, text, request.remote_addr), ctx.settings.tz, lang)

    @app.callback(
        Output("app-url", "search", allow_duplicate=True),
        Output(ids.Review.SEARCH_HITS, "children", allow_duplicate=True),
        Input({"type": ids.Review.SEARCH_HIT, "case": ALL}, "n_clicks"),
        State("app-url", "search"),
        State(ids.Review.STATE, "data"),
        prevent_initial_call=True,
    )
    def open_hit(clicks, search, state):
        """A hit's case opens in the panel (the page checks the caller may see it)."""
        case_id = (callback_context.triggered_id or {}).get("case") if any(clicks or []) else None
        if not isinstance(case_id, str):
            raise PreventUpdate
        return parse(_query(search)).with_case(case_id).search((state or {}).get("lang")), []

    @app.callback(
        Output("app-url", "search", allow_duplicate=True),
        Input(ids.Review.CLOSE_CASE, "n_clicks"),
        State("app-url", "search"),
        State(ids.Review.STATE, "data"),
        prevent_initial_call=True,
    )
    def close_case(clicks, search, state):
        if not clicks:
            raise PreventUpdate
        return parse(_query(search)).without_case().search((state or {}).get("lang"))

    @app.callback(
        Output(ids.Review.TIMELINE, "children"),
        Output(ids.Review.TIMELINE, "className"),
        Output(ids.Review.CASE_SHOWN, "data"),
        Output(ids.Review.CASES, "selectedRows"),
        Input("app-url", "search"),
        State("app-url", "pathname"),
        State(ids.Review.CASE_SHOWN, "data"),
        State(ids.Review.STATE, "data"),
        prevent_initial_call=True,
    )
    def show_case(search, pathname, shown, state):
        """The case of the URL in the panel (each opening written to the audit log), or none."""
        if pathname != "/review":
            raise PreventUpdate
        case_id = parse(_query(search)).case
        if case_id == shown:
            raise PreventUpdate
        if case_id is None:
            return [], "case-panel", None, []
        ctx, principal = current_context(), current_principal()
        principal.require("review")
        lang = (state or {}).get("lang", "zh")
        story = case_story(ctx, principal, case_id, request.remote_addr, lang, utc_now())
        if story is None:  # unknown, or outside the caller's scope: the same answer
            notices.show(t("case_not_found", lang))
            return [], "case-panel", None, no_update
        notices.clear()
        return review.case_panel(story, ctx.settings.tz, lang, principal.can("unmask"), principal.can("command")), "case-panel open", case_id, no_update

    @app.callback(
        Output("review-personal", "children"),
        Input(ids.Review.UNMASK, "n_clicks"),
        State(ids.Review.CASE_SHOWN, "data"),
        State(ids.Review.STATE, "data"),
        prevent_initial_call=True,
    )
    def unmask(clicks, case_id, state):
        """Show the reporter's contact (to call back); audited."""
        if not clicks:
            raise PreventUpdate
        _, principal, row = _audited_case([{"id": case_id}] if case_id else [], "unmask", "case.unmask")
        case = present_case(row, principal, unmasked=True)
        lang = (state or {}).get("lang", "zh")
        return f"{t('reporter', lang)}：{case.get('reporter') or '—'} · {t('contact', lang)}：{case.get('contact') or '—'}"

    @app.callback(
        Output(ids.Review.TIMELINE, "children", allow_duplicate=True),
        Input(ids.Review.SUPERVISE, "n_clicks"),
        State(ids.Review.SUPERVISE_NOTE, "value"),
        State(ids.Review.CASE_SHOWN, "data"),
        State(ids.Review.STATE, "data"),
        prevent_initial_call=True,
    )
    def supervise(clicks, note, case_id, state):
        """督办 the shown case: published on the case stream, applied by the consumer; the
        panel shows the case again once it has (or says it is on its way)."""
        if not clicks or not case_id:
            raise PreventUpdate
        ctx, principal = current_context(), current_principal()
        lang = (state or {}).get("lang", "zh")
        try:
            event_id = interventions.supervise(ctx, principal, case_id, note, request.remote_addr, utc_now())
        except interventions.NoteNeeded:
            notices.show(t("supervise_note_needed", lang))
            raise PreventUpdate from None
        except redis.RedisError:
            notices.show(t("supervise_failed", lang))
            raise PreventUpdate from None
        if event_id is None:
            notices.show(t("case_not_found", lang))
            raise PreventUpdate
        if interventions.applied(ctx, event_id):
            notices.clear()
        else:
            notices.show(t("supervise_pending", lang))
        story = case_story(ctx, principal, case_id, request.remote_addr, lang, utc_now())
        if story is None:
            raise PreventUpdate
        return review.case_panel(story, ctx.settings.tz, lang, principal.can("unmask"), principal.can("command"))

    @app.callback(
        Output(ids.Review.DOWNLOAD, "data"),
        Input(ids.Review.EXPORT, "n_clicks"),
        State(ids.Review.DEPARTMENTS, "rowData"),
        State("app-url", "search"),
        State(ids.Review.STATE, "data"),
        prevent_initial_call=True,
    )
    def export_departments(clicks, rows, search, state):
        """The department table as CSV (UTF-8 with BOM, so spreadsheet programs read Chinese); audited."""
        if not clicks:
            raise PreventUpdate
        ctx, principal = current_context(), current_principal()
        principal.require("export")
        lang = (state or {}).get("lang", "zh")
        content = parts(ctx, principal, parse(_query(search)), lang)  # recomputed: never trust rows sent by the browser
        accounts.audit(ctx.engine, principal.name, "export", "departments.csv", {"screen": "review", "selection": search}, request.remote_addr)
        return dcc.send_string(review.department_csv(content["department_rows"], lang), f"departments-{content['area'].code}.csv")

    @app.callback(
        Output(ids.Review.CASES_DOWNLOAD, "data"),
        Input(ids.Review.CASES_CSV, "n_clicks"),
        Input(ids.Review.CASES_XLSX, "n_clicks"),
        State("app-url", "search"),
        State(ids.Review.STATE, "data"),
        prevent_initial_call=True,
    )
    def export_cases(csv_clicks, xlsx_clicks, search, state):
        if not (csv_clicks or xlsx_clicks):
            raise PreventUpdate
        return _case_export("csv" if callback_context.triggered_id == ids.Review.CASES_CSV else "xlsx", search, state)


def _case_export(kind: str, search: str | None, state: dict | None) -> dict:
    """The selection's case list as a CSV or XLSX download, within the caller's scope and masked
    for their role; the export (file, selection, rows, whether cut or masked) is audited."""
    ctx, principal = current_context(), current_principal()
    principal.require("export")
    lang = (state or {}).get("lang", "zh")
    now = utc_now()
    selection = parse(_query(search))
    try:
        window = window_of(selection, ctx.settings.tz, now, ctx.settings.max_window_days)
        area = cached_reads.area_in_scope(ctx, selection.area, principal.scope)
    except WindowError as error:
        notices.show(window_error_text(error, lang))
        raise PreventUpdate from None
    except (Forbidden, cached_reads.NotFound):
        raise PreventUpdate from None
    export = case_export.build(ctx, principal, area, window, review_screen.filters_of(ctx, selection), lang, now, _span(window, ctx.settings.tz))
    name = f"cases-{area.code}-{window.start.astimezone(ctx.settings.tz):%Y%m%d}.{kind}"
    accounts.audit(ctx.engine, principal.name, "export", name,
                   {"screen": "review", "selection": search, "rows": len(export.rows), "truncated": export.truncated, "masked": export.masked},
                   request.remote_addr)
    if export.truncated:
        notices.show(export.note(lang))
    if kind == "csv":
        return dcc.send_string(case_export.as_csv(export, lang), name)
    return dcc.send_bytes(case_export.as_xlsx(export, lang), name)


def _audited_case(rows, permission: str, action: str):
    """The selected case, if the caller may see it, with the access written to the audit log."""
    if not rows:
        raise PreventUpdate
    ctx, principal = current_context(), current_principal()
    principal.require(permission)
    row = audited_case(ctx, principal, rows[0]["id"], action, request.remote_addr, {"screen": "review"})
    if row is None:
        raise PreventUpdate
    return ctx, principal, row
