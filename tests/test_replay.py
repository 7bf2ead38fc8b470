"""``python app.py replay``: real recordings published through the feed contract.

Pure tests of the mappings and shifts; then each format replayed into a real Redis and
consumed into the grid database (SQLite and PostgreSQL), checked against an independent
pandas computation over the same file; then the command line in a subprocess (SQLite).
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import shape
from sqlalchemy import func, select

from dashboard import area_reports
from data_feeds import replay, replay_common, replay_geolife, replay_la311, schema
from data_feeds.importers.common import ImportFileError
from data_feeds.keys import Keys
from data_feeds.queries import CaseFilter
from data_feeds.reference import root_grid
from gridrules.access import EVERYTHING
from gridrules.clock import utc_now
from gridrules.coords import gcj02_to_wgs84, wgs84_to_gcj02
from gridrules.indicators import Window
from gridrules.lifecycle import SOURCES
from gridrules.patrol import SEGMENT_GAP_S, haversine_m
from tests.feed_support import drain, make_ingest
from tests.support import PACKAGE_DATA, PROJECT, TEST_DATA, TZ

KEYS = Keys("gridops:")
GEOLIFE = TEST_DATA / "gps" / "geolife_sample.txt.gz"
LA_DIR = TEST_DATA / "la311"
LA_FILE = LA_DIR / "service_requests.csv"
LA_REQUESTS = 9989


# ---------------------------------------------------------------- helpers


def parse(*argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    replay.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def fixed_now() -> datetime:
    """A whole second just behind the clock: what the tests pass as --now."""
    return (utc_now() - timedelta(seconds=1)).replace(microsecond=0)


def run(settings, capsys, *argv) -> tuple[int, str, str]:
    code = replay.command(settings, parse(*argv))
    out, err = capsys.readouterr()
    return code, out, err


def stream(client, key) -> list[dict]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in client.xrange(key)]


def grid_polygons(engine) -> dict:
    """Basic grid code → shapely polygon (GCJ-02), straight from the table."""
    with engine.connect() as connection:
        rows = connection.execute(select(schema.grids.c.code, schema.grids.c.geometry).where(schema.grids.c.level == 4)).all()
    return {code: shape(json.loads(geometry)) for code, geometry in rows}


def read_la_csv() -> pd.DataFrame:
    """The requests with their type name and agency code, read independently with pandas."""
    requests = pd.read_csv(LA_FILE, dtype={"srnumber": str})
    types = pd.read_csv(LA_DIR / "types.csv")[["type_id", "type_name"]]
    agencies = pd.read_csv(LA_DIR / "agencies.csv")[["agency_id", "data_code"]].rename(columns={"data_code": "agency_code"})
    frame = requests.merge(types, on="type_id", how="left").merge(agencies, on="agency_id", how="left")
    frame["created"] = pd.to_datetime(frame["created_date"])
    frame["closed"] = pd.to_datetime(frame["closed_date"])
    return frame


# ================================================================ (a) pure mappings and shifts


def test_the_format_is_told_by_the_header():
    assert replay.detect_format(["lat", "lng", "datetime", "uid"]) == "geolife"
    with LA_FILE.open(encoding="utf-8") as handle:
        assert replay.detect_format(handle.readline().strip().split(",")) == "la311"
    assert replay.detect_format(["code", "name"]) is None


def test_devices_get_distinct_workers_deterministically():
    workers = [f"W{n:04d}" for n in range(1, 25)]
    first = replay_geolife.assign_workers(["001", "005", "042"], workers)
    assert first == replay_geolife.assign_workers(["042", "001", "005"], list(reversed(workers)))
    assert len(set(first.values())) == 3 and set(first.values()) <= set(workers)
    assert replay_geolife.assign_workers(["a", "b"], ["W1", "W2"]).keys() == {"a", "b"}
    with pytest.raises(replay_common.ReplayError, match="only 1 grid workers"):
        replay_geolife.assign_workers(["a", "b"], ["W1"])


def _points(*stamps, uid="u1"):
    return pd.DataFrame({"uid": uid, "ts": pd.to_datetime(list(stamps)).astype("datetime64[us]")})


def test_recorded_days_move_onto_the_latest_days_keeping_time_of_day_and_intervals():
    # UTC times; local (UTC+8) days 03-01, 03-02 (a walk over local midnight), then 03-09 after a gap.
    points = _points(
        "2009-03-01 01:00:00", "2009-03-01 15:58:00",  # 09:00 and 23:58 local, 03-01
        "2009-03-01 16:01:00", "2009-03-01 16:03:30",  # 00:01 and 00:03:30 local, 03-02
        "2009-03-09 02:00:00", "2009-03-09 02:00:05",  # 10:00 local, 03-09
    )
    now = datetime(2026, 11, 27, 12, 0, tzinfo=TZ)
    moved = replay_geolife.shift_user_days(points, TZ, now, days=3)
    assert len(moved) == 6
    local = moved["ts"].dt.tz_localize("UTC").dt.tz_convert(TZ)
    assert [d.isoformat() for d in local.dt.date] == ["2026-11-25"] * 2 + ["2026-11-26"] * 2 + ["2026-11-27"] * 2
    # time of day kept; whole days added; every interval inside a day and over the midnight walk kept
    original = points["ts"].dt.tz_localize("UTC").dt.tz_convert(TZ)
    assert (local.dt.strftime("%H:%M:%S").to_numpy() == original.dt.strftime("%H:%M:%S").to_numpy()).all()
    assert ((moved["ts"] - points["ts"]) % pd.Timedelta(days=1) == pd.Timedelta(0)).all()
    assert (moved["ts"].diff().iloc[1:4] == points["ts"].diff().iloc[1:4]).all()
    assert local.max() <= now
    # only the last N recorded days
    assert len(replay_geolife.shift_user_days(points, TZ, now, days=1)) == 2
    # a last day that ends later in the day than now lands on yesterday
    early = datetime(2026, 11, 27, 9, 0, tzinfo=TZ)
    moved_early = replay_geolife.shift_user_days(points, TZ, early, days=1)
    assert set(moved_early["day"].dt.date.astype(str)) == {"2026-11-26"}
    assert moved_early["ts"].max() <= pd.Timestamp(early.astimezone(UTC).replace(tzinfo=None))


def test_each_user_ends_on_its_own_latest_day():
    points = pd.concat([_points("2008-12-15 02:00:00", uid="a"), _points("2009-03-19 14:00:00", uid="b")])  # 10:00 and 22:00 local
    now = datetime(2026, 11, 27, 12, 0, tzinfo=TZ)
    moved = replay_geolife.shift_user_days(points.reset_index(drop=True), TZ, now, days=7)
    days = dict(zip(moved["uid"], moved["day"].dt.date.astype(str)))
    assert days == {"a": "2026-11-27", "b": "2026-11-26"}


def test_a_track_moved_onto_a_centroid_keeps_its_distances():
    lat = np.array([39.984094, 39.990000, 40.010000, 39.970000])
    lon = np.array([116.319236, 116.330000, 116.300000, 116.350000])
    new_lat, new_lon = replay_geolife.translate_tracks(lat, lon, lat[0], lon[0], 31.25, 121.40)
    assert (new_lat[0], new_lon[0]) == pytest.approx((31.25, 121.40), abs=1e-12)
    before = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
    after = haversine_m(new_lat[:-1], new_lon[:-1], new_lat[1:], new_lon[1:])
    assert after == pytest.approx(before, rel=0.005)


def test_the_la_file_moves_by_whole_weeks_to_just_before_now():
    latest = datetime(2020, 1, 3, 14, 22)
    for now in (datetime(2026, 11, 27, 14, 22), datetime(2026, 11, 27, 14, 21), datetime(2026, 11, 30, 8, 0)):
        weeks = replay_la311.week_shift(latest, now)
        moved = latest + timedelta(weeks=weeks)
        assert moved <= now < moved + timedelta(weeks=1)
        assert (moved.weekday(), moved.hour, moved.minute) == (latest.weekday(), latest.hour, latest.minute)


def test_a_request_becomes_an_ordered_timeline_cut_at_now():
    t = datetime(2026, 11, 20, 9, 0, tzinfo=TZ)
    now = t + timedelta(days=3)
    full = replay_la311.case_timeline(t, t + timedelta(days=1), now)
    assert [a for a, _ in full] == ["report", "register", "dispatch", "feedback", "close"]
    assert [m for _, m in full] == [t, t + replay_la311.REGISTER_DELAY, t + replay_la311.DISPATCH_DELAY, t + timedelta(days=1) - replay_la311.FEEDBACK_LEAD, t + timedelta(days=1)]
    assert [a for a, _ in replay_la311.case_timeline(t, None, now)] == ["report", "register", "dispatch"]
    assert [a for a, _ in replay_la311.case_timeline(t, t - timedelta(hours=1), now)] == ["report", "register", "dispatch"]
    assert [a for a, _ in replay_la311.case_timeline(t, now + timedelta(minutes=1), now)] == ["report", "register", "dispatch", "feedback"]
    assert [a for a, _ in replay_la311.case_timeline(t, now + timedelta(hours=1), now)] == ["report", "register", "dispatch"]
    assert [a for a, _ in replay_la311.case_timeline(now - timedelta(minutes=5), None, now)] == ["report", "register"]
    for span in (timedelta(0), timedelta(minutes=2), timedelta(minutes=40)):
        times = [m for _, m in replay_la311.case_timeline(t, t + span, now)]
        assert len(times) == 5 and times == sorted(times) and times[0] == t and times[-1] == t + span


def test_every_la_source_maps_to_a_channel_of_the_contract():
    sources = pd.read_csv(LA_DIR / "sources.csv")
    channels = {name: replay_la311.source_channel(name, code) for name, code in zip(sources["source_name"], sources["data_code"])}
    assert set(channels.values()) <= set(SOURCES)
    assert channels["Phone Call"] == "hotline" and channels["Mobile App"] == "wechat" and channels["Email"] == "wechat"
    assert channels["Website"] == "wechat" and channels["Work Crew"] == "patrol" and channels["Mayor's Office"] == "leader"
    assert replay_la311.source_channel("Carrier Pigeon") == "hotline"
    assert replay_la311.source_channel("Chatbot", "Self Service") == "wechat"
    assert replay_la311.source_channel("Field Driver") == "patrol"


def test_types_map_to_detail_classes_whose_department_matches_the_agency():
    catalogue = pd.read_csv(PACKAGE_DATA / "catalogue.csv", dtype=str).set_index("code")
    departments = set(pd.read_csv(PACKAGE_DATA / "departments.csv")["code"])
    for type_name in pd.read_csv(LA_DIR / "types.csv")["type_name"]:
        code = replay_la311.category_for_type(type_name)
        assert code in catalogue.index and isinstance(catalogue.loc[code, "dept"], str), type_name
    assert replay_la311.category_for_type("Single Streetlight") == replay_la311.category_for_type("Multiple Streetlights") == "B010301"
    assert replay_la311.category_for_type("Graffiti") == "E020102"
    assert catalogue.loc[replay_la311.category_for_type("Bulky Items"), "parent"].startswith("E01")
    assert replay_la311.category_for_type("Something New") == replay_la311.GENERAL_CATEGORY
    assert set(replay_la311.AGENCY_DEPT.values()) | set(replay_la311.TYPE_DEPT.values()) <= departments
    # The department follows the category's, except for general requests LA routed to a specific agency.
    pairs = read_la_csv()[["type_name", "agency_code"]].drop_duplicates()
    for type_name, agency in pairs.itertuples(index=False):
        category_dept = catalogue.loc[replay_la311.category_for_type(type_name), "dept"]
        dept = replay_la311.department_for(type_name, agency, category_dept)
        if type_name in ("Other", "Feedback") and agency != "ITA":
            assert dept == replay_la311.AGENCY_DEPT[agency]
        else:
            assert dept == category_dept, (type_name, agency)
    assert replay_la311.department_for("Bulky Items", "", "HWC") == "HWC"
    assert replay_la311.department_for("Homeless Encampment", "LASAN", "MZJ") == "MZJ"


def test_requests_land_in_grids_of_their_council_community_deterministically():
    groups = {"C1": ["G11", "G12", "G13"], "C2": ["G21", "G22"], "C3": ["G31"]}
    parent_of = {grid: parent for parent, grids in groups.items() for grid in grids}
    placed = [replay_la311.place_request("44", f"1-{n}", groups) for n in range(200)]
    assert placed == [replay_la311.place_request("44", f"1-{n}", groups) for n in range(200)]
    assert len({parent_of[grid] for grid in placed}) == 1  # one council, one community
    if len(groups[parent_of[placed[0]]]) > 1:
        assert len(set(placed)) > 1  # spread over its grids
    councils = {parent_of[replay_la311.place_request(str(c), "x", groups)] for c in range(100)}
    assert councils == set(groups)


def test_a_point_drawn_inside_a_concave_grid_is_inside_it():
    u_shape = shapely.Polygon([(0, 0), (3, 0), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)])
    points = [replay_la311.point_inside(u_shape, f"1-{n}") for n in range(50)]
    assert all(u_shape.contains(shapely.Point(lon, lat)) for lat, lon in points)
    assert points == [replay_la311.point_inside(u_shape, f"1-{n}") for n in range(50)] and len(set(points)) == 50


class FakePipeline:
    def __init__(self, log):
        self.log, self.pending = log, []

    def xadd(self, stream, message):
        self.pending.append(message["n"])

    def execute(self):
        self.log.append(("execute", list(self.pending)))
        self.pending = []


class FakeRedis:
    def __init__(self):
        self.log = []

    def pipeline(self, transaction=True):
        return FakePipeline(self.log)


def test_publishing_is_chunked_and_paced_by_the_recorded_gaps():
    client = FakeRedis()
    messages = [{"n": str(i)} for i in range(5)]
    assert replay.publish(client, "s", messages, np.zeros(5), chunk=2) == 5
    assert client.log == [("execute", ["0", "1"]), ("execute", ["2", "3"]), ("execute", ["4"])]
    clock = [0.0]
    client = FakeRedis()

    def sleep(seconds):
        client.log.append(("sleep", round(seconds, 6)))
        clock[0] += seconds

    times = np.array([100.0, 100.0, 104.0, 110.0, 110.01])
    replay.publish(client, "s", messages, times, pace=0.5, sleep=sleep, clock=lambda: clock[0])
    assert client.log == [("execute", ["0", "1"]), ("sleep", 2.0), ("execute", ["2"]), ("sleep", 3.0), ("execute", ["3", "4"])]


# ================================================================ (b) GeoLife through the consumer


def raw_geolife() -> pd.DataFrame:
    points = pd.read_csv(GEOLIFE, dtype={"uid": str})
    points["ts"] = pd.to_datetime(points["datetime"]).astype("datetime64[us]")
    points["day"] = points["ts"].dt.tz_localize("UTC").dt.tz_convert(TZ).dt.date
    return points.sort_values(["uid", "ts"]).reset_index(drop=True)


def test_geolife_pings_keep_their_timing_and_are_all_accounted_for(settings, feed_district, raw_redis, domain_config, capsys):
    now, days, limit = fixed_now(), 5, 12_000
    code, out, _ = run(settings, capsys, GEOLIFE, "--days", days, "--limit", limit, "--now", now.isoformat())
    assert code == 0 and out.startswith(f"published {limit}: geolife ") and len(out.strip().splitlines()) == 1
    pings = pd.DataFrame(stream(raw_redis, KEYS.patrol_gps))
    assert len(pings) == limit and set(pings.columns) == {"worker", "ts", "lat", "lon"}
    pings["moment"] = pd.to_datetime(pings["ts"], format="ISO8601", utc=True)
    assert pings["ts"].str.endswith("+08:00").all()
    assert pings["moment"].max() <= pd.Timestamp(now) and pings["moment"].min() > pd.Timestamp(now) - pd.Timedelta(days=days + 1)
    assert pings["moment"].is_monotonic_increasing

    # Who and where: each device drives a real worker; each day starts on the worker's grid centroid (WGS-84).
    with feed_district.connect() as connection:
        staff = pd.DataFrame(connection.execute(
            select(schema.workers.c.id, schema.workers.c.role, schema.grids.c.centroid_lat, schema.grids.c.centroid_lon)
            .select_from(schema.workers.join(schema.grids, schema.grids.c.code == schema.workers.c.grid))
        ).all(), columns=["id", "role", "lat", "lon"]).set_index("id")
    raw = raw_geolife()
    assignment = replay_geolife.assign_workers(raw["uid"].unique(), staff.index[staff["role"] == "worker"])
    assert set(pings["worker"]) <= set(assignment.values())
    for uid, worker in assignment.items():
        mine = pings[pings["worker"] == worker].reset_index(drop=True)
        recorded = raw[(raw["uid"] == uid) & raw["day"].isin(sorted(raw.loc[raw["uid"] == uid, "day"].unique())[-days:])].reset_index(drop=True)
        assert 0 < len(mine) <= len(recorded)
        recorded = recorded.head(len(mine))  # --limit keeps the earliest pings: a prefix of each device
        shift = mine["moment"].dt.tz_localize(None) - recorded["ts"]
        assert (shift % pd.Timedelta(days=1) == pd.Timedelta(0)).all()  # whole days: time of day kept
        assert (shift.groupby(recorded["day"]).nunique() == 1).all()  # one shift per recorded day: intervals kept
        new_days = sorted(set(mine["moment"].dt.tz_convert(TZ).dt.date))
        assert all((b - a).days == 1 for a, b in zip(new_days, new_days[1:]))  # recorded days end up consecutive
        lat = mine["lat"].astype(float).to_numpy()
        lon = mine["lon"].astype(float).to_numpy()
        centroid = gcj02_to_wgs84(staff.loc[worker, "lat"], staff.loc[worker, "lon"])
        local_day = mine["moment"].dt.tz_convert(TZ).dt.date
        firsts = mine.groupby(local_day).head(1).index
        for index in firsts:
            assert (lat[index], lon[index]) == pytest.approx(centroid, abs=1e-6)
        same_day = (local_day == local_day.shift()).to_numpy()[1:]
        walked = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])[same_day]
        recorded_walk = haversine_m(recorded["lat"].to_numpy()[:-1], recorded["lng"].to_numpy()[:-1], recorded["lat"].to_numpy()[1:], recorded["lng"].to_numpy()[1:])[same_day]
        assert walked.sum() == pytest.approx(recorded_walk.sum(), rel=0.01)

    ingest = make_ingest(feed_district, raw_redis, domain_config)
    totals = drain(ingest, rounds=100)
    letters = stream(raw_redis, KEYS.dead_letter)
    assert totals["applied"] + totals["late"] + totals["dead"] == limit == len(letters) + totals["applied"] + totals["late"]
    assert {letter["dlq_reason"] for letter in letters} <= {"out_of_district"} and {letter["dlq_stream"] for letter in letters} <= {KEYS.patrol_gps}
    assert raw_redis.xpending(KEYS.patrol_gps, "gridops-ingest")["pending"] == 0

    # Independent: which pings fall in the district, and the patrol time they make with the 300 s gap rule.
    district = shapely.union_all(list(grid_polygons(feed_district).values()))
    gcj_lat, gcj_lon = wgs84_to_gcj02(pings["lat"].astype(float).to_numpy(), pings["lon"].astype(float).to_numpy())
    inside = pings[shapely.contains_xy(district, gcj_lon, gcj_lat)].sort_values(["worker", "moment"])
    assert totals["applied"] == len(inside) > 1000 and totals["dead"] == limit - len(inside)
    day = inside["moment"].dt.tz_convert(TZ).dt.date
    gap = inside["moment"].diff().dt.total_seconds()
    counted = (inside["worker"] == inside["worker"].shift()) & (day == day.shift()) & (gap > 0) & (gap <= SEGMENT_GAP_S)
    with feed_district.connect() as connection:
        stored = pd.DataFrame(connection.execute(select(schema.patrol_days)).mappings().all())
        latest_point = connection.execute(select(func.max(schema.patrol_points.c.ts))).scalar()
        kept = connection.execute(select(func.count()).select_from(schema.patrol_points)).scalar()
    assert stored["seconds"].sum() == pytest.approx(gap[counted].sum(), abs=1e-3)
    assert stored["seconds"].sum() > 3600
    assert stored["points"].sum() == len(inside) and 0 < kept < len(inside)
    assert set(stored["worker"]) == set(inside["worker"])
    assert pd.Timestamp(latest_point) <= pd.Timestamp(now.replace(tzinfo=None))


# ================================================================ (c, d) LA 311 through the consumer


def expected_la(now: datetime) -> pd.DataFrame:
    """Per request, computed from the CSV alone: moved times, what must have happened by now, the department."""
    frame = read_la_csv()
    now_local = now.astimezone(TZ).replace(tzinfo=None)
    weeks = math.floor((now_local - frame["created"].max()) / timedelta(weeks=1))
    moved = pd.Timedelta(weeks=weeks)
    frame["reported_at"] = frame["created"] + moved
    frame["closed_at"] = frame["closed"] + moved
    close_ok = frame["closed"].notna() & (frame["closed"] >= frame["created"])
    span = (frame["closed"] - frame["created"]).where(close_ok)
    register = (span / 4).clip(upper=pd.Timedelta(minutes=3)).fillna(pd.Timedelta(minutes=3))
    dispatch = (span / 2).clip(upper=pd.Timedelta(minutes=8)).fillna(pd.Timedelta(minutes=8))
    frame["registered"] = frame["reported_at"] + register <= now_local
    frame["dispatched"] = frame["reported_at"] + dispatch <= now_local
    frame["closes"] = close_ok & (frame["closed_at"] <= now_local)
    frame["dept"] = frame["agency_code"].map(replay_la311.AGENCY_DEPT)
    frame.loc[frame["type_name"] == "Homeless Encampment", "dept"] = "MZJ"
    frame["case_id"] = "la311-" + frame["srnumber"]
    frame.attrs["weeks"] = weeks
    return frame


def stored_cases(engine) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(select(schema.cases).order_by(schema.cases.c.id)).mappings().all())


def test_la311_replay_matches_the_csv_and_a_second_replay_changes_nothing(settings, feed_district, raw_redis, domain_config, capsys):
    now = fixed_now()
    code, out, _ = run(settings, capsys, LA_FILE, "--now", now.isoformat())
    assert code == 0 and len(out.strip().splitlines()) == 1
    published = raw_redis.xlen(KEYS.case_events)
    assert out.startswith(f"published {published}: la311 service_requests.csv: {LA_REQUESTS} requests")
    ingest = make_ingest(feed_district, raw_redis, domain_config)
    totals = drain(ingest, rounds=200)
    assert raw_redis.xlen(KEYS.dead_letter) == 0 and totals["dead"] == 0
    assert totals["applied"] == published and totals["parked"] == 0

    expected = expected_la(now)
    assert len(expected) == LA_REQUESTS
    assert f"moved {expected.attrs['weeks']:+d} weeks" in out
    cases = stored_cases(feed_district)
    assert len(cases) == LA_REQUESTS and set(cases["id"]) == set(expected["case_id"])
    cases = cases.set_index("id").loc[expected["case_id"]]
    reported_local = pd.to_datetime(cases["reported_at"]).dt.tz_localize("UTC").dt.tz_convert(TZ).dt.tz_localize(None)
    assert (reported_local.to_numpy() == expected["reported_at"].to_numpy()).all()
    # weekday and hour-of-day rhythm kept; every report in the past
    assert (reported_local.dt.day_of_week.to_numpy() == expected["created"].dt.day_of_week.to_numpy()).all()
    assert (reported_local.dt.hour.to_numpy() == expected["created"].dt.hour.to_numpy()).all()
    assert reported_local.max() <= now.astimezone(TZ).replace(tzinfo=None) < reported_local.max() + pd.Timedelta(weeks=1)

    closes = expected["closes"].to_numpy()
    assert (cases["closed_at"].notna().to_numpy() == closes).all()
    assert (cases["registered_at"].notna().to_numpy() == expected["registered"].to_numpy()).all()
    assert (cases["dispatched_at"].notna().to_numpy() == expected["dispatched"].to_numpy()).all()
    # The rows the CSV says cannot close (no close, close before report, close still ahead) are exactly the open ones.
    never = expected["closed"].isna()
    backwards = expected["closed"] < expected["created"]
    ahead = ~never & ~backwards & ~expected["closes"]
    assert int(never.sum()) == 43 and int(backwards.sum()) == 0
    assert int(cases["is_open"].sum()) == int((never | backwards | ahead).sum()) == LA_REQUESTS - int(closes.sum())
    assert (cases["is_open"].to_numpy() == (never | backwards | ahead).to_numpy()).all()
    assert (cases["status"][closes] == "closed").all() and (cases["source"] != "").all()

    # Department by agency (per-department dispatch counts equal the CSV's per-agency counts under the mapping).
    dispatched = expected[expected["dispatched"]]
    assert cases.loc[dispatched["case_id"], "dept"].value_counts().to_dict() == dispatched["dept"].value_counts().to_dict()
    per_agency = dispatched[dispatched["type_name"] != "Homeless Encampment"].groupby("agency_code").size()
    from_agencies = per_agency.groupby(per_agency.index.map(replay_la311.AGENCY_DEPT)).sum()
    from_agencies["MZJ"] = from_agencies.get("MZJ", 0) + int((dispatched["type_name"] == "Homeless Encampment").sum())
    assert from_agencies.to_dict() == dispatched["dept"].value_counts().to_dict()

    # The same numbers through the indicators the screens and /api/indicators use.
    district = root_grid(feed_district)
    start = (expected["reported_at"].min() - pd.Timedelta(hours=1)).tz_localize(TZ).to_pydatetime()
    window = Window.until_now(start, now + timedelta(minutes=1), utc_now())
    values = area_reports.area_indicators(feed_district, domain_config, district, window, CaseFilter(), EVERYTHING).values
    assert values["reported"] == LA_REQUESTS
    assert values["registered"] == int(expected["registered"].sum())
    assert values["dispatched"] == int(expected["dispatched"].sum())
    assert values["closed"] == int(closes.sum())
    assert values["invalid"] == 0 and values["in_progress"] == LA_REQUESTS - int(closes.sum())
    by_dept = area_reports.table_by(feed_district, district, window, "dept", CaseFilter(), EVERYTHING).set_index("dept")["dispatched"].loc[lambda s: s > 0]
    assert by_dept.to_dict() == dispatched["dept"].value_counts().to_dict()

    # (d) The same file again: every event is a duplicate and nothing changes.
    before = stored_cases(feed_district)
    with feed_district.connect() as connection:
        events_before = connection.execute(select(func.count()).select_from(schema.case_events)).scalar()
    code, out, _ = run(settings, capsys, LA_FILE, "--now", now.isoformat())
    assert code == 0 and out.startswith(f"published {published}: ")
    totals = drain(ingest, rounds=200)
    assert totals["duplicates"] == published and totals["applied"] == 0 and totals["dead"] == 0
    assert stored_cases(feed_district).equals(before)
    with feed_district.connect() as connection:
        assert connection.execute(select(func.count()).select_from(schema.case_events)).scalar() == events_before == published
    assert raw_redis.xlen(KEYS.dead_letter) == 0


def test_a_limited_la_replay_keeps_the_times_of_the_whole_file(settings, feed_district, raw_redis, capsys):
    now = fixed_now()
    code, full, _ = run(settings, capsys, LA_FILE, "--now", now.isoformat(), "--dry-run", "--show", "-1")
    code_limited, limited, _ = run(settings, capsys, LA_FILE, "--now", now.isoformat(), "--dry-run", "--show", "-1", "--limit", "50")
    assert code == code_limited == 0
    everything = {json.loads(line.split(" ", 1)[1])["event_id"]: line for line in full.splitlines()[:-1]}
    some = limited.splitlines()[:-1]
    assert len({json.loads(line.split(" ", 1)[1])["case_id"] for line in some}) == 50
    assert all(everything[json.loads(line.split(" ", 1)[1])["event_id"]] == line for line in some)
    assert raw_redis.xlen(KEYS.case_events) == 0  # a dry run publishes nothing


# ================================================================ errors in process


@pytest.mark.parametrize("argv, message", [
    (["--days", "400"], "--days 400 must be between 1 and 89"),
    (["--now", "2999-01-01T00:00:00+08:00"], "is in the future"),
    (["--now", "yesterday"], "is not ISO 8601"),
    (["--pace", "-1"], "--pace -1.0 must be 0 or positive"),
    (["--limit", "0"], "--limit 0 must be at least 1"),
])
def test_bad_options_are_one_line(settings, capsys, argv, message):
    code, out, err = run(settings, capsys, GEOLIFE, *argv)
    assert code == 2 and out == "" and err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_a_district_without_workers_is_told_what_to_import(settings, small_district, capsys):
    code, _, err = run(settings, capsys, GEOLIFE, "--dry-run")
    assert code == 2 and "no grid workers" in err and "import-workers" in err


def test_a_bad_geolife_row_names_its_line_and_field(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("lat,lng,datetime,uid\n39.9,116.3,2008-10-23 05:53:05,001\n\n39.9,east,2008-10-23 05:53:06,001\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"line 4, field 'lng': 'east' is not a longitude"):
        replay_geolife.read_geolife(path)


# ================================================================ (e) the command line


def run_app(tmp_path: Path, *args, **env_overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("GRIDOPS_")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'grid.db'}", GRIDOPS_VAR_DIR=str(tmp_path / "var"), REDIS_URL="redis://127.0.0.1:1/0")
    env.update(env_overrides)
    return subprocess.run([sys.executable, "app.py", *map(str, args)], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


def dump_db(path: Path) -> dict:
    with sqlite3.connect(path) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {table: sorted(map(repr, connection.execute(f'SELECT * FROM "{table}"'))) for table in tables}


@pytest.fixture
def cli_district(tmp_path):
    """The feed district in a SQLite file at tmp_path/grid.db, for the subprocess."""
    from data_feeds.db import init_db, make_engine
    from data_feeds.importers.catalogue import import_catalogue
    from data_feeds.importers.departments import import_departments
    from data_feeds.importers.grids import SubdivideOptions, import_grids
    from data_feeds.importers.workers import import_workers

    engine = make_engine(f"sqlite:///{tmp_path / 'grid.db'}")
    init_db(engine)
    import_departments(engine, PACKAGE_DATA / "departments.csv")
    import_catalogue(engine, PACKAGE_DATA / "catalogue.csv")
    import_grids(engine, TEST_DATA / "boundaries" / "310107.geojson", SubdivideOptions(PACKAGE_DATA / "towns.csv", communities=8, grids=24, seed=7))
    with engine.connect() as connection:
        grids = connection.execute(select(schema.grids.c.code).where(schema.grids.c.level == 4).order_by(schema.grids.c.code)).scalars().all()
    staff = tmp_path / "workers.csv"
    staff.write_text("id,name,grid,role\n" + "".join(f"W{n:04d},网格员{n},{code},worker\n" for n, code in enumerate(grids, 1)), encoding="utf-8")
    import_workers(engine, staff)
    engine.dispose()
    return tmp_path / "grid.db"


def test_cli_dry_runs_print_messages_and_counts_without_redis(tmp_path, cli_district):
    before = dump_db(cli_district)
    result = run_app(tmp_path, "replay", LA_FILE, "--dry-run", "--show", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("gridops:case-events {") for line in lines[:3])
    assert json.loads(lines[0].split(" ", 1)[1])["action"] == "report"
    assert lines[-1].startswith(f"dry run, nothing published: la311 service_requests.csv: {LA_REQUESTS} requests → ")
    gps = run_app(tmp_path, "replay", GEOLIFE, "--dry-run", "--show", "0", "--days", "1")
    assert gps.returncode == 0, gps.stderr
    assert gps.stdout.startswith("dry run, nothing published: geolife geolife_sample.txt.gz: 2 devices (001→W") and len(gps.stdout.splitlines()) == 1
    assert dump_db(cli_district) == before


def test_cli_publishes_and_never_writes_the_database(tmp_path, cli_district, redis_url, raw_redis):
    before = dump_db(cli_district)
    result = run_app(tmp_path, "replay", GEOLIFE, "--days", "1", "--limit", "500", REDIS_URL=redis_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("published 500: geolife ") and len(result.stdout.splitlines()) == 1
    assert raw_redis.xlen(KEYS.patrol_gps) == 500
    prefixed = run_app(tmp_path, "replay", LA_FILE, "--limit", "10", REDIS_URL=redis_url, GRIDOPS_PREFIX="other:")
    assert prefixed.returncode == 0, prefixed.stderr
    assert raw_redis.xlen("other:case-events") == int(prefixed.stdout.split()[1].rstrip(":")) >= 30
    assert dump_db(cli_district) == before


def test_cli_bad_files_are_one_line_errors(tmp_path, cli_district):
    folder = tmp_path / "la"
    folder.mkdir()
    for name in ("types.csv", "agencies.csv", "sources.csv"):
        shutil.copy(LA_DIR / name, folder / name)
    lines = LA_FILE.read_text(encoding="utf-8").splitlines(keepends=True)
    bad_la = folder / "service_requests.csv"
    bad_la.write_text("".join(lines[:6]) + lines[6].replace("2020-01-01", "2020-13-45", 1) + "".join(lines[7:20]), encoding="utf-8")
    error = one_error_line(run_app(tmp_path, "replay", bad_la))
    assert str(bad_la) in error and "line 7" in error and "'created_date'" in error and "2020-13-45" in error

    bad_gps = tmp_path / "bad.txt.gz"
    with gzip.open(bad_gps, "wt", encoding="utf-8") as handle:
        handle.write("lat,lng,datetime,uid\n39.9,116.3,2008-10-23 05:53:05,001\n91.5,116.3,2008-10-23 05:53:06,001\n")
    error = one_error_line(run_app(tmp_path, "replay", bad_gps, "--dry-run"))
    assert str(bad_gps) in error and "line 3" in error and "'lat'" in error

    unknown = tmp_path / "unknown.csv"
    unknown.write_text("code,name\nA,B\n", encoding="utf-8")
    error = one_error_line(run_app(tmp_path, "replay", unknown))
    assert "line 1" in error and "unrecognised header" in error

    alone = tmp_path / "alone" / "service_requests.csv"
    alone.parent.mkdir()
    shutil.copy(LA_FILE, alone)
    error = one_error_line(run_app(tmp_path, "replay", alone))
    assert "types.csv" in error and "missing" in error

    assert "no such file" in one_error_line(run_app(tmp_path, "replay", tmp_path / "nope.csv"))
    assert "no grid database" in one_error_line(run_app(tmp_path, "replay", LA_FILE, DATABASE_URL=f"sqlite:///{tmp_path / 'none.db'}"))
    assert not (tmp_path / "none.db").exists()


def test_cli_help_names_the_options(tmp_path):
    result = run_app(tmp_path, "replay", "--help")
    assert result.returncode == 0
    for option in ("--pace", "--limit", "--days", "--dry-run", "--now"):
        assert option in result.stdout
