"""HTTP interfaces others rely on (DESIGN §7): /healthz, /metrics, /api/indicators,
/api/catalogue and /api/grids. Keys are stable; errors are JSON with an ``error`` text.
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from dashboard import services
from dashboard.clock import utc_now
from dashboard.context import current_context
from dashboard.lifecycle import GRADES, SOURCES
from dashboard.metrics import health_report, render_metrics
from dashboard.timewindows import WindowError, window_from_params
from data_feeds import reference, schema
from data_feeds.queries import CaseFilter
from data_feeds.reference import descendant_categories, load_categories

blueprint = Blueprint("gridops_api", __name__)


class BadRequest(ValueError):
    """A parameter the caller got wrong: answered with 400 and the reason."""


@blueprint.errorhandler(BadRequest)
def _bad_request(error):
    return jsonify(error=str(error)), 400


@blueprint.errorhandler(WindowError)
def _bad_window(error):
    return jsonify(error=str(error)), 400


@blueprint.get("/healthz")
def healthz():
    report = health_report(current_context())
    return jsonify(report), 200 if report["status"] == "ok" else 503


@blueprint.get("/metrics")
def metrics():
    return Response(render_metrics(current_context()), mimetype="text/plain; version=0.0.4")


@blueprint.get("/api/indicators")
def api_indicators():
    ctx = current_context()
    now = utc_now()
    area = _area(ctx, request.args.get("area"))
    window = window_from_params(request.args.get("start"), request.args.get("end"), ctx.settings.tz, now)
    filters = _filters(ctx, request.args)
    values = services.area_indicators(ctx, area, window, now, filters)
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
def api_catalogue():
    ctx = current_context()
    with ctx.engine.connect() as connection:
        rows = connection.execute(select(schema.categories).order_by(schema.categories.c.code)).mappings().all()
    return jsonify([dict(row) for row in rows])


@blueprint.get("/api/grids")
def api_grids():
    ctx = current_context()
    parent = request.args.get("parent") or None
    if parent is not None and services.grid(ctx, parent) is None:
        return jsonify(error=f"unknown grid code {parent!r}"), 404
    children = reference.load_children(ctx.engine, parent)
    return jsonify([
        {"code": g.code, "name": g.name, "level": g.level, "parent": g.parent, "centroid": list(g.centroid) if g.centroid else None}
        for g in children
    ])


def _area(ctx, code: str | None) -> reference.GridInfo:
    if not code:
        root = reference.root_grid(ctx.engine)
        if root is None:
            raise BadRequest("the grid database holds no district yet (python app.py import-grids FILE)")
        return root
    area = services.grid(ctx, code)
    if area is None:
        raise BadRequest(f"unknown area code {code!r}")
    return area


def _filters(ctx, args) -> CaseFilter:
    dept = args.get("dept") or None
    grade = args.get("grade") or None
    source = args.get("source") or None
    category = args.get("category") or None
    if grade is not None and grade not in GRADES:
        raise BadRequest(f"grade {grade!r} is not one of {', '.join(GRADES)}")
    if source is not None and source not in SOURCES:
        raise BadRequest(f"source {source!r} is not one of {', '.join(SOURCES)}")
    if dept is not None:
        with ctx.engine.connect() as connection:
            if connection.execute(select(schema.departments.c.code).where(schema.departments.c.code == dept)).first() is None:
                raise BadRequest(f"unknown department {dept!r}")
    categories = None
    if category is not None:
        catalogue = load_categories(ctx.engine)
        if category not in catalogue:
            raise BadRequest(f"unknown category {category!r}")
        categories = frozenset(descendant_categories(catalogue, category))
    return CaseFilter(dept=dept, categories=categories, grade=grade, source=source)
