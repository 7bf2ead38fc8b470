"""Sign-in: the login page, sessions, API tokens, kiosk tokens, and the gate on every request.

Every request except the login page, static files, ``/healthz`` and ``/metrics`` needs a
principal: a session cookie (people), ``Authorization: Bearer`` (scripts and other
systems) or, when GRIDOPS_AUTH=off on loopback, the local user. Pages answer a missing
sign-in with a redirect to the login page; API and Dash requests with 401.
"""
from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote, urlencode, urlsplit

import redis
from flask import Blueprint, Response, g, jsonify, redirect, render_template_string, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response as BaseResponse

from dashboard import sessions
from dashboard.context import AppContext, current_context
from dashboard.extensions import limiter
from dashboard.i18n import normalise_language, t
from data_feeds import accounts, reference
from data_feeds.db import QueryTimeout
from data_feeds.keys import Keys
from gridrules.access import EVERYTHING, PAGE_PERMISSIONS, Principal, Scope

blueprint = Blueprint("gridops_auth", __name__)

SESSION_COOKIE = "gridops_session"
SESSION_MAX_AGE_S = 12 * 3600
KIOSK_MAX_AGE_S = 0  # a wall runs for days: its session lasts as long as its token
KIOSK_IDLE_S = 7 * 86400  # a wall switched off over a holiday signs in again by itself
TOKEN_RECHECK_S = 30
PUBLIC_PATHS = ("/login", "/kiosk", "/healthz", "/metrics", "/_favicon.ico")
STATIC_PREFIXES = ("/assets/", "/_dash-component-suites/")
LOGIN_LIMIT_PER_ADDRESS = "20 per minute"
LOGIN_LIMIT_PER_NAME_AND_ADDRESS = "5 per 10 minutes"
# Failures for one name from many addresses slow that name down rather than lock it: a
# lock-out by name would let anyone keep `admin` out. From the LOGIN_FREE_FAILURES-th recent
# failure on, every attempt for the name waits LOGIN_DELAY_FIRST_S, doubling with each further
# failure up to LOGIN_DELAY_MAX_S; the failures are forgotten LOGIN_FAILURE_MEMORY_S after the
# last one. The right password always gets in, at most LOGIN_DELAY_MAX_S later.
LOGIN_FREE_FAILURES = 5
LOGIN_DELAY_FIRST_S = 1.0
LOGIN_DELAY_MAX_S = 8.0
LOGIN_FAILURE_MEMORY_S = 15 * 60
LOCAL_PRINCIPAL = Principal("local", "admin", EVERYTHING)
MAX_NEXT_LENGTH = 2000
MAX_NEXT_DECODINGS = 3  # "%25252F" and deeper is nobody's real link


def current_principal() -> Principal:
    """The caller of the current request (set by the gate)."""
    return g.gridops_principal


def end_user_sessions(ctx: AppContext, principal: Principal, name: str, keep_own: bool) -> None:
    """End every session of user ``name`` (disabled, or a new password); with ``keep_own`` an
    admin changing their own account keeps the session they did it in."""
    user = accounts.get_user(ctx.engine, name)
    if user is None:
        return
    keep = current_session_id() if keep_own and user.id == principal.user_id else None
    sessions.delete_user_sessions(ctx.redis, Keys(ctx.settings.prefix), user.id, keep=keep)


def current_session_id() -> str | None:
    """The id of the session the current request came with (None for Bearer tokens and signed-out callers)."""
    return None if request.headers.get("Authorization") else request.cookies.get(SESSION_COOKIE)


@dataclass(frozen=True)
class SignIn:
    """How the caller of a request signed in, so that a long response (a change stream) can
    check again, while it runs, that it still holds."""

    session_id: str | None  # the session cookie, when that is how the caller came in
    token_id: int | None  # an API or kiosk token, revocable
    user_name: str


def sign_in_of_request(ctx: AppContext) -> SignIn | None:
    """The current request's sign-in (as the gate read it); None when sign-in is off."""
    if not ctx.settings.auth:
        return None
    principal = current_principal()
    session_id = None if request.headers.get("Authorization") else request.cookies.get(SESSION_COOKIE)
    return SignIn(session_id, principal.token_id, principal.name)


def still_signed_in(ctx: AppContext, sign_in: SignIn | None) -> bool:
    """Whether a sign-in still holds: its session not ended (logout, idle, disabled user), its
    token not revoked, its user not disabled. Any doubt (a store that cannot answer) is a no."""
    if sign_in is None:
        return True
    try:
        if sign_in.session_id is not None and not sessions.is_live(ctx.redis, Keys(ctx.settings.prefix), sign_in.session_id):
            return False
        if sign_in.token_id is not None:
            return accounts.token_is_live(ctx.engine, sign_in.token_id)  # also false when its user is disabled
        user = accounts.get_user(ctx.engine, sign_in.user_name)
        return user is not None and not user.disabled
    except (redis.RedisError, SQLAlchemyError, QueryTimeout):  # the caller comes back through the gate, which decides
        return False


