"""A wall learns nothing from outside its caller's scope: the pull's delta (changed and
removed pins, new reports, moved and offline workers) names only cases and workers of the
caller's area, through the real consumer, live state and Dash endpoint (SQLite and PostgreSQL).
"""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis

from app import create_app
from dashboard import wall_live, wall_screen
from dashboard.context import current_context
from dashboard.extensions import cache
from dashboard.settings import Settings
from data_feeds import accounts
from data_feeds.reference import load_children, root_grid
from gridrules.access import Forbidden, Principal, Scope
from gridrules.clock import utc_now
from tests.dash_support import callback_body, same_site_client
from tests.feed_support import basic_grids, case_event, drain, gps_ping, make_ingest, publish_case_events, publish_pings, report, wgs84_of

PASSWORD = "correct-horse-7"


@pytest.fixture
def towns(feed_district, redis_url, domain_config):
    """Two towns with their basic grids, a consumer, and a way to feed it."""
    client = redis.Redis.from_url(redis_url)
    ingest = make_ingest(feed_district, client, domain_config)
    grids = basic_grids(feed_district)
    paths = {g.code: g.path for town in load_children(feed_district, root_grid(feed_district).code)
             for community in load_children(feed_district, town.code) for g in load_children(feed_district, community.code)}
    # two towns with three basic grids (and grid workers) each
    home, other = [town for town in load_children(feed_district, root_grid(feed_district).code)
                   if sum(path.startswith(town.path) for path in paths.values()) >= 3][:2]

    def feed(cases: list[dict] = (), pings: list[dict] = ()) -> None:
        publish_case_events(client, list(cases))
        publish_pings(client, list(pings))
        totals = drain(ingest)
        assert not totals.get("dead"), totals

    yield {
        "home": home, "other": other, "feed": feed,
        "home_grids": [g for g in grids if paths.get(g["code"], "").startswith(home.path)],
        "other_grids": [g for g in grids if paths.get(g["code"], "").startswith(other.path)],
    }
    client.close()


@pytest.fixture
def app(feed_district, redis_url, tmp_path):
    url = feed_district.url.render_as_string(hide_password=False)
    return create_app(Settings(database_url=url, redis_url=redis_url, var_dir=tmp_path, auth=False))


def ping(grid: dict, at) -> dict:
    lat, lon = wgs84_of(grid)
    return gps_ping(grid["worker"], at, lat, lon)


def history(towns, now) -> None:
    """In each town: a case that will close, one that stays open; a worker online, and one
    (grids[0]'s) last seen 10 min 5 s ago, who passes the offline limit (10 min) just after
    the wall's cursor (``now`` − 10 s)."""
    feed = towns["feed"]
    for prefix, grids in (("H", towns["home_grids"]), ("O", towns["other_grids"])):
        feed(cases=[report(f"{prefix}-CLOSING", now - timedelta(minutes=30), grids[0]), report(f"{prefix}-OPEN", now - timedelta(minutes=29), grids[1])],
             pings=[ping(grids[0], now - timedelta(minutes=10, seconds=5)), ping(grids[1], now - timedelta(seconds=90))])


def changes_in_both_towns(towns, now) -> None:
    """After the wall's cursor: a report, a change and a close in each town, and a worker moving."""
    feed = towns["feed"]
    for prefix, grids in (("H", towns["home_grids"]), ("O", towns["other_grids"])):
        feed(cases=[report(f"{prefix}-NEW", now - timedelta(seconds=20), grids[2]),
                    case_event(f"{prefix}-OPEN", "register", now - timedelta(seconds=15)),
                    case_event(f"{prefix}-CLOSING", "close", now - timedelta(seconds=10))],
             pings=[ping(grids[2], now - timedelta(seconds=5))])


def named_in(delta: dict) -> set[str]:
    """Every case and worker id a delta names, wherever it names it."""
    names = set(delta.get("cases_remove", [])) | set(delta.get("new", [])) | set(delta.get("workers_offline", []))
    names |= {feature["id"] for feature in delta.get("cases", [])}
    names |= {move[0] for move in delta.get("worker_moves", [])}
    return names


