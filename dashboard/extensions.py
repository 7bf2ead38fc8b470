"""Extensions created unbound here and bound to the server by the app factory."""
from flask_caching import Cache
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

cache = Cache()
# Limits are declared on the views that need them (the login page); storage is Redis.
limiter = Limiter(key_func=get_remote_address, default_limits=[], strategy="fixed-window")
