"""WSGI entry for gunicorn: ``gunicorn -k gthread --threads 8 -w 4 'wsgi:server'``.

Settings come from the environment; ``REDIS_URL`` (or ``REDIS_SENTINELS``) must be set: no
embedded Redis server is started here.
"""
from app import create_app

server = create_app().server
