"""Schema set-up run by several processes at once, as when consumers and dashboard workers start together."""
from __future__ import annotations

import threading

from sqlalchemy import func, inspect, select

from data_feeds import migrations, schema
from data_feeds.db import init_db, make_engine

STARTERS = 6


def start_together(database_url: str) -> list[BaseException]:
    """``init_db`` from STARTERS threads released at the same moment, each with its own engine."""
    engines = [make_engine(database_url) for _ in range(STARTERS)]
    barrier = threading.Barrier(STARTERS)
    errors: list[BaseException] = []

    def start(engine):
        barrier.wait()
        try:
            init_db(engine)
        except BaseException as error:  # noqa: BLE001 - every failure is the finding
            errors.append(error)

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for engine in engines:
        engine.dispose()
    return errors


def test_init_db_from_several_processes_at_once(database_url):
    assert start_together(database_url) == []  # on an empty database
    assert start_together(database_url) == []  # and on a ready one, which redefines the audit triggers
    engine = make_engine(database_url)
    try:
        assert set(schema.metadata.tables) <= set(inspect(engine).get_table_names())
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(schema.meta).where(schema.meta.c.key == "created_at")).scalar() == 1
            assert migrations.current(connection) == migrations.head()
    finally:
        engine.dispose()