def test_a_town_leaders_pull_names_only_cases_and_workers_of_the_town(app, towns):
    now = utc_now()
    history(towns, now)
    home = towns["home"]
    leader = Principal("leader", "leader", Scope(area_path=home.path, area_code=home.code))
    state = {"area": home.code, "lang": "zh", "towns": []}
    with app.server.test_request_context():
        ctx = current_context()
        # the page's cursor as the wall page keeps it, taken before the silent workers passed the offline limit
        cursor = {"changes": wall_live.latest_change_id(ctx), "gps": (now - timedelta(seconds=10)).timestamp()}
        changes_in_both_towns(towns, now)
        delta = wall_screen.pull(ctx, leader, state, cursor, None).delta

    named = named_in(delta)
    other_workers = {g["worker"] for g in towns["other_grids"]}
    assert not {name for name in named if name.startswith("O-")}, named
    assert not named & other_workers, named
    # and the town's own changes are all there
    assert {"H-NEW", "H-OPEN"} <= {feature["id"] for feature in delta["cases"]}
    assert delta["cases_remove"] == ["H-CLOSING"] and delta["new"] == ["H-NEW"]
    assert {move[0] for move in delta["worker_moves"]} == {towns["home_grids"][2]["worker"]}
    assert delta["workers_offline"] == [towns["home_grids"][0]["worker"]]


def test_the_district_sees_both_towns(app, towns):
    now = utc_now()
    history(towns, now)
    operator = Principal("duty", "operator", Scope())
    with app.server.test_request_context():
        ctx = current_context()
        cursor = {"changes": wall_live.latest_change_id(ctx), "gps": (now - timedelta(seconds=10)).timestamp()}
        changes_in_both_towns(towns, now)
        delta = wall_screen.pull(ctx, operator, {"area": root_grid(app.server.extensions["gridops"].engine).code, "lang": "zh", "towns": []}, cursor, None).delta
    assert sorted(delta["cases_remove"]) == ["H-CLOSING", "O-CLOSING"] and sorted(delta["new"]) == ["H-NEW", "O-NEW"]
    assert sorted(delta["workers_offline"]) == sorted([towns["home_grids"][0]["worker"], towns["other_grids"][0]["worker"]])


def test_fifty_walls_of_one_scope_share_one_computation_of_their_parts_per_change(app, towns, monkeypatch):
    """Every wall pulls after a change: the first computes the board, alerts, counts and tiles of
    its scope and area, the others (in any worker) take them from the shared cache; another
    scope computes its own."""
    from gridrules import wall_rules

    computed = []
    board = wall_rules.dispatch_board
    monkeypatch.setattr(wall_rules, "dispatch_board", lambda *args, **kwargs: computed.append(1) or board(*args, **kwargs))
    now = utc_now()
    history(towns, now)
    operator = Principal("duty", "operator", Scope())
    home = towns["home"]
    leader = Principal("leader", "leader", Scope(area_path=home.path, area_code=home.code))
    with app.server.test_request_context():
        ctx = current_context()
        district = {"area": root_grid(ctx.engine).code, "lang": "zh", "towns": []}
        cursor = {"changes": wall_live.latest_change_id(ctx), "gps": (now - timedelta(seconds=10)).timestamp()}
        changes_in_both_towns(towns, now)
        deltas = [wall_screen.pull(ctx, operator, district, cursor, None).delta for _ in range(50)]
        # one computation; two when the walls' pulls straddle the end of a shared period (SHARED_PARTS_S)
        assert 1 <= len(computed) <= 2, len(computed)
        assert all(delta["grid_counts"] == deltas[0]["grid_counts"] for delta in deltas)
        before = len(computed)
        wall_screen.pull(ctx, leader, {"area": home.code, "lang": "zh", "towns": []}, cursor, None)
        assert len(computed) == before + 1, "a town's wall shares nothing with the district's"
        towns["feed"](cases=[report("H-MORE", now, towns["home_grids"][1])])
        wall_screen.pull(ctx, operator, district, cursor, None)
        assert len(computed) == before + 2, "a new change batch is computed anew"