def scope_of(ctx: AppContext, user: accounts.User) -> Scope:
    """The user's scope: their grid subtree and department; personal data for the roles allowed."""
    from gridrules.access import PERMISSIONS

    personal = "personal_data" in PERMISSIONS.get(user.role, frozenset())
    before_dispatch = _dept_before_dispatch(ctx)
    if user.scope:
        area = reference.load_grid(ctx.engine, user.scope)
        return Scope(area_path=area.path if area else "/nowhere/", area_code=user.scope, dept=user.dept, personal_data=personal, dept_before_dispatch=before_dispatch)
    return Scope(dept=user.dept, personal_data=personal, dept_before_dispatch=before_dispatch)


def _dept_before_dispatch(ctx: AppContext) -> bool:
    """Whether department users also see their categories' cases before dispatch ([access] in the configuration)."""
    return ctx.config.department_sees == "responsible"


def principal_of(ctx: AppContext, user: accounts.User, token_id: int | None = None) -> Principal:
    return Principal(user.name, user.role, scope_of(ctx, user), user.id, token_id)


def _remote() -> str:
    return request.remote_addr or ""


def _idle_s(ctx: AppContext) -> int:
    return int(ctx.settings.session_idle_minutes * 60)


def _from_session(ctx: AppContext) -> Principal | None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    keys = Keys(ctx.settings.prefix)
    record = sessions.load(ctx.redis, keys, session_id)
    if record is None:
        return None
    if record.get("token_id") is not None and time.time() - record.get("token_checked", 0) > TOKEN_RECHECK_S:
        if not accounts.token_is_live(ctx.engine, record["token_id"]):
            sessions.delete(ctx.redis, keys, session_id)
            return None
        record["token_checked"] = time.time()
        sessions.update(ctx.redis, keys, session_id, record)
    scope = Scope(record.get("area_path"), record.get("area_code"), record.get("dept"), bool(record.get("personal_data")), _dept_before_dispatch(ctx))
    return Principal(record["name"], record["role"], scope, record.get("user_id"), record.get("token_id"))


def _from_bearer(ctx: AppContext) -> Principal | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    found = accounts.user_for_token(ctx.engine, header[7:].strip())
    if found is None:
        return None
    user, token_id = found
    return principal_of(ctx, user, token_id)


def _wants_json(path: str) -> bool:
    return path.startswith(("/api/", "/_dash")) or request.headers.get("Authorization", "").startswith("Bearer ")


def gate() -> BaseResponse | tuple[Response, int] | None:
    """Before every request: find the caller, or answer 401 / redirect to the login page."""
    path = request.path
    if path in PUBLIC_PATHS or path.startswith(STATIC_PREFIXES):
        return None
    ctx = current_context()
    if not ctx.settings.auth:
        g.gridops_principal = LOCAL_PRINCIPAL
        return None
    principal = _from_bearer(ctx) if request.headers.get("Authorization") else _from_session(ctx)
    if principal is None:
        if _wants_json(path):
            return jsonify(error="sign in first (a session, or Authorization: Bearer TOKEN)"), 401
        return redirect("/login?" + urlencode({"next": request.full_path.rstrip("?")}))
    g.gridops_principal = principal
    needed = PAGE_PERMISSIONS.get(path)
    if needed and not principal.can(needed):
        return Response(t("forbidden", "zh") + " / " + t("forbidden", "en"), status=403, mimetype="text/plain")
    return None


def too_many_attempts(_error: TooManyRequests) -> Response | tuple[Response, int]:
    """429: sign-in attempts beyond the limit (per address and per user name)."""
    if _wants_json(request.path):
        return jsonify(error="too many attempts; try again later"), 429
    lang = normalise_language(request.values.get("lang"))
    return _login_page(lang, _safe_next(request.values.get("next")), request.values.get("name", ""), t("too_many_attempts", lang), status=429)


# ---------------------------------------------------------------- pages

