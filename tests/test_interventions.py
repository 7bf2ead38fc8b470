"""督办 from the screens: who may, on what, with what words; published on the case stream,
applied by the consumer, audited."""
from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from sqlalchemy import select

from app import create_app
from dashboard import interventions
from dashboard.context import current_context
from dashboard.settings import Settings
from data_feeds import schema
from gridrules.access import Forbidden, Principal, Scope
from gridrules.clock import utc_now
from layouts import review
from tests.feed_support import basic_grids, case_event, drain, make_ingest, publish_case_events, report


@pytest.fixture
def district(feed_district, redis_url, domain_config):
    """An open case and a closed one, and the consumer that applies what the screen publishes."""
    client = redis.Redis.from_url(redis_url)
    ingest = make_ingest(feed_district, client, domain_config)
    grid = basic_grids(feed_district)[0]
    t = utc_now() - timedelta(hours=1)
    publish_case_events(client, [report("OPEN1", t, grid), report("DONE1", t, grid), case_event("DONE1", "close", t + timedelta(minutes=5))])
    assert not drain(ingest).get("dead")
    yield {"drain": lambda: drain(ingest)}
    client.close()


@pytest.fixture
def app(feed_district, redis_url, tmp_path):
    return create_app(Settings(database_url=feed_district.url.render_as_string(hide_password=False), redis_url=redis_url, var_dir=tmp_path, auth=False))


OPERATOR = Principal("duty", "operator", Scope())


def audit_rows(engine) -> list[tuple]:
    a = schema.audit_log.c
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(a.actor, a.action, a.target).where(a.action == "case.supervise"))]


def test_a_supervision_is_published_applied_and_audited(app, district, feed_district):
    with app.server.test_request_context():
        ctx = current_context()
        event_id = interventions.supervise(ctx, OPERATOR, "OPEN1", "  请尽快\t处置  ", "10.0.0.9", utc_now())
        district["drain"]()
        assert interventions.applied(ctx, event_id, wait_s=0)
    e = schema.case_events.c
    with feed_district.connect() as connection:
        row = connection.execute(select(e.action, e.actor, e.detail).where(e.event_id == event_id)).one()
        count = connection.execute(select(schema.cases.c.supervise_count).where(schema.cases.c.id == "OPEN1")).scalar()
    assert (row.action, row.actor, row.detail, count) == ("supervise", "duty", '{"note": "请尽快 处置"}', 1)
    assert audit_rows(feed_district) == [("duty", "case.supervise", "OPEN1")]


@pytest.mark.parametrize("principal,case_id,note,outcome", [
    (Principal("leader", "leader", Scope()), "OPEN1", "x", Forbidden),  # leaders review; the centre commands
    (Principal("swj", "dept", Scope(dept="SWJ")), "OPEN1", "x", Forbidden),
    (OPERATOR, "OPEN1", " \n ", interventions.NoteNeeded),
    (OPERATOR, "OPEN1", None, interventions.NoteNeeded),
    (OPERATOR, "DONE1", "x", None),  # closed: nothing to press for
    (OPERATOR, "NOPE", "x", None),
    (OPERATOR, "' OR 1=1 --" * 30, "x", None),
    (Principal("town", "operator", Scope(area_path="/nowhere/", area_code="nowhere")), "OPEN1", "x", None),  # outside the scope
])
def test_what_cannot_be_supervised_publishes_nothing(app, district, feed_district, redis_url, principal, case_id, note, outcome):
    client = redis.Redis.from_url(redis_url)
    before = client.xlen("gridops:case-events")
    with app.server.test_request_context():
        if outcome is None:
            assert interventions.supervise(current_context(), principal, case_id, note, None, utc_now()) is None
        else:
            with pytest.raises(outcome):
                interventions.supervise(current_context(), principal, case_id, note, None, utc_now())
    assert client.xlen("gridops:case-events") == before and audit_rows(feed_district) == []
    client.close()


def test_the_case_panel_offers_supervision_only_to_the_command_role_and_for_open_cases():
    open_case, closed_case = {"status": "dispatched"}, {"status": "closed"}
    assert review.supervise_form(open_case, "zh") and not review.supervise_form(closed_case, "zh")
    assert "督办" in str(review.supervise_form(open_case, "zh")) and "Supervise" in str(review.supervise_form(open_case, "en"))