def test_after_the_live_state_is_rebuilt_every_wall_takes_all_its_cases_anew(app, towns):
    from data_feeds import live_state
    from data_feeds.keys import Keys

    now = utc_now()
    history(towns, now)
    operator = Principal("duty", "operator", Scope())
    with app.server.test_request_context():
        ctx = current_context()
        district = {"area": root_grid(ctx.engine).code, "lang": "zh", "towns": []}
        cursor = {"changes": wall_live.latest_change_id(ctx), "gps": now.timestamp()}
        assert "reset_cases" not in wall_screen.pull(ctx, operator, district, cursor, None).delta
        live_state.rebuild(ctx.engine, ctx.redis, Keys(ctx.settings.prefix))
        delta = wall_screen.pull(ctx, operator, district, cursor, None).delta
    assert delta["reset_cases"] and {"H-CLOSING", "H-OPEN", "O-CLOSING", "O-OPEN"} <= {feature["id"] for feature in delta["cases"]}


def test_workers_gone_offline_are_named_only_within_the_scope(app, towns):
    now = utc_now()
    silent_home, silent_other = towns["home_grids"][0], towns["other_grids"][0]
    towns["feed"](pings=[ping(silent_home, now - timedelta(minutes=10, seconds=5)), ping(silent_other, now - timedelta(minutes=10, seconds=5))])
    home = towns["home"]
    leader = Principal("leader", "leader", Scope(area_path=home.path, area_code=home.code))
    with app.server.test_request_context():
        ctx = current_context()
        offline = wall_live.gone_offline(ctx, leader.scope, (now - timedelta(seconds=30)).timestamp(), utc_now())
        everyone = wall_live.gone_offline(ctx, Scope(), (now - timedelta(seconds=30)).timestamp(), utc_now())
    assert offline == [silent_home["worker"]]
    assert sorted(everyone) == sorted([silent_home["worker"], silent_other["worker"]])


def test_the_wall_callback_answers_a_leader_only_with_the_town(feed_district, redis_url, tmp_path, towns):
    """The same through the Dash endpoint, as a signed-in leader's browser asks it."""
    url = feed_district.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, redis_url=redis_url, var_dir=tmp_path, auth=True))
    home = towns["home"]
    accounts.create_user(feed_district, "town-leader", "leader", PASSWORD, home.code, None, actor="test")
    client = same_site_client(app)
    assert client.post("/login", data={"name": "town-leader", "password": PASSWORD}).status_code == 302
    now = utc_now()
    history(towns, now)
    with app.server.test_request_context():
        change_id = wall_live.latest_change_id(current_context())
    changes_in_both_towns(towns, now)
    body = callback_body(
        app, "wall-delta.data",
        [{"id": "wall-signal", "property": "data", "value": "x"}, {"id": "wall-pull", "property": "n_intervals", "value": 1},
         {"id": "wall-view", "property": "data", "value": None}, {"id": "wall-scale", "property": "data", "value": 1}],
        [{"id": "wall-state", "property": "data", "value": {"area": home.code, "lang": "zh", "towns": []}},
         {"id": "wall-cursor", "property": "data", "value": {"changes": change_id, "gps": (now - timedelta(seconds=10)).timestamp()}}],
    )
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    delta = response.get_json()["response"]["wall-delta"]["data"]
    assert "H-NEW" in json.dumps(delta) and delta["workers_offline"] == [towns["home_grids"][0]["worker"]]
    assert not {name for name in named_in(delta) if name.startswith("O-")} and not named_in(delta) & {g["worker"] for g in towns["other_grids"]}


