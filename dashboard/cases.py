"""Cases and staff as callers may see them: personal data masked unless their role allows it."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis

from dashboard import cached_reads, nearest
from dashboard.context import AppContext
from dashboard.i18n import t
from data_feeds import accounts, db, queries, reference
from gridrules.access import Principal
from gridrules.lifecycle import SOURCES, Rules
from gridrules.privacy import mask_free_text, mask_name, mask_phone, staff_phone
from gridrules.stage_rounds import StageRound, stage_rounds

PERSONAL_FIELDS = ("reporter", "contact", "description")
CASE_FIELDS = (
    "id", "status", "stage", "grid", "grid_name", "category", "category_name", "category_name_en", "dept", "grade", "source",
    "lat", "lon", "worker", "reported_at", "registered_at", "invalid_at", "dispatched_at", "handled_at", "closed_at",
    "evaluated_at", "register_deadline", "dispatch_deadline", "deadline", "verify_deadline", "stage_deadline",
    "rework_count", "self_handled", "satisfaction",
    "supervised_at", "supervise_count", "redispatch_count", "decline_count", "extension_count",
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
    return {**row, "phone": staff_phone(row.get("phone"), principal.scope.personal_data)}


def audited_case(ctx: AppContext, principal: Principal, case_id: str, action: str, remote: str | None, detail: dict | None = None) -> dict | None:
    """One case as stored, if the caller's scope holds it (None otherwise), with the access
    (``case.view``, ``case.unmask``) written to the audit log: the one way a case is opened."""
    row = queries.case_detail(ctx.reader, case_id, principal.scope)
    if row is not None:
        accounts.audit(ctx.engine, principal.name, action, case_id, detail, remote)
    return row


@dataclass(frozen=True)
class CaseStory:
    """What the case panel shows of one case: the case (masked for the caller), its category
    path (major → sub → detail class), its grid's outline, every transition with its actor
    named, and each round of each timed stage against its limit."""
    case: dict
    category_path: list[str]
    grid_outline: dict | None
    events: list[dict]
    rounds: list[StageRound]
    nearest: list[dict] | None = None  # an open case's nearest online workers; None when the live positions cannot be read
    department_names: dict = field(default_factory=dict)


def case_story(ctx: AppContext, principal: Principal, case_id: str, remote: str | None, lang: str, now: datetime, screen: str = "review") -> CaseStory | None:
    """The story of one case if the caller's scope holds it (None otherwise); opening it is
    written to the audit log (``case.view``)."""
    row = audited_case(ctx, principal, case_id, "case.view", remote, {"screen": screen})
    if row is None:
        return None
    names = cached_reads.names(ctx, lang)
    events = queries.case_timeline(ctx.reader, case_id)
    category = reference.load_categories(ctx.reader).get(row["category"])
    limits = Rules({}, ctx.config.calendar, ctx.config.grade_limits).limits_for(category, row["grade"]) if category is not None and category.limits is not None else None
    deadlines = {field: db.from_db_time(row.get(field)) for field in ("register_deadline", "dispatch_deadline", "deadline", "verify_deadline")}
    rounds = stage_rounds([{**event, "ts": db.from_db_time(event["ts"])} for event in events], deadlines, limits, ctx.config.calendar, now)
    actors = actor_names(ctx, [event["actor"] for event in events], names, lang)
    return CaseStory(
        case=present_case(row, principal),
        category_path=category_path(row["category"], names),
        grid_outline=reference.grid_outline(ctx.reader, row["grid"]),
        events=[{**present_event(event), "actor_name": actors.get(event["actor"], event["actor"])} for event in events],
        rounds=rounds,
        nearest=_nearest(ctx, principal, row, now, lang),
        department_names=names["departments"],
    )


def _nearest(ctx: AppContext, principal: Principal, row: dict, now: datetime, lang: str) -> list[dict] | None:
    if not row.get("is_open"):
        return []
    try:
        return nearest.nearest_workers(ctx, principal, row, now, lang)
    except redis.RedisError:  # the panel still opens from the database; the list says positions are unavailable
        return None


def category_path(code: str, names: dict) -> list[str]:
    """The names of a class and its parents, the major class first."""
    parents, labels = names["category_parents"], names["categories_all"]
    chain, seen = [], set()
    while code and code not in seen:
        seen.add(code)
        chain.append(labels.get(code, code))
        code = parents.get(code)
    return chain[::-1]


ACTOR_WORDS = {"centre": "actor_centre", "citizen": "actor_citizen", "dept": "actor_dept"}


def actor_names(ctx: AppContext, actors: list[str], names: dict, lang: str) -> dict[str, str]:
    """Who each actor of a case's events is, by name: a grid worker by name and grid role, a
    department by name, a channel (``hotline``) or the centre in words; anything else (a
    person's name sent by a feed) as it came."""
    distinct = sorted({actor for actor in actors if actor})
    workers = queries.worker_names(ctx.reader, distinct)
    named = {}
    for actor in distinct:
        if actor in workers:
            named[actor] = workers[actor]
        elif actor in names["departments"]:
            named[actor] = names["departments"][actor]
        elif actor in SOURCES:
            named[actor] = t("source_" + actor, lang)
        elif actor in ACTOR_WORDS:
            named[actor] = t(ACTOR_WORDS[actor], lang)
    return named


def search(ctx: AppContext, principal: Principal, text: str, remote: str | None) -> list[dict]:
    """Cases of the caller's scope matching ``text`` (a case id's beginning, words of the
    description; a phone number only for roles that may unmask, and then written to the audit
    log), newest first, descriptions masked as the panel masks them."""
    area = cached_reads.home_area(ctx, principal.scope)
    if area is None:
        return []
    phones = principal.can("unmask")
    hits = queries.search_cases(ctx.reader, area.path, text, principal.scope, phones)
    if phones and queries.PHONE_DIGITS.search(text or ""):
        accounts.audit(ctx.engine, principal.name, "case.search", None, {"text": text[:queries.SEARCH_CHARS], "hits": len(hits)}, remote)
    masked = not principal.scope.personal_data
    return [{**hit, "reported_at": _iso(hit["reported_at"]), "description": mask_free_text(hit["description"]) if masked else hit["description"]} for hit in hits]
