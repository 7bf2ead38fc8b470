"""Labels in Chinese (default) and English. Every visible string of the UI comes from here."""
from __future__ import annotations

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

LABELS: dict[str, tuple[str, str]] = {
    "app_title": ("网格化联动指挥中心", "Grid Governance Command Centre"),
    "today": ("今日", "Today"),
    "language_switch": ("English", "中文"),
    "updated_at": ("更新于", "Updated"),
    "map_title": ("网格分布", "Grids"),
    "open_cases": ("在办案件", "Open cases"),
    "overdue_cases": ("超期案件", "Overdue cases"),
    "grid_worker": ("网格员", "Grid worker"),
    "grid_head": ("网格长", "Grid head"),
    "households": ("户数", "Households"),
    "population": ("人口", "Population"),
    "no_data": ("暂无数据", "No data"),
    "not_found": ("页面不存在", "Page not found"),
    "back_home": ("返回首页", "Back to the start page"),
    "basic_grids": ("基础网格", "basic grids"),
    "stale_since": ("数据停止更新于", "Stale since"),
    # indicators, by their API keys
    "reported": ("上报数", "Reported"),
    "registered": ("立案数", "Registered"),
    "invalid": ("作废数", "Invalid"),
    "dispatched": ("派遣数", "Dispatched"),
    "handled": ("处置数", "Handled"),
    "closed": ("结案数", "Closed"),
    "in_progress": ("处置中", "In progress"),
    "overdue": ("超期数", "Overdue"),
    "reworked": ("返工数", "Reworked"),
    "due_to_close": ("应结案数", "Due to close"),
    "closed_on_time": ("按期结案数", "Closed on time"),
    "closure_rate": ("结案率", "Closure rate"),
    "on_time_closure_rate": ("按期结案率", "On-time closure rate"),
    "on_time_handling_rate": ("按期处置率", "On-time handling rate"),
    "rework_rate": ("返工率", "Rework rate"),
    "overdue_pending_rate": ("超期待处置率", "Overdue pending rate"),
    "timely_registration_rate": ("按时立案率", "Timely registration rate"),
    "valid_report_rate": ("有效上报率", "Valid report rate"),
    "satisfaction_rate": ("满意率", "Satisfaction"),
    "mean_close_hours": ("平均结案时长(时)", "Mean hours to close"),
    "p90_close_hours": ("90%结案时长(时)", "90th pct hours to close"),
    "patrol_hours": ("巡查时长(时)", "Patrol hours"),
    "patrol_km": ("巡查里程(km)", "Patrol km"),
    "grids_patrolled": ("已巡网格", "Grids patrolled"),
    "workers_online": ("在线网格员", "Workers online"),
    "patrol_attainment": ("巡查达标率", "Patrol attainment"),
    "score": ("综合得分", "Score"),
    "grade": ("等级", "Grade"),
}


def normalise_language(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def t(key: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """The label of ``key`` in ``lang``; the key itself if it has none (so gaps are visible)."""
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]


def local_name(name: str, name_en: str | None, lang: str) -> str:
    """A database name in the chosen language, falling back to the Chinese one."""
    return name_en if lang == "en" and name_en else name
