"""Component IDs, defined once and prefixed by screen."""


class App:
    URL = "app-url"
    PAGE = "app-page"
    NOTICE = "app-notice"  # why the page shows less than asked (callbacks/notices.py)
    RETRY = "app-retry"  # on a page that could not be built in an outage: loads it again


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


class Admin:
    USERS = "admin-users"
    TOKENS = "admin-tokens"
    NEW_NAME = "admin-new-name"
    NEW_ROLE = "admin-new-role"
    NEW_SCOPE = "admin-new-scope"
    NEW_DEPT = "admin-new-dept"
    NEW_PASSWORD = "admin-new-password"
    CREATE = "admin-create"
    MESSAGE = "admin-message"
    REFRESH = "admin-refresh"  # a counter bumped after every change, to redraw the tables
    AUDIT_TEXT = "admin-audit-text"
    AUDIT_ACTION = "admin-audit-action"
    AUDIT_START = "admin-audit-start"
    AUDIT_END = "admin-audit-end"
    AUDIT_SEARCH = "admin-audit-search"
    AUDIT_RESULTS = "admin-audit-results"


def user_action(action: str, name: str) -> dict:
    """Pattern-matching ID of a per-user button (disable, enable, password, token)."""
    return {"type": "admin-user-action", "action": action, "name": name}


def token_revoke(token_id: int) -> dict:
    return {"type": "admin-token-revoke", "token": token_id}


class Wall:
    ROOT = "wall-root"
    CLOCK = "wall-clock"
    HEALTH = "wall-health"
    STALE = "wall-stale"
    TILES = "wall-tiles"
    MAP = "wall-map"
    GRIDS = "wall-grids"
    TOWNS = "wall-towns"
    TRAILS = "wall-trails"
    WORKERS = "wall-workers"
    CASES = "wall-cases"
    GRID_INFO = "wall-grid-info"
    ATTENTION = "wall-attention"  # the banner of new danger (grade-A reports, grade-A cases fallen overdue)
    ATTENTION_KEYS = "wall-attention-keys"  # what the banner shows, which an acknowledgement names
    ACKNOWLEDGE = "wall-acknowledge"
    BOARD = "wall-board"
    FOCUS = "wall-focus"  # the outline of the town the rotation shows
    LEGEND = "wall-legend"
    TICKER = "wall-ticker"
    TREND = "wall-trend"
    CATEGORIES = "wall-categories"
    SOURCES = "wall-sources"
    OVERDUE_VIEW = "wall-overdue-view"
    VIEW_TITLE = "wall-view-title"
    STREAM = "wall-stream"
    SIGNAL = "wall-signal"  # the stream's change signals, without its heartbeats
    STREAM_HEARD = "wall-stream-heard"  # when the stream last said anything (ms): a silent one is reopened
    PULL = "wall-pull"  # polling fallback
    TICK = "wall-tick"  # one second, in the browser: clock, ageing, staleness
    ROTATE = "wall-rotate"
    STATE = "wall-state"  # area, language, kiosk, rotation: fixed for the page
    CURSOR = "wall-cursor"
    DELTA = "wall-delta"
    VIEW = "wall-view"
    LAST_OK = "wall-last-ok"
    SCALE = "wall-scale"  # the screen's width / 1920, measured in the browser (charts scale with it)


class Review:
    BREADCRUMB = "review-breadcrumb"
    WINDOW = "review-window"
    DATES = "review-dates"
    CATEGORY = "review-category"
    GRADE = "review-grade"
    SOURCE = "review-source"
    DEPT = "review-dept"
    STAGE = "review-stage"
    TILES = "review-tiles"
    MAP = "review-map"
    AREAS = "review-areas"
    NAMES = "review-area-names"
    LEGEND = "review-legend"
    RANKING = "review-ranking"
    TREND = "review-trend"
    CATEGORIES = "review-categories"
    DEPARTMENTS = "review-departments"
    EXPORT = "review-export"
    DOWNLOAD = "review-download"
    HOT_SPOTS = "review-hot-spots"
    PATROL = "review-patrol"
    CASES = "review-cases"
    CASES_CSV = "review-cases-csv"
    CASES_XLSX = "review-cases-xlsx"
    CASES_DOWNLOAD = "review-cases-download"
    TIMELINE = "review-timeline"  # the case panel
    CASE_SHOWN = "review-case-shown"
    CASE_MAP = "review-case-map"
    NEAREST = "review-nearest"
    CLOSE_CASE = "review-close-case"
    SEARCH = "review-search"
    SEARCH_HITS = "review-search-hits"
    SEARCH_HIT = "review-search-hit"  # the type of each hit's pattern-matching id: {"type": SEARCH_HIT, "case": ID}
    UNMASK = "review-unmask"
    SUPERVISE_NOTE = "review-supervise-note"
    SUPERVISE = "review-supervise"
    STATE = "review-state"
    PERIOD = "review-period"


class Weekly:
    KIND = "weekly-kind"
    TITLE = "weekly-title"
    TREND = "weekly-trend"
    WEEK = "weekly-week"
    BODY = "weekly-body"
    PDF = "weekly-pdf"
    XLSX = "weekly-xlsx"
    DOWNLOAD = "weekly-download"
    STATE = "weekly-state"
