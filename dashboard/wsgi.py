"""WSGI entry for gunicorn: ``gunicorn -k gthread --threads 8 'dashboard.wsgi:server'``.

Settings come from the environment; ``REDIS_URL`` must be set (no embedded server here).
"""
from dashboard import create_app

app = create_app()
server = app.server
