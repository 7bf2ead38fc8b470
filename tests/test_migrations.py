"""The schema's revisions: a database made by the previous release, with data in it, is
brought to the current schema by ``migrate`` without losing anything."""
from __future__ import annotations

from sqlalchemy import func, inspect, select, text

from data_feeds import migrations, schema
from data_feeds.db import init_db, make_engine, to_db_time
from tests.support import utc
from tests.test_cli import ok, run_app

# What the release before migrations lacked (revision 0002).
ADDED_CASE_COLUMNS = ("supervised_at", "supervise_count", "redispatch_count", "decline_count", "extension_count")


def make_previous_release(engine) -> None:
    """The schema as the previous release's init-db left it (no alembic_version), with a case in it."""
    with engine.begin() as connection:
        schema.metadata.create_all(connection)
        connection.execute(text("DROP TABLE case_rollups"))  # revision 0003
        for column in ADDED_CASE_COLUMNS:
            connection.execute(text(f"ALTER TABLE cases DROP COLUMN {column}"))
        connection.execute(schema.meta.insert().values(key="schema_version", value="1"))
        connection.execute(schema.grids.insert().values(code="G1", name="网格一", level=4, path="/G1/"))
        connection.execute(schema.departments.insert().values(code="D1", name="城管"))
        connection.execute(schema.categories.insert().values(code="C1", name="占道", level=1, dept="D1", grade="B", handle_limit="3wd"))
        moment = to_db_time(utc(2026, 11, 30, 2, 0))
        connection.execute(text(
            "INSERT INTO cases (id, status, grid, category, dept, grade, source, reported_at, updated_at, rework_count, self_handled, is_open) "
            "VALUES ('K1', 'dispatched', 'G1', 'C1', 'D1', 'B', 'patrol', :t, :t, 1, :no, :yes)"), {"t": moment, "no": False, "yes": True})
        connection.execute(schema.case_events.insert().values(
            event_id="e1", case_id="K1", action="report", ts=moment, actor="w", to_status="reported", received_at=moment))


def test_a_database_of_the_previous_release_migrates_with_its_data(database_url):
    engine = make_engine(database_url)
    try:
        make_previous_release(engine)
        assert "supervise_count" not in {c["name"] for c in inspect(engine).get_columns("cases")}
        init_db(engine)
        init_db(engine)  # and again: nothing left to do
        with engine.connect() as connection:
            assert migrations.current(connection) == migrations.head()
            case = connection.execute(select(schema.cases).where(schema.cases.c.id == "K1")).mappings().one()
            assert (case["status"], case["rework_count"], case["dept"]) == ("dispatched", 1, "D1")
            assert [case[name] for name in ADDED_CASE_COLUMNS] == [None, 0, 0, 0, 0]
            assert connection.execute(select(func.count()).select_from(schema.case_events)).scalar() == 1
            differences = migrations.differences(connection)
        assert differences == []
    finally:
        engine.dispose()


def test_a_new_database_is_created_at_the_newest_revision_like_a_migrated_one(database_url):
    engine = make_engine(database_url)
    try:
        init_db(engine)
        with engine.connect() as connection:
            assert migrations.current(connection) == migrations.head()
            assert migrations.differences(connection) == []
    finally:
        engine.dispose()


def test_migrate_command_reports_the_revisions(database_url, tmp_path):
    engine = make_engine(database_url)
    try:
        make_previous_release(engine)
    finally:
        engine.dispose()
    result = ok(run_app(tmp_path, "migrate", DATABASE_URL=database_url))
    assert f"database at schema revision {migrations.head()} (was unversioned)" in result.stdout
    assert "case rollups built from the cases" in result.stdout  # the previous release had none: counted at once
    with make_engine(database_url).connect() as connection:
        assert connection.execute(select(func.sum(schema.case_rollups.c.reported)).where(
            schema.case_rollups.c.area == "G1", schema.case_rollups.c.grouping == "all", schema.case_rollups.c.period_kind == "D")).scalar() == 1


def test_rebuild_rollups_command(database_url, tmp_path):
    engine = make_engine(database_url)
    try:
        make_previous_release(engine)
    finally:
        engine.dispose()
    result = ok(run_app(tmp_path, "rebuild-rollups", "--from", "2026-11-17", DATABASE_URL=database_url))
    assert "case rollups rebuilt from 2026-11-01: 1 cases counted" in result.stdout
    refused = run_app(tmp_path, "rebuild-rollups", "--from", "17/11/2026<script>", DATABASE_URL=database_url)
    assert refused.returncode == 2 and "is not a date (YYYY-MM-DD)" in refused.stderr
