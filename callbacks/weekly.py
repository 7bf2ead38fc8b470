"""The assessment screen: pick a week, month or quarter, see it against the one before, export it."""
from __future__ import annotations

from dash import Input, Output, State, dcc, no_update
from dash import ctx as dash_ctx
from dash.exceptions import PreventUpdate
from flask import request

from callbacks import notices
from dashboard import cached_reads, weekly_pdf, weekly_xlsx
from dashboard.auth import current_principal
from dashboard.context import AppContext, current_context
from dashboard.i18n import period_key, t, window_error_text
from data_feeds import accounts
from gridrules.access import Forbidden
from gridrules.clock import utc_now
from gridrules.timewindows import WindowError, last_complete_period, period_from_params, period_start
from layouts import ids
from layouts import weekly as weekly_layout
from layouts.home import forbidden
from layouts.widgets import nav_links


def _picked(query: dict, ctx: AppContext, lang: str) -> tuple[str, object]:
    """The period of ``?period=&start=`` (``?week=`` as the older links have it); the last
    complete week, with a notice saying why, when the parameters are wrong."""
    now = utc_now()
    try:
        return period_from_params(query.get("period"), query.get("start") or query.get("week"), ctx.settings.tz, now)
    except WindowError as error:  # refused before any query: say why, show the last whole week
        notices.show(f"{window_error_text(error, lang)} {t('showing_instead', lang)}")
        return "week", last_complete_period("week", ctx.settings.tz, now)


def _options(ctx: AppContext, kind: str, first, lang: str) -> list[dict]:
    options = weekly_layout.period_options(kind, period_start(kind, utc_now().astimezone(ctx.settings.tz).date()), lang)
    if first.isoformat() not in {option["value"] for option in options}:
        options.append({"label": first.isoformat(), "value": first.isoformat()})
    return options


def page(ctx: AppContext, principal, lang: str, query: dict, other_language_href: str):
    kind, first = _picked(query, ctx, lang)
    try:
        built = cached_reads.period_report(ctx, principal, query.get("area"), kind, first, lang)
    except Forbidden:
        return forbidden(lang)
    except cached_reads.NotFound:
        built = cached_reads.period_report(ctx, principal, None, kind, first, lang)
    return weekly_layout.layout(lang, principal.name if ctx.settings.auth else None, other_language_href, nav_links(principal, lang), kind,
                                _options(ctx, kind, first, lang), first.isoformat(), weekly_layout.body(built, lang, ctx.config),
                                {"lang": lang, "area": built.area.code, "kind": kind, "first": first.isoformat()})


def _requested(kind: str, first: str, state: dict, permission: str):
    """The caller, after a permission check, and the report of the period they picked (None,
    with a notice saying why, for a period out of bounds)."""
    ctx, principal = current_context(), current_principal()
    principal.require(permission)
    lang = state.get("lang", "zh")
    try:
        kind, day = period_from_params(kind, first, ctx.settings.tz, utc_now())
        built = cached_reads.period_report(ctx, principal, state.get("area"), kind, day, lang)
    except WindowError as error:
        notices.show(window_error_text(error, lang))
        return ctx, principal, None, lang
    except (Forbidden, cached_reads.NotFound):
        raise PreventUpdate from None
    return ctx, principal, built, lang


def register(app) -> None:
    @app.callback(
        Output(ids.Weekly.BODY, "children"),
        Output(ids.Weekly.WEEK, "options"),
        Output(ids.Weekly.WEEK, "value"),
        Output(ids.Weekly.TITLE, "children"),
        Output("app-url", "search", allow_duplicate=True),
        Output(ids.Weekly.STATE, "data"),
        Input(ids.Weekly.KIND, "value"),
        Input(ids.Weekly.WEEK, "value"),
        State(ids.Weekly.STATE, "data"),
        prevent_initial_call=True,
    )
    def pick_period(kind, first, state):
        """A new kind opens its last complete period; a new period opens itself. The page as
        built (``state``) is not built again: the switch and the picker fire as they mount."""
        if kind == state.get("kind") and first == state.get("first"):
            raise PreventUpdate
        if kind != state.get("kind"):
            ctx = current_context()
            first = last_complete_period(kind if kind in ("week", "month", "quarter") else "week", ctx.settings.tz, utc_now()).isoformat()
        ctx, principal, built, lang = _requested(kind, first, state, "weekly")
        if built is None:
            return no_update, no_update, no_update, no_update, no_update, no_update
        notices.clear()
        start = built.window.start.date()
        search = f"?period={built.kind}&start={start.isoformat()}&area={built.area.code}" + ("&lang=en" if lang == "en" else "")
        return (weekly_layout.body(built, lang, ctx.config), _options(ctx, built.kind, start, lang), start.isoformat(),
                t(period_key("weekly_title", built.kind), lang), search, {**state, "kind": built.kind, "first": start.isoformat()})

    @app.callback(
        Output(ids.Weekly.DOWNLOAD, "data"),
        Input(ids.Weekly.PDF, "n_clicks"),
        Input(ids.Weekly.XLSX, "n_clicks"),
        State(ids.Weekly.KIND, "value"),
        State(ids.Weekly.WEEK, "value"),
        State(ids.Weekly.STATE, "data"),
        prevent_initial_call=True,
    )
    def export(pdf_clicks, xlsx_clicks, kind, first, state):
        """The same report as a PDF (charts, embedded CJK font) or a spreadsheet; audited."""
        if not (pdf_clicks or xlsx_clicks):
            raise PreventUpdate
        ctx, principal, built, lang = _requested(kind, first, state, "export")
        if built is None:
            return no_update
        as_pdf = dash_ctx.triggered_id == ids.Weekly.PDF
        name = f"{'weekly' if built.kind == 'week' else built.kind}-{built.area.code}-{built.window.start:%Y-%m-%d}.{'pdf' if as_pdf else 'xlsx'}"
        accounts.audit(ctx.engine, principal.name, "export", name, {"screen": "weekly", "period": built.kind}, request.remote_addr)
        if as_pdf:
            content = weekly_pdf.render(built, lang, generated_at=utc_now(), min_due=ctx.config.min_due)
        else:
            content = weekly_xlsx.render(built, lang)
        return dcc.send_bytes(content, name)