LOGIN_PAGE = """<!doctype html>
<html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}"><head><meta charset="utf-8">
<title>{{ title }}</title><meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{margin:0;background:#050d1a;color:#e6f1ff;font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;
display:flex;align-items:center;justify-content:center;min-height:100vh}
form{background:#0b1a2e;border:1px solid #1c3656;border-radius:8px;padding:32px 40px;width:340px}
h1{font-size:22px;margin:0 0 24px;letter-spacing:2px} label{display:block;margin:14px 0 6px;color:#8aa4c2;font-size:14px}
input{width:100%;box-sizing:border-box;padding:9px;border-radius:4px;border:1px solid #1c3656;background:#07111f;color:#e6f1ff;font-size:16px}
button{margin-top:22px;width:100%;padding:10px;border:0;border-radius:4px;background:#1f6f9f;color:#fff;font-size:16px;cursor:pointer}
.error{color:#ff4d4f;margin-top:14px;font-size:14px} .lang{display:block;margin-top:18px;text-align:right;color:#5ad8ff;font-size:14px}
</style></head><body>
<form method="post" action="/login">
<h1>{{ title }}</h1>
<input type="hidden" name="next" value="{{ next }}"><input type="hidden" name="lang" value="{{ lang }}">
<label for="name">{{ name_label }}</label><input id="name" name="name" autocomplete="username" value="{{ name }}" autofocus>
<label for="password">{{ password_label }}</label><input id="password" name="password" type="password" autocomplete="current-password">
<button type="submit">{{ submit }}</button>
{% if error %}<div class="error" role="alert">{{ error }}</div>{% endif %}
<a class="lang" href="/login?lang={{ other_lang }}&next={{ next|urlencode }}">{{ switch }}</a>
</form></body></html>"""


def _safe_next(target: str | None) -> str:
    """``target`` when it is a path of this site, else ``/``: never send a signed-in user to another site.

    Browsers drop tabs and line breaks from a URL, read ``\\`` as ``/`` and ``scheme:`` as absolute,
    so ``/<tab>/evil.example`` would become ``//evil.example``; a line break would also break the
    Location header. Such characters are refused outright, and so is any percent-encoded form
    of them, or of ``//``, that a proxy or a second decoding could turn back.
    """
    if not target or len(target) > MAX_NEXT_LENGTH:
        return "/"
    form = target
    for _ in range(MAX_NEXT_DECODINGS):
        if not _is_local_path(form):
            return "/"
        decoded = unquote(form)
        if decoded == form:
            return target
        form = decoded
    return "/"


def _is_local_path(text: str) -> bool:
    """A path-absolute URL (``/…``, not ``//…``) without whitespace, control characters or backslashes."""
    if any(char == "\\" or char.isspace() or unicodedata.category(char)[0] in "CZ" for char in text):
        return False
    parts = urlsplit(text)
    return text.startswith("/") and not text.startswith("//") and not parts.scheme and not parts.netloc


def _login_page(lang: str, next_path: str, name: str = "", error: str | None = None, status: int = 200):
    html = render_template_string(
        LOGIN_PAGE, lang=lang, title=t("login_title", lang), name_label=t("user_name", lang),
        password_label=t("password", lang), submit=t("sign_in", lang), error=error, next=next_path, name=name,
        other_lang="en" if lang == "zh" else "zh", switch=t("language_switch", lang),
    )
    return Response(html, status=status, mimetype="text/html")


def _attempted_name() -> str:
    """The user name of a sign-in attempt as the throttles count it."""
    return (request.form.get("name") or "").strip().lower()[:80]


def _name_and_address_key() -> str:
    return f"login:{_remote()}:{_attempted_name()}"


def _failed(response: Response) -> bool:
    return response.status_code == 401


def login_delay_s(failures: int) -> float:
    """How long a sign-in for a name waits after ``failures`` recent failures for that name, from any address."""
    if failures < LOGIN_FREE_FAILURES:
        return 0.0
    return min(LOGIN_DELAY_FIRST_S * 2 ** min(failures - LOGIN_FREE_FAILURES, 16), LOGIN_DELAY_MAX_S)


def _slow_down(ctx: AppContext, name: str) -> None:
    failures = int(ctx.redis.get(Keys(ctx.settings.prefix).login_failures(name)) or 0)
    delay = login_delay_s(failures)
    if delay:
        time.sleep(delay)


def _count_failure(ctx: AppContext, name: str) -> None:
    key = Keys(ctx.settings.prefix).login_failures(name)
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, LOGIN_FAILURE_MEMORY_S)
    pipe.execute()


@blueprint.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT_PER_ADDRESS, methods=["POST"], deduct_when=_failed)
@limiter.limit(LOGIN_LIMIT_PER_NAME_AND_ADDRESS, methods=["POST"], key_func=_name_and_address_key, deduct_when=_failed)
def login() -> BaseResponse:
    ctx = current_context()
    lang = normalise_language(request.values.get("lang"))
    next_path = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return _login_page(lang, next_path)
    name = (request.form.get("name") or "").strip()
    _slow_down(ctx, _attempted_name())
    user = accounts.authenticate(ctx.engine, name, request.form.get("password") or "")
    if user is None or user.role == "wall":
        _count_failure(ctx, _attempted_name())
        accounts.audit(ctx.engine, name or "(empty)", "login.failure", name, None, _remote())
        return _login_page(lang, next_path, name, t("login_failed", lang), status=401)
    principal = principal_of(ctx, user)
    session_id = sessions.create(ctx.redis, Keys(ctx.settings.prefix), _session_record(principal), _idle_s(ctx), SESSION_MAX_AGE_S)
    accounts.audit(ctx.engine, user.name, "login.success", user.name, None, _remote())
    response = redirect(next_path)
    _set_cookie(ctx, response, session_id)
    return response


