"""HTTP interfaces others rely on (README, "HTTP interfaces"): /healthz, /metrics, /api/indicators,
/api/catalogue, /api/grids, and the case and staff endpoints. Keys are stable; errors are
JSON with an ``error`` text. Every answer is limited to the caller's scope.
"""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from dashboard import cached_reads
from dashboard.auth import current_principal
from dashboard.cases import audited_case, present_case, present_event, present_worker
from dashboard.context import AppContext, current_context
from dashboard.i18n import window_error_text
from dashboard.metrics import health_report, render_metrics
from data_feeds import live_state, queries, reference, schema
from data_feeds.keys import Keys
from data_feeds.queries import CaseFilter
from data_feeds.reference import descendant_categories, load_categories
from gridrules import bounds
from gridrules.access import Forbidden
from gridrules.clock import utc_now
from gridrules.indicators import Window
from gridrules.lifecycle import GRADES, SOURCES, STATUSES
from gridrules.timewindows import WindowError, window_from_params

blueprint = Blueprint("gridops_api", __name__)


class BadRequest(ValueError):
    """A parameter the caller got wrong: answered with 400 and the reason."""


@blueprint.errorhandler(BadRequest)
def _bad_request(error: BadRequest):
    return jsonify(error=str(error)), 400


@blueprint.errorhandler(WindowError)
def _bad_window(error: WindowError):
    return jsonify(error=window_error_text(error, "en")), 400


@blueprint.errorhandler(Forbidden)
def _forbidden(error: Forbidden):
    return jsonify(error=str(error)), 403


@blueprint.errorhandler(cached_reads.NotFound)
def _not_found(error: cached_reads.NotFound):
    return jsonify(error=str(error)), 404


@blueprint.errorhandler(cached_reads.UnknownArea)
def _unknown_area(error: cached_reads.UnknownArea):
    return jsonify(error=str(error)), 400


@blueprint.get("/healthz")
def healthz() -> tuple[Response, int]:
    report = health_report(current_context())
    # 503 only when this worker cannot serve: a balancer must not take the dashboard out of
    # rotation because the feed behind it is degraded (that is in the body, and on the wall)
    return jsonify(report), 200 if report["serving"] else 503


@blueprint.get("/metrics")
def metrics() -> Response:
    return Response(render_metrics(current_context()), mimetype="text/plain; version=0.0.4")


def _window(ctx: AppContext, now: datetime) -> Window:
    """The window of ``?start=&end=``, within the bounds (400 otherwise)."""
    return window_from_params(request.args.get("start"), request.args.get("end"), ctx.settings.tz, now, ctx.settings.max_window_days)


def _limit(args: MultiDict[str, str]) -> int:
    """``?limit=``: how many cases, from 1 to MAX_CASE_LIMIT (200 when not given)."""
    text = args.get("limit", "200")
    try:
        number = int(text)
    except ValueError:
        number = None
    if number is None or not 1 <= number <= bounds.MAX_CASE_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {bounds.MAX_CASE_LIMIT}, not {bounds.quoted(text)}")
    return number


def _api_caller():
    principal = current_principal()
    principal.require("api")
    return current_context(), principal


@blueprint.get("/api/indicators")
def api_indicators() -> Response:
    ctx, principal = _api_caller()
    now = utc_now()
    area = cached_reads.area_in_scope(ctx, request.args.get("area"), principal.scope)
    window = _window(ctx, now)
    filters = _filters(ctx, request.args)
    values = cached_reads.area_indicators(ctx, area, window, now, filters, principal.scope)
    body = {
        "area": area.code,
        "area_name": area.name,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "asof": window.asof.isoformat(),
        "filters": {"dept": filters.dept, "category": request.args.get("category") or None, "grade": filters.grade, "source": filters.source},
    }
    body.update(values)
    return jsonify(body)


@blueprint.get("/api/catalogue")
def api_catalogue() -> Response:
    ctx, _ = _api_caller()
    with ctx.reader.connect() as connection:
        rows = connection.execute(select(schema.categories).order_by(schema.categories.c.code)).mappings().all()
    return jsonify([dict(row) for row in rows])


