"""WSGI entry for gunicorn: ``gunicorn -k gevent --worker-connections 2000 -w 4 'wsgi:server'`` (README, "Serving").

Settings come from the environment; ``REDIS_URL`` (or ``REDIS_SENTINELS``) must be set: no
embedded Redis server is started here.
"""
from app import create_app

server = create_app().server