def _session_record(principal: Principal) -> dict:
    return {
        "user_id": principal.user_id, "name": principal.name, "role": principal.role, "token_id": principal.token_id,
        "area_path": principal.scope.area_path, "area_code": principal.scope.area_code, "dept": principal.scope.dept,
        "personal_data": principal.scope.personal_data, "token_checked": time.time(),
    }


def _set_cookie(ctx: AppContext, response: BaseResponse, session_id: str) -> None:
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, secure=ctx.settings.secure_cookies, samesite="Lax", path="/")


SIGN_OUT_PAGE = """<!doctype html>
<html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}"><head><meta charset="utf-8">
<title>{{ title }}</title><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/gridops.css"></head><body class="page page-small">
<form method="post" action="/logout"><h1>{{ title }}</h1><button type="submit" class="button">{{ submit }}</button></form>
</body></html>"""


@blueprint.route("/logout", methods=["GET", "POST"])
def logout() -> BaseResponse:
    """Sign out by POST only (the header's button): a link or an image on any page must not sign anyone out."""
    if request.method == "GET":
        lang = normalise_language(request.args.get("lang"))
        html = render_template_string(SIGN_OUT_PAGE, lang=lang, title=t("sign_out_question", lang), submit=t("sign_out", lang))
        return Response(html, mimetype="text/html")
    ctx = current_context()
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        principal = _from_session(ctx)
        sessions.delete(ctx.redis, Keys(ctx.settings.prefix), session_id)
        if principal is not None:
            accounts.audit(ctx.engine, principal.name, "logout", principal.name, None, _remote())
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


KIOSK_PAGE = """<!doctype html>
<html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}"><head><meta charset="utf-8">
<title>{{ title }}</title><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/gridops.css"></head><body class="page page-small">
<form method="post" action="/kiosk"><h1>{{ title }}</h1>
{% for key, value in keep %}<input type="hidden" name="{{ key }}" value="{{ value }}">{% endfor %}
<p><label for="token">{{ token_label }}</label></p>
<p><input id="token" name="token" type="password" autocomplete="off" class="text-input" autofocus></p>
<button type="submit" class="button">{{ submit }}</button></form>
</body></html>"""


def _kiosk_form(others: dict):
    lang = normalise_language(others.get("lang"))
    html = render_template_string(KIOSK_PAGE, lang=lang, title=t("kiosk_title", lang), token_label=t("kiosk_token", lang),
                                  submit=t("kiosk_open", lang), keep=sorted(others.items()))
    return Response(html, mimetype="text/html")


@blueprint.route("/kiosk", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT_PER_ADDRESS, deduct_when=_failed)
def kiosk() -> BaseResponse:
    """A wall's browser signs in once with its revocable token, then shows the wall.

    ``POST /kiosk`` with ``token`` in the body (``GET /kiosk`` shows the form for it) keeps the
    token out of URLs, browser history and proxy logs. ``GET /kiosk?token=…`` still works; our
    access logs redact it (dashboard/access_log.py). Other parameters (``kiosk``, ``rotate``)
    go on to ``/wall``.
    """
    ctx = current_context()
    others = {key: value for key, value in request.values.items() if key != "token"}
    if request.method == "GET" and "token" not in request.args:
        return _kiosk_form(others)
    found = accounts.user_for_token(ctx.engine, request.values.get("token", ""))
    if found is None or found[0].role != "wall":
        accounts.audit(ctx.engine, "(kiosk)", "login.failure", "kiosk token", None, _remote())
        return Response(t("kiosk_refused", "zh") + " / " + t("kiosk_refused", "en"), status=401, mimetype="text/plain")
    user, token_id = found
    principal = principal_of(ctx, user, token_id)
    session_id = sessions.create(ctx.redis, Keys(ctx.settings.prefix), _session_record(principal), KIOSK_IDLE_S, KIOSK_MAX_AGE_S)
    accounts.audit(ctx.engine, user.name, "login.success", user.name, {"kiosk_token": token_id}, _remote())
    response = redirect("/wall" + ("?" + urlencode(others) if others else ""))
    _set_cookie(ctx, response, session_id)
    return response