@blueprint.get("/api/grids")
def api_grids() -> Response | tuple[Response, int]:
    """Children of a grid; above the caller's scope only the branch that leads into it."""
    ctx, principal = _api_caller()
    scope = principal.scope
    parent = request.args.get("parent") or None
    if parent is not None:
        node = cached_reads.grid(ctx, parent)
        if node is None:
            return jsonify(error=f"unknown grid code {bounds.quoted(parent)}"), 404
        if not (scope.covers(node.path) or (scope.area_path or "").startswith(node.path)):
            raise Forbidden(f"grid {parent} is outside your scope")
    children = [g for g in reference.load_children(ctx.reader, parent) if scope.covers(g.path) or (scope.area_path or "").startswith(g.path)]
    return jsonify([
        {"code": g.code, "name": g.name, "level": g.level, "parent": g.parent, "centroid": list(g.centroid) if g.centroid else None}
        for g in children
    ])


@blueprint.get("/api/cases")
def api_cases() -> Response:
    """Cases reported in the window (newest first, at most ``limit``), personal data masked."""
    ctx, principal = _api_caller()
    now = utc_now()
    area = cached_reads.area_in_scope(ctx, request.args.get("area"), principal.scope)
    window = _window(ctx, now)
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status {bounds.quoted(status)} is not one of {', '.join(STATUSES)}")
    limit = _limit(request.args)
    rows = queries.list_cases(ctx.reader, area.path, window, _filters(ctx, request.args), principal.scope, limit, status)
    return jsonify([present_case(row, principal) for row in rows])


@blueprint.get("/api/cases/<case_id>")
def api_case(case_id: str) -> Response:
    """One case and its full timeline; every view is audited."""
    ctx, principal = _api_caller()
    row = audited_case(ctx, principal, case_id, "case.view", request.remote_addr)
    if row is None:
        raise cached_reads.NotFound(f"no case {bounds.quoted(case_id)} in your scope")
    return jsonify({**present_case(row, principal), "timeline": [present_event(e) for e in queries.case_timeline(ctx.reader, case_id)]})


@blueprint.post("/api/cases/<case_id>/contact")
def api_case_contact(case_id: str) -> Response:
    """The reporter's name and contact unmasked, for roles allowed to call back; audited."""
    ctx, principal = _api_caller()
    principal.require("unmask")
    row = audited_case(ctx, principal, case_id, "case.unmask", request.remote_addr)
    if row is None:
        raise cached_reads.NotFound(f"no case {bounds.quoted(case_id)} in your scope")
    case = present_case(row, principal, unmasked=True)
    return jsonify({"id": case_id, "reporter": case["reporter"], "contact": case["contact"], "description": case["description"]})


@blueprint.get("/api/workers")
def api_workers() -> Response:
    """Grid staff of the area with their last position and whether they are online."""
    ctx, principal = _api_caller()
    area = cached_reads.area_in_scope(ctx, request.args.get("area"), principal.scope)
    positions = {p["worker"]: p for p in live_state.worker_positions(ctx.redis, Keys(ctx.settings.prefix), utc_now(), ctx.config.offline_after_minutes)}
    result = []
    for row in queries.list_workers(ctx.reader, area.path, principal.scope):
        record = present_worker(row, principal)
        position = positions.get(row["id"])
        record["position"] = None if position is None else {k: position[k] for k in ("lat", "lon", "grid", "speed", "heading", "ts")}
        record["online"] = bool(position and position["online"])
        result.append(record)
    return jsonify(result)


def _filters(ctx: AppContext, args: MultiDict[str, str]) -> CaseFilter:
    dept = args.get("dept") or None
    grade = args.get("grade") or None
    source = args.get("source") or None
    category = args.get("category") or None
    if grade is not None and grade not in GRADES:
        raise BadRequest(f"grade {bounds.quoted(grade)} is not one of {', '.join(GRADES)}")
    if source is not None and source not in SOURCES:
        raise BadRequest(f"source {bounds.quoted(source)} is not one of {', '.join(SOURCES)}")
    if dept is not None:
        with ctx.reader.connect() as connection:
            if connection.execute(select(schema.departments.c.code).where(schema.departments.c.code == dept)).first() is None:
                raise BadRequest(f"unknown department {bounds.quoted(dept)}")
    categories = None
    if category is not None:
        catalogue = load_categories(ctx.reader)
        if category not in catalogue:
            raise BadRequest(f"unknown category {bounds.quoted(category)}")
        categories = frozenset(descendant_categories(catalogue, category))
    return CaseFilter(dept=dept, categories=categories, grade=grade, source=source)
