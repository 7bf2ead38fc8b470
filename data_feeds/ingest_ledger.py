"""The ingest ledger: what each committed batch came to, message by message.

The consumer commits a batch to the database and then, in one Redis transaction, writes its
dead letters, acknowledges it and counts it. A crash between the two leaves the batch
committed but pending. Whoever reads those messages again (the same consumer after a
restart, another one by XAUTOCLAIM) finds their outcome here and finishes them as what they
were — applied, parked, late, dead — instead of processing them again and counting them as
duplicates. Rows are written in the batch's own transaction, so they exist exactly when
the batch does.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from data_feeds import db, schema

OUTCOMES = ("applied", "duplicates", "parked", "late")
KEEP = timedelta(days=1)  # a message left pending longer than this is re-processed instead


@dataclass
class Entry:
    """The recorded outcome of one message: the OUTCOMES it counted in (a message parked and
    applied in the same batch counts in both), or dead with its reason."""

    row_id: int
    outcomes: list
    dead: tuple | None = None  # (reason, detail, field)


def record(connection, stream: str, consumer: str, by_outcome: dict[str, list[str]], dead: list[tuple], now: datetime) -> int:
    """Write the outcome of a batch in the caller's transaction; returns the row id.

    ``by_outcome``: outcome name → message ids; ``dead``: (message id, reason, detail, field)."""
    body = {name: list(by_outcome.get(name, ())) for name in OUTCOMES}
    body["dead"] = [list(item) for item in dead]
    result = connection.execute(schema.ingest_ledger.insert().values(
        stream=stream, consumer=consumer, created_at=db.to_db_time(now), outcome=json.dumps(body, separators=(",", ":")),
    ))
    return int(result.inserted_primary_key[0])


def forget(connection, row_ids) -> None:
    """Delete rows whose batches are finished, in the caller's transaction."""
    ids = sorted(set(row_ids))
    for start in range(0, len(ids), 500):
        connection.execute(delete(schema.ingest_ledger).where(schema.ingest_ledger.c.id.in_(ids[start : start + 500])))


def lookup(connection, stream: str, message_ids) -> tuple[dict[str, Entry], set[int]]:
    """The recorded outcomes of ``message_ids`` of ``stream``, and the rows wholly covered by them."""
    wanted = set(message_ids)
    found: dict[str, Entry] = {}
    covered = set()
    rows = connection.execute(select(schema.ingest_ledger.c.id, schema.ingest_ledger.c.outcome).where(schema.ingest_ledger.c.stream == stream))
    for row_id, text in rows:
        body = json.loads(text)
        entries: dict[str, Entry] = {}
        for name in OUTCOMES:
            for message_id in body.get(name, ()):
                entries.setdefault(message_id, Entry(row_id, [])).outcomes.append(name)
        for message_id, *dead in body.get("dead", ()):
            entries.setdefault(message_id, Entry(row_id, [])).dead = tuple(dead)
        mine = wanted.intersection(entries)
        found.update({message_id: entries[message_id] for message_id in mine})
        if mine and len(mine) == len(entries):
            covered.add(row_id)
    return found, covered


def prune(connection, now: datetime) -> int:
    """Delete rows older than KEEP (left by crashes); returns how many."""
    result = connection.execute(delete(schema.ingest_ledger).where(schema.ingest_ledger.c.created_at < db.to_db_time(now - KEEP)))
    return int(result.rowcount or 0)
