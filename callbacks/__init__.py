"""Callbacks, one module per screen, each with ``register(app)``; ``register_all`` registers them all."""
from __future__ import annotations


def register_all(app) -> None:
    """Every screen's callbacks, the router first."""
    from callbacks import admin, home, review, router, wall, weekly

    for screen in (router, home, admin, wall, review, weekly):
        screen.register(app)
