"""Callbacks, one module per screen, each with ``register(app)`` called by the factory."""
