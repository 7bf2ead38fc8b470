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
    "forbidden": ("无权访问", "Not allowed"),
    "login_title": ("网格化联动指挥中心 · 登录", "GridOps · Sign in"),
    "user_name": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "login_failed": ("用户名或密码错误", "Wrong user name or password"),
    "kiosk_refused": ("大屏令牌无效或已撤销", "The kiosk token is not valid or was revoked"),
    "too_many_attempts": ("尝试次数过多，请稍后再试", "Too many attempts; try again later"),
    "nav_home": ("首页", "Home"),
    "nav_wall": ("大屏", "Video wall"),
    "nav_admin": ("用户管理", "Users"),
    "nav_audit": ("审计日志", "Audit log"),
    "role": ("角色", "Role"),
    "scope": ("管辖范围", "Scope"),
    "scope_code": ("管辖网格编码（领导）", "Scope grid code (leaders)"),
    "department": ("部门", "Department"),
    "status": ("状态", "Status"),
    "actions": ("操作", "Actions"),
    "enable": ("启用", "Enable"),
    "disable": ("停用", "Disable"),
    "disabled": ("已停用", "Disabled"),
    "active": ("正常", "Active"),
    "new_token": ("生成令牌", "New token"),
    "reset_password": ("重置密码", "Reset password"),
    "token_id": ("令牌编号", "Token"),
    "created": ("创建时间", "Created"),
    "revoked": ("撤销时间", "Revoked"),
    "revoke": ("撤销", "Revoke"),
    "password_optional": ("密码（留空自动生成）", "Password (empty: generate)"),
    "create_user": ("新建用户", "Create user"),
    "users": ("用户", "Users"),
    "tokens": ("令牌", "Tokens"),
    "time": ("时间", "Time"),
    "actor": ("操作人", "Who"),
    "action": ("动作", "Action"),
    "target": ("对象", "Target"),
    "detail": ("详情", "Detail"),
    "address": ("来源地址", "From"),
    "search_text": ("搜索用户、对象、详情或地址", "Search user, target, detail or address"),
    "search": ("搜索", "Search"),
    "user_created": ("已创建用户 {name}", "User {name} created"),
    "password_once": ("初始密码（只显示一次）：{password}", "Password (shown once): {password}"),
    "token_once": ("{name} 的令牌（只显示一次）：{token}", "Token for {name} (shown once): {token}"),
    "kiosk_url": ("大屏地址：{url}", "Wall address: {url}"),
    "user_disabled": ("已停用 {name}，其会话已结束", "{name} disabled; their sessions ended"),
    "user_enabled": ("已启用 {name}", "{name} enabled"),
    "token_revoked": ("已撤销令牌 {token}", "Token {token} revoked"),
    "waiting": ("待派遣", "Waiting"),
    "in_hand": ("处置中", "In hand"),
    "due_soon": ("临期", "Due soon"),
    "late_by": ("超期", "overdue"),
    "left": ("剩余", "left"),
    "no_alerts": ("暂无超期或临期案件", "No overdue or due-soon cases"),
    "dispatch_board": ("派遣看板", "Dispatch board"),
    "alerts": ("超期预警", "Overdue alerts"),
    "trend_24h": ("24小时上报与结案", "Reported and closed, 24 h"),
    "categories": ("今日案件类别", "Categories today"),
    "sources": ("今日案件来源", "Sources today"),
    "source_patrol": ("网格巡查", "Patrol"),
    "source_hotline": ("12345热线", "12345 hotline"),
    "source_police": ("110转办", "110 transfer"),
    "source_wechat": ("微信", "WeChat"),
    "source_video": ("视频智能", "Video"),
    "source_leader": ("领导交办", "Leader"),
    "grid_member": ("网格助理", "Grid assistant"),
    "overdue_list": ("超期案件", "Overdue cases"),
    "more_rows": ("另有", "more:"),
    "district_view": ("全区", "District"),
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


def tf(key: str, lang: str, **values) -> str:
    """``t`` with ``{name}`` placeholders filled in."""
    return t(key, lang).format(**values)


def local_name(name: str, name_en: str | None, lang: str) -> str:
    """A database name in the chosen language, falling back to the Chinese one."""
    return name_en if lang == "en" and name_en else name
