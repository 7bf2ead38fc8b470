"""Component IDs, defined once and prefixed by screen."""


class App:
    URL = "app-url"
    PAGE = "app-page"


class Home:
    TILES = "home-tiles"
    MAP = "home-map"
    GRIDS = "home-grids"
    OUTLINE = "home-outline"
    REFRESH = "home-refresh"
    UPDATED = "home-updated"
    STATE = "home-state"  # area and language of the page, for the refresh callback


def kpi(name: str) -> dict:
    """Pattern-matching ID of an indicator tile."""
    return {"type": "kpi", "name": name}
