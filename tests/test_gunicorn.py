"""The README's gunicorn command, as production runs it: several gevent workers against a real
Redis and PostgreSQL, more open walls than the old thread-per-stream limit (4 workers × 8
threads = 32), and every one of them hears a published case: plain SSE clients get its
signal, walls in headless Chromium show its pin.
"""
from __future__ import annotations

import re
import shlex
import threading
import uuid
from datetime import timedelta

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from data_feeds import schema
from gridrules.clock import utc_now
from tests.browser import app_process, chromium, running_server, sse_messages
from tests.feed_support import basic_grids, publish_case_events, report
from tests.support import PROJECT, TZ, wait_for
from tests.test_browser_wall import C_CATEGORY, case_feature_ids, open_wall

pytestmark = pytest.mark.browser
PLAIN_STREAMS = 40
WALLS = 3
DEADLINE_S = 120


def readme_gunicorn_options() -> tuple[str, ...]:
    """The options of the README's gunicorn command, without its address and application."""
    command = re.search(r"`(gunicorn -k [^`]+)`", (PROJECT / "README.md").read_text()).group(1)
    words = shlex.split(command)[1:]
    options, skip = [], False
    for word in words:
        if skip or word == "wsgi:server":
            skip = False
            continue
        if word == "-b":
            skip = True
            continue
        options.append(word)
    return tuple(options)


@pytest.mark.parametrize("demo_engine", ["postgresql"], indirect=True)
def test_the_readme_gunicorn_command_serves_more_walls_than_threads_and_each_hears_a_case(demo_engine, redis_base_url, redis_db, tmp_path):
    url = f"{redis_base_url}/{redis_db}"
    client = redis_lib.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    env = {"DATABASE_URL": demo_engine.url.render_as_string(hide_password=False), "REDIS_URL": url,
           "GRIDOPS_SIMULATE": "0", "GRIDOPS_AUTH": "off", "GRIDOPS_MAX_STREAMS": "200"}
    options = readme_gunicorn_options()
    assert "gevent" in options, options
    with demo_engine.connect() as connection:
        open_cases = connection.execute(select(func.count()).select_from(schema.cases).where(schema.cases.c.is_open.is_(True))).scalar()
    stop = threading.Event()
    received: list[list] = [[] for _ in range(PLAIN_STREAMS)]
    with app_process(["ingest", "--consumer", "gunicorn-test"], env, tmp_path / "ingest.log") as consumer:
        wait_for(lambda: client.hlen("gridops:live:open") >= open_cases or consumer.poll() is not None, timeout_s=DEADLINE_S)
        assert consumer.poll() is None, "the consumer exited"
        with running_server(env, log_path=tmp_path / "gunicorn.log", gunicorn=options, timeout_s=120) as base, chromium() as browser:
            readers = [threading.Thread(target=sse_messages, args=(f"{base}/stream/changes", into, stop), daemon=True) for into in received]
            for reader in readers:
                reader.start()
            context = browser.new_context(viewport={"width": 1920, "height": 1080})
            walls = [open_wall(context, base) for _ in range(WALLS)]
            try:
                wait_for(lambda: all(any("hb" in m for m in into) for into in received), timeout_s=DEADLINE_S, every_s=0.2,
                         what=lambda: f"a heartbeat on every stream (on {sum(any('hb' in m for m in into) for into in received)} of {PLAIN_STREAMS})")
                case = f"GU{uuid.uuid4().hex[:10].upper()}"
                signalled = [len(into) for into in received]
                grid = basic_grids(demo_engine)[3]
                publish_case_events(client, [report(case, utc_now().astimezone(TZ) - timedelta(seconds=2), grid, C_CATEGORY, source="hotline")])
                wait_for(lambda: all(any("seq" in m for m in into[n:]) for into, n in zip(received, signalled, strict=True)), timeout_s=DEADLINE_S, every_s=0.2,
                         what=lambda: f"the case's signal on every stream (on {sum(any('seq' in m for m in into[n:]) for into, n in zip(received, signalled, strict=True))})")
                for page in walls:
                    wait_for(lambda: case in case_feature_ids(page), timeout_s=DEADLINE_S, every_s=0.2, what="the case on a wall")  # noqa: B023 - awaited here
            finally:
                stop.set()
                context.close()
    client.close()

