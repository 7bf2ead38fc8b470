"""The weekly meeting screen: pick a week, see it against the week before, export it."""
from __future__ import annotations

from datetime import timedelta

from dash import Input, Output, State, dcc, no_update
from dash.exceptions import PreventUpdate
from flask import request

from callbacks import notices
from dashboard import cached_reads, weekly_pdf, weekly_xlsx
from dashboard.auth import current_principal
from dashboard.context import AppContext, current_context
from dashboard.i18n import t, window_error_text
from data_feeds import accounts
from gridrules.access import Forbidden
from gridrules.clock import utc_now
from gridrules.timewindows import WindowError, week_from_param
from layouts import ids
from layouts import weekly as weekly_layout
from layouts.home import forbidden
from layouts.widgets import nav_links


def page(ctx: AppContext, principal, lang: str, query: dict, other_language_href: str):
    now = utc_now()
    this_monday = week_from_param(None, ctx.settings.tz, now)
    last_complete = this_monday - timedelta(weeks=1)  # a meeting looks back on a whole week; the running one is picked on purpose
    try:
        monday = week_from_param(query.get("week"), ctx.settings.tz, now) if query.get("week") else last_complete
    except WindowError as error:  # refused before any query: say why, show the last whole week
        notices.show(f"{window_error_text(error, lang)} {t('showing_instead', lang)}")
        monday = last_complete
    try:
        built = cached_reads.week_report(ctx, principal, query.get("area"), monday, lang)
    except Forbidden:
        return forbidden(lang)
    except cached_reads.NotFound:
        built = cached_reads.week_report(ctx, principal, None, monday, lang)
    options = weekly_layout.week_options(this_monday, lang)
    if monday.isoformat() not in {o["value"] for o in options}:
        options.append({"label": monday.isoformat(), "value": monday.isoformat()})
    return weekly_layout.layout(lang, principal.name if ctx.settings.auth else None, other_language_href, nav_links(principal, lang),
                                options, monday.isoformat(), weekly_layout.body(built, lang, ctx.config), {"lang": lang, "area": built.area.code})


def _requested(monday: str, state: dict, permission: str):
    """The caller, after a permission check, and the report of the week they picked (None,
    with a notice saying why, for a week out of bounds)."""
    ctx, principal = current_context(), current_principal()
    principal.require(permission)
    lang = state.get("lang", "zh")
    try:
        built = cached_reads.week_report(ctx, principal, state.get("area"), week_from_param(monday, ctx.settings.tz, utc_now()), lang)
    except WindowError as error:
        notices.show(window_error_text(error, lang))
        return ctx, principal, None, lang
    except (Forbidden, cached_reads.NotFound):
        raise PreventUpdate from None
    return ctx, principal, built, lang


def register(app) -> None:
    @app.callback(
        Output(ids.Weekly.BODY, "children"),
        Output("app-url", "search", allow_duplicate=True),
        Input(ids.Weekly.WEEK, "value"),
        State(ids.Weekly.STATE, "data"),
        prevent_initial_call=True,
    )
    def pick_week(monday, state):
        ctx, principal, built, lang = _requested(monday, state, "weekly")
        if built is None:
            return no_update, no_update
        notices.clear()
        search = f"?week={monday}&area={built.area.code}" + ("&lang=en" if lang == "en" else "")
        return weekly_layout.body(built, lang, ctx.config), search

    @app.callback(
        Output(ids.Weekly.DOWNLOAD, "data"),
        Input(ids.Weekly.PDF, "n_clicks"),
        Input(ids.Weekly.XLSX, "n_clicks"),
        State(ids.Weekly.WEEK, "value"),
        State(ids.Weekly.STATE, "data"),
        prevent_initial_call=True,
    )
    def export(pdf_clicks, xlsx_clicks, monday, state):
        """The same report as a PDF (charts, embedded CJK font) or a spreadsheet; audited."""
        from dash import ctx as dash_ctx

        if not (pdf_clicks or xlsx_clicks):
            raise PreventUpdate
        ctx, principal, built, lang = _requested(monday, state, "export")
        if built is None:
            return no_update
        as_pdf = dash_ctx.triggered_id == ids.Weekly.PDF
        name = f"weekly-{built.area.code}-{built.week.start:%Y-%m-%d}.{'pdf' if as_pdf else 'xlsx'}"
        accounts.audit(ctx.engine, principal.name, "export", name, {"screen": "weekly"}, request.remote_addr)
        if as_pdf:
            content = weekly_pdf.render(built, lang, generated_at=utc_now(), min_due=ctx.config.min_due)
        else:
            content = weekly_xlsx.render(built, lang)
        return dcc.send_bytes(content, name)
