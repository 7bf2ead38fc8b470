"""Cases and staff as callers may see them: personal data masked unless their role allows it."""
from __future__ import annotations

from datetime import UTC, datetime

from dashboard.context import AppContext
from gridrules.access import Principal
from gridrules.privacy import mask_free_text, mask_name, mask_phone

PERSONAL_FIELDS = ("reporter", "contact", "description")
CASE_FIELDS = (
    "id", "status", "stage", "grid", "grid_name", "category", "category_name", "category_name_en", "dept", "grade", "source",
    "lat", "lon", "worker", "reported_at", "registered_at", "invalid_at", "dispatched_at", "handled_at", "closed_at",
    "evaluated_at", "register_deadline", "dispatch_deadline", "deadline", "verify_deadline", "stage_deadline",
    "rework_count", "self_handled", "satisfaction",
)


def _iso(value: object):
    return value.replace(tzinfo=UTC).isoformat() if isinstance(value, datetime) else value


def present_case(row: dict, principal: Principal, unmasked: bool = False) -> dict:
    """A case for the caller; reporter, contact and numbers in the description masked unless
    the role may see personal data or the contact was explicitly (and audibly) unmasked."""
    record = {name: _iso(row.get(name)) for name in CASE_FIELDS}
    if principal.scope.personal_data or unmasked:
        record.update({name: row.get(name) for name in PERSONAL_FIELDS})
    else:
        record.update(reporter=mask_name(row.get("reporter")), contact=mask_phone(row.get("contact")), description=mask_free_text(row.get("description")))
    record["masked"] = not (principal.scope.personal_data or unmasked)
    return record


def present_event(row: dict) -> dict:
    return {name: _iso(value) for name, value in row.items()}


def present_worker(row: dict, principal: Principal) -> dict:
    record = dict(row)
    if not principal.scope.personal_data:
        record["phone"] = mask_phone(row.get("phone"))
    return record


def audited_case(ctx: AppContext, principal: Principal, case_id: str, action: str, remote: str | None, detail: dict | None = None) -> dict | None:
    """One case as stored, if the caller's scope holds it (None otherwise), with the access
    (``case.view``, ``case.unmask``) written to the audit log: the one way a case is opened."""
    from data_feeds import accounts, queries

    row = queries.case_detail(ctx.engine, case_id, principal.scope)
    if row is not None:
        accounts.audit(ctx.engine, principal.name, action, case_id, detail, remote)
    return row


def stage_limits_text(ctx: AppContext, row: dict) -> dict[str, str]:
    """Each stage's limit of a case as written in the catalogue (``2h``, ``1wd``), as the
    lifecycle applies them: the category's own, or its grade's when the grade was overridden."""
    from data_feeds.reference import load_categories
    from gridrules.lifecycle import Rules
    from gridrules.limits import STAGES

    category = load_categories(ctx.engine).get(row["category"])
    if category is None or category.limits is None:
        return {}
    limits = Rules({}, ctx.config.calendar, ctx.config.grade_limits).limits_for(category, row["grade"])
    return {stage: str(limits.for_stage(stage)) for stage in STAGES}
