"""The per-application context: settings, domain configuration, database engines, Redis client.

Held in ``server.extensions`` by the factory, never in module globals, so several apps
(tests) and several workers never share mutable state.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app
from sqlalchemy.engine import Engine

from dashboard.admission import Admission
from dashboard.change_hub import ChangeHub
from dashboard.settings import Settings
from gridrules.config import DomainConfig

EXTENSION_KEY = "gridops"


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    config: DomainConfig
    engine: Engine  # the primary: sign-in, accounts, the audit log, everything written
    redis: redis.Redis
    reader: Engine  # what the screens and the API read: DATABASE_READ_URL's replica, else the primary
    changes: ChangeHub  # the change stream's batches, read once per process for every open stream
    admission: Admission  # how many requests of this worker work at once


def current_context() -> AppContext:
    """The context of the application handling the current request."""
    return current_app.extensions[EXTENSION_KEY]