def test_a_ticking_lateness_sends_the_alerts_again_once_a_minute_not_on_every_pull(app, towns):
    """A busy feed pulls several times a second: the hundreds of alert rows are sent again when a
    case joins, leaves or changes state, and otherwise once a minute (their order and a lateness
    in working time move on with the clock), not whenever a working-minute lateness moves a tenth."""
    from zoneinfo import ZoneInfo

    local = ZoneInfo("Asia/Shanghai")
    reported = datetime(2026, 11, 25, 10, 0, tzinfo=local)  # a Wednesday; registering within 30 working minutes
    towns["feed"](cases=[report("W-LATE", reported, towns["home_grids"][0], category="B010104")])
    operator = Scope()
    with app.server.test_request_context():
        ctx = current_context()
        root = root_grid(ctx.engine)

        def at(hour, minute, second, cursor):
            return wall_screen.parts(ctx, operator, root, "zh", datetime(2026, 11, 25, hour, minute, second, tzinfo=local).astimezone(UTC), cursor, force=False)

        first = at(10, 44, 10, {})
        late = next(row for row in first.changed["alerts"] if row["id"] == "W-LATE")
        assert late["working"] and late["shown_unit"] == "m" and late["shown_amount"] == 14.2
        cursor = {"digests": first.digests, "minute": first.minute, "area": root.code}
        same_minute = at(10, 44, 50, cursor)
        assert "alerts" not in same_minute.changed, "40 s later, nothing but the clock moved: the ticker stays"
        next_minute = at(10, 45, 5, cursor)
        late = next(row for row in next_minute.changed["alerts"] if row["id"] == "W-LATE")
        assert late["shown_amount"] == 15.1
        towns["feed"](cases=[case_event("W-LATE", "register", reported + timedelta(minutes=46))])
        registered = at(10, 46, 20, {"digests": next_minute.digests, "minute": "202611251046@1.00", "area": root.code})
        assert "W-LATE" not in {row["id"] for row in registered.changed["alerts"]}, "a change of state is sent at once"


def test_an_acknowledgement_covers_what_the_caller_may_see_and_is_audited(app, towns):
    """Grade-A reports in two towns: a town leader may not acknowledge; the duty operator
    acknowledges what the wall showed, a forged key and the other town's case for a town-scoped
    operator acknowledge nothing; every wall then stops asking for it; the audit log says who."""
    from sqlalchemy import select

    from data_feeds import schema

    now = utc_now()
    towns["feed"](cases=[report("H-DANGER", now - timedelta(minutes=2), towns["home_grids"][0], category="B010102"),
                         report("O-DANGER", now - timedelta(minutes=2), towns["other_grids"][0], category="B010102")])
    home = towns["home"]
    duty = Principal("duty", "operator", Scope())
    town_duty = Principal("town-duty", "operator", Scope(area_path=home.path, area_code=home.code))
    leader = Principal("leader", "leader", Scope(area_path=home.path, area_code=home.code))
    with app.server.test_request_context():
        ctx = current_context()
        root = root_grid(ctx.engine)

        def asking(principal) -> set[str]:
            cache.delete("wall-open")
            return {item["key"] for item in wall_screen.parts(ctx, principal.scope, root if principal.scope.area_path is None else home,
                                                              "zh", utc_now(), {}, force=True).changed["attention"]}

        assert {"H-DANGER|new", "O-DANGER|new"} <= asking(duty)
        with pytest.raises(Forbidden):
            wall_screen.acknowledge(ctx, leader, ["H-DANGER|new"], "10.0.0.9")
        assert wall_screen.acknowledge(ctx, town_duty, ["O-DANGER|new", "NOPE|new", "H-DANGER|late", 7, "<b>|new"], "10.0.0.9") == 0
        assert wall_screen.acknowledge(ctx, duty, ["H-DANGER|new", "O-DANGER|new"], "10.0.0.9") == 2
        assert not {"H-DANGER|new", "O-DANGER|new"} & asking(duty)
        assert "H-DANGER|new" not in asking(town_duty)
    with app.server.extensions["gridops"].engine.connect() as connection:
        audit = connection.execute(select(schema.audit_log).where(schema.audit_log.c.action == "alert.ack")).mappings().all()
    assert [(row["actor"], row["target"]) for row in audit] == [("duty", "H-DANGER,O-DANGER")]
