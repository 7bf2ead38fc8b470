"""Change streams (/stream/changes) are capped per caller and end with their sign-in.

Streams are read through Flask's test client without buffering, chunk by chunk, with the
heartbeat shortened; a stream that must end is read until it does, within a generous
deadline (never a fixed sleep).
"""
from __future__ import annotations

import threading
import time

import pytest

from app import create_app
from dashboard import push, sessions, stream_slots
from dashboard.settings import Settings
from data_feeds import accounts
from data_feeds.keys import Keys
from tests.dash_support import same_site_client
from tests.support import wait_for

PASSWORD = "correct-horse-7"
CAP = 3
DEADLINE_S = 30.0


@pytest.fixture
def app(engine, redis_url, tmp_path, monkeypatch):
    monkeypatch.setattr(push, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(push, "RECHECK_S", 0.2)
    accounts.create_user(engine, "duty", "operator", PASSWORD, actor="test")
    accounts.create_user(engine, "screen", "wall", None, actor="test")
    url = engine.url.render_as_string(hide_password=False)
    return create_app(Settings(database_url=url, redis_url=redis_url, var_dir=tmp_path, auth=True, max_streams=CAP))


def signed_in(app, name: str = "duty"):
    client = same_site_client(app)
    assert client.post("/login", data={"name": name, "password": PASSWORD}).status_code == 302
    return client


def kiosk(app, engine):
    """A wall's browser signed in with a fresh kiosk token; the client and the token's id."""
    token = accounts.create_token(engine, "screen", actor="test")
    client = same_site_client(app)
    assert client.get(f"/kiosk?token={token}").status_code == 302
    return client, accounts.user_for_token(engine, token)[1]


def open_stream(client, **kwargs):
    """A change stream, opened and read up to its first chunk (the server has taken its slot)."""
    response = client.get("/stream/changes", buffered=False, **kwargs)
    if response.status_code == 200:
        chunks = response.response if hasattr(response.response, "__next__") else iter(response.response)
        response.chunks = chunks
        assert next(chunks).startswith(b"retry:")
    return response


def read_until_it_ends(response) -> list[bytes]:
    """Every chunk until the stream ends; fails when it runs past the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    seen = []
    for chunk in response.chunks:  # a chunk at least every heartbeat (0.2 s here)
        seen.append(chunk)
        assert time.monotonic() < deadline, f"the stream went on for {DEADLINE_S} s: {seen[-3:]}"
    return seen


def test_a_caller_beyond_the_cap_is_refused_with_429_and_others_are_not(app, engine):
    client = signed_in(app)
    streams = [open_stream(client) for _ in range(CAP)]
    assert [s.status_code for s in streams] == [200] * CAP
    refused = open_stream(client)
    assert refused.status_code == 429
    assert f"at most {CAP} at once" in refused.get_json()["error"]
    # the cap is per caller: another user, and a wall's token, still get theirs
    assert open_stream(signed_in(app)).status_code == 429  # the same user from another browser
    wall, _ = kiosk(app, engine)
    assert open_stream(wall).status_code == 200
    for stream in streams:
        stream.close()


def test_a_closed_stream_frees_its_slot(app):
    client = signed_in(app)
    streams = [open_stream(client) for _ in range(CAP)]
    assert open_stream(client).status_code == 429
    streams[0].close()
    again = open_stream(client)
    assert again.status_code == 200
    for stream in [*streams[1:], again]:
        stream.close()


def test_the_slot_of_a_stream_whose_worker_died_lapses(app, redis_client, monkeypatch):
    """A worker killed mid-stream never closes it: its slot lapses once no heartbeat renews it."""
    monkeypatch.setattr(stream_slots, "SLOT_TTL_S", 1)
    client = signed_in(app)
    keys = Keys("gridops:")
    user_id = accounts.get_user(app.server.extensions["gridops"].engine, "duty").id
    for _ in range(CAP):  # slots taken by streams of a worker that died (no heartbeat, no close)
        assert stream_slots.acquire(redis_client, keys, f"user:{user_id}", CAP, ttl_s=1)
    assert open_stream(client).status_code == 429
    deadline = time.monotonic() + DEADLINE_S
    while (response := open_stream(client)).status_code != 200:
        assert time.monotonic() < deadline, "the dead streams' slots never lapsed"
        time.sleep(0.1)
    response.close()


def test_revoking_a_kiosk_token_ends_its_open_stream(app, engine):
    wall, token_id = kiosk(app, engine)
    stream = open_stream(wall)
    assert stream.status_code == 200
    accounts.revoke_token(engine, token_id, actor="test")
    assert b": signed out\n\n" in read_until_it_ends(stream)
    stream.close()
    assert open_stream(wall).status_code == 401  # and no new one opens


def test_revoking_an_api_token_ends_its_open_stream(app, engine):
    token = accounts.create_token(engine, "duty", actor="test")
    headers = {"Authorization": f"Bearer {token}"}
    stream = open_stream(same_site_client(app), headers=headers)
    assert stream.status_code == 200
    accounts.revoke_token(engine, accounts.user_for_token(engine, token)[1], actor="test")
    assert b": signed out\n\n" in read_until_it_ends(stream)
    stream.close()
    assert same_site_client(app).get("/stream/changes", headers=headers).status_code == 401


def test_logging_out_ends_the_sessions_streams(app):
    client = signed_in(app)
    stream = open_stream(client)
    client.post("/logout")  # sign-out is a POST (a GET only shows the button)
    assert b": signed out\n\n" in read_until_it_ends(stream)
    stream.close()


def test_disabling_a_user_ends_their_streams(app, engine):
    client = signed_in(app)
    stream = open_stream(client)
    accounts.set_disabled(engine, "duty", True, actor="test")  # the database alone: the session itself lives on
    assert b": signed out\n\n" in read_until_it_ends(stream)
    stream.close()


def test_a_stream_of_a_live_sign_in_goes_on(app, redis_client):
    """The checks end nothing that still holds: many rechecks later the stream still beats."""
    client = signed_in(app)
    stream = open_stream(client)
    beats = 0
    for chunk in stream.chunks:
        beats += b'"hb"' in chunk
        if beats >= 10:  # ten heartbeats, five rechecks at least
            break
    assert beats >= 10
    session_id = client.get_cookie("gridops_session").value
    assert sessions.is_live(redis_client, Keys("gridops:"), session_id)
    stream.close()


def test_many_open_streams_share_one_reader_of_the_change_stream_and_each_hears_every_change(app, engine, redis_client):
    """Forty walls (more than a gthread worker's threads) in one process: one blocking read of
    the change stream between them, and a published change reaches every one."""
    walls = 40
    heard: dict[int, int] = {}
    beating: set[int] = set()
    stop = threading.Event()

    def watch(number: int, client) -> None:
        stream = open_stream(client)
        try:
            for chunk in stream.chunks:
                beating.add(number)
                if b'"seq"' in chunk:
                    heard[number] = heard.get(number, 0) + 1
                if stop.is_set():
                    return
        finally:
            stream.close()

    clients = [kiosk(app, engine)[0] for _ in range(walls)]
    threads = [threading.Thread(target=watch, args=(n, client), daemon=True) for n, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(beating) == walls, timeout_s=DEADLINE_S)
        db = redis_client.connection_pool.connection_kwargs.get("db", 0)
        readers = [c.get("name") for c in redis_client.client_list() if c.get("cmd") == "xread" and int(c.get("db", -1)) == db]
        hub = app.server.extensions["gridops"].changes.name
        assert readers.count(hub) == 1 and all(name.startswith("gridops-changes-") for name in readers), (hub, readers)

        def publish_until_all_heard() -> bool:
            redis_client.xadd(Keys("gridops:").changes, {"case_id": "C1", "kind": "case"})
            return len(heard) == walls

        wait_for(publish_until_all_heard, timeout_s=DEADLINE_S, every_s=0.3)
    finally:
        stop.set()
        redis_client.xadd(Keys("gridops:").changes, {"kind": "bye"})
        for thread in threads:
            thread.join(timeout=DEADLINE_S)
    assert not any(thread.is_alive() for thread in threads)
