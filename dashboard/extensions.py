"""Extensions created unbound here and bound to the server by the app factory."""
from flask_caching import Cache

cache = Cache()
