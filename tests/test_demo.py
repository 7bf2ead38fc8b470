"""The demo district: generated through the real importers and lifecycle, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from data_feeds import db, schema
from data_feeds.case_store import case_row
from data_feeds.case_texts import SOURCE_PREFIX, describe, stem
from data_feeds.demo import DemoSize, count_rows, ensure_demo
from data_feeds.reference import load_rules
from gridrules.lifecycle import CaseEvent, apply_event
from tests.support import local

NOW = local(2026, 11, 25, 15, 10)  # a Wednesday afternoon, during the second patrol round
SIZE = DemoSize(communities=24, grids=72, days=5, cases_per_day=240, seed=11)


@pytest.fixture
def demo(engine, domain_config, tmp_path):
    assert ensure_demo(engine, domain_config, NOW, tmp_path, SIZE)
    return engine


def test_demo_has_the_real_district_and_its_twelve_towns(demo):
    with demo.connect() as connection:
        levels = Counter(dict(connection.execute(select(schema.grids.c.level, func.count()).group_by(schema.grids.c.level)).all()))
        towns = set(connection.execute(select(schema.grids.c.name).where(schema.grids.c.level == 2)).scalars())
        root = connection.execute(select(schema.grids).where(schema.grids.c.level == 1)).mappings().one()
    assert levels[1] == 1 and levels[2] == 12 and levels[3] == 24 and levels[4] == 72
    assert {"长桥街道", "木渎镇", "甪直镇", "东山镇", "金庭镇"} <= towns
    assert root["code"] == "320506" and root["name"] == "吴中区"
    assert json.loads(root["geometry"])["type"] == "MultiPolygon"


def test_every_grid_has_staff(demo):
    with demo.connect() as connection:
        staffed = set(connection.execute(select(schema.workers.c.grid).where(schema.workers.c.role == "worker")).scalars())
        basic = set(connection.execute(select(schema.grids.c.code).where(schema.grids.c.level == 4)).scalars())
        heads = connection.execute(select(func.count()).select_from(schema.workers).where(schema.workers.c.role == "head")).scalar()
    assert staffed == basic
    assert heads == 24


def test_history_replays_exactly_through_the_lifecycle(demo, domain_config):
    """Every stored case equals its stored events applied again by apply_event."""
    rules = load_rules(demo, domain_config)
    with demo.connect() as connection:
        events = connection.execute(select(schema.case_events).order_by(schema.case_events.c.case_id, schema.case_events.c.id)).mappings().all()
        stored = {row["id"]: dict(row) for row in connection.execute(select(schema.cases)).mappings()}
        reports = {row["id"]: row for row in stored.values()}
    rebuilt = {}
    for row in events:
        original = reports[row["case_id"]]
        fields = {"dept": row["dept"]}
        if row["action"] == "report":
            fields = {
                "grid": original["grid"], "category": original["category"], "source": original["source"],
                "lat": original["lat"], "lon": original["lon"], "worker": original["worker"],
                "reporter": original["reporter"], "contact": original["contact"], "description": original["description"],
            }
        if row["action"] == "evaluate":
            fields["satisfaction"] = original["satisfaction"]
        detail = json.loads(row["detail"]) if row["detail"] else {}
        if "to_dept" in detail:  # a re-dispatch's row names the department it was taken from
            fields["dept"] = detail["to_dept"]
        if row["action"] == "extend":
            fields["deadline"] = datetime.fromisoformat(detail["deadline"])
        fields["note"] = detail.get("note")
        event = CaseEvent(event_id=row["event_id"], case_id=row["case_id"], action=row["action"], ts=db.from_db_time(row["ts"]), actor=row["actor"], **fields)
        before = rebuilt.get(row["case_id"])
        assert (before.status if before else None) == row["from_status"]
        rebuilt[row["case_id"]] = apply_event(before, event, rules)
        assert rebuilt[row["case_id"]].status == row["to_status"]
    assert set(rebuilt) == set(stored)
    for case_id, case in rebuilt.items():
        expected = case_row(case)
        for name, value in expected.items():
            assert stored[case_id][name] == value, (case_id, name)


def test_history_is_realistic(demo):
    with demo.connect() as connection:
        cases = pd.DataFrame(connection.execute(select(schema.cases)).mappings().all())
    assert 0.6 * SIZE.days * SIZE.cases_per_day < len(cases) < 1.4 * SIZE.days * SIZE.cases_per_day
    hours = pd.to_datetime(cases["reported_at"]).dt.tz_localize("UTC").dt.tz_convert("Asia/Shanghai").dt.hour
    assert (hours.between(8, 17)).mean() > 0.6  # more by day than by night
    statuses = cases["status"].value_counts(normalize=True)
    assert 0.02 < statuses.get("invalid", 0) < 0.15
    assert (cases["rework_count"] > 0).mean() > 0.02
    assert cases["self_handled"].mean() > 0.05
    assert set(cases["source"]) >= {"patrol", "hotline", "police", "video", "wechat"}
    closed = cases.dropna(subset=["closed_at", "deadline"])
    late_flags = pd.to_datetime(closed["closed_at"]) > pd.to_datetime(closed["deadline"])
    late = late_flags.groupby(closed["dept"]).mean()[closed["dept"].value_counts() >= 10]
    assert late.max() - late.min() > 0.25 and late.min() < 0.2  # some departments run late, others do not
    assert cases["is_open"].sum() > 0


def test_patrol_today_has_tracks_and_daily_summaries(demo):
    assert count_rows(demo, schema.patrol_points) > 0
    with demo.connect() as connection:
        days = connection.execute(select(func.count(func.distinct(schema.patrol_days.c.day)))).scalar()
    assert days == SIZE.days


def test_second_start_reuses_the_database(demo, domain_config, tmp_path):
    before = count_rows(demo, schema.cases)
    assert ensure_demo(demo, domain_config, NOW, tmp_path, SIZE) is False
    assert count_rows(demo, schema.cases) == before


def test_every_case_says_what_is_wrong_and_where_in_the_words_of_its_channel(demo):
    """A search and a case panel have something to show: each description names the class,
    a place in the grid's own streets and estates (most of them), in the words of the channel."""
    g, parent = schema.grids.c, schema.grids.alias("parent")
    with demo.connect() as connection:
        rows = connection.execute(
            select(schema.cases.c.source, schema.cases.c.description, schema.cases.c.contact, schema.categories.c.name, parent.c.name.label("community"))
            .select_from(schema.cases.join(schema.categories, schema.categories.c.code == schema.cases.c.category)
                         .join(schema.grids, g.code == schema.cases.c.grid).join(parent, parent.c.code == g.parent))
        ).all()
    assert rows and all(row.description and row.description.startswith(SOURCE_PREFIX[row.source]) and row.name in row.description for row in rows)
    local = sum(1 for row in rows if stem(row.community) and stem(row.community) in row.description)
    assert local / len(rows) > 0.4, local / len(rows)
    assert len({row.description for row in rows}) > 0.9 * len(rows)  # not one text again and again
    contacts = [row.contact for row in rows if row.contact]
    assert contacts and all(len(contact) == 11 and contact.startswith("1") and contact.isdigit() for contact in contacts)


@pytest.mark.parametrize("name, expected", [("胥湖社区", "胥湖"), ("金庭镇", "金庭"), ("长桥街道", "长桥"), ("石湖村", "石湖"), ("凤里社区第2网格", "凤里社区"), ("镇", ""), ("Hillside", "Hillside")])
def test_place_names_lose_their_administrative_ending(name, expected):
    assert stem(name) == expected


def test_a_district_with_names_of_its_own_gets_descriptions_of_its_own():
    text = describe("hotline", "井盖缺失", "公用设施", ("滨江社区", "新城街道"), np.random.default_rng(1))
    assert text.startswith("12345热线市民反映：") and "井盖缺失，存在安全隐患" in text
    assert describe("patrol", "占道经营", "市容环境", (), np.random.default_rng(2)).startswith("网格员巡查发现：")  # a grid without named parents
