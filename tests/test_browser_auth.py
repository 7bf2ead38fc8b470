"""Signing in through the real login page in Chromium, and what a leader then sees."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from data_feeds import accounts
from data_feeds.reference import load_children, root_grid
from tests.browser import chromium, is_local, running_server
from tests.support import ARTIFACTS

pytestmark = pytest.mark.browser
PASSWORD = "browser-pass-42"


@pytest.fixture(scope="module")
def server(demo_engine, redis_base_url, redis_db, tmp_path_factory):
    if demo_engine.url.get_backend_name() != "sqlite":
        pytest.skip("one browser run is enough; the data layer is tested on both databases")
    town = load_children(demo_engine, root_grid(demo_engine).code)[0]
    for name, role, scope in (("b-leader", "leader", town.code), ("b-admin", "admin", None)):
        if accounts.get_user(demo_engine, name) is None:
            accounts.create_user(demo_engine, name, role, PASSWORD, scope, actor="test")
    env = {
        "DATABASE_URL": demo_engine.url.render_as_string(hide_password=False), "REDIS_URL": f"{redis_base_url}/{redis_db}",
        "GRIDOPS_AUTH": "on", "GRIDOPS_SIMULATE": "0",
    }
    with running_server(env, log_path=tmp_path_factory.mktemp("auth") / "server.log") as base:
        yield base, town


def sign_in(page, base: str, name: str):
    page.goto(base + "/", wait_until="networkidle")
    assert "/login" in page.url
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-kpi='reported']")


def test_a_leader_signs_in_and_sees_their_town(server):
    base, town = server
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        sign_in(page, base, "b-leader")
        assert town.name in page.locator("h1").inner_text()
        assert page.locator(".user-name").inner_text() == "b-leader"
        assert page.locator("a.nav-link[href='/admin']").count() == 0
        page.goto(base + "/admin", wait_until="networkidle")
        assert "无权访问" in page.inner_text("body")
        page.goto(base + "/", wait_until="networkidle")
        page.click("form.sign-out button")  # a POST from this site; GET /logout signs nobody out
        page.wait_for_url("**/login")
        page.goto(base + "/", wait_until="networkidle")
        assert "/login" in page.url
        assert [url for url in requests if not is_local(url)] == []


def test_an_admin_manages_users(server):
    base, _ = server
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        sign_in(page, base, "b-admin")
        page.goto(base + "/admin", wait_until="networkidle")
        page.wait_for_selector("#admin-users table")
        page.fill("#admin-new-name", "b-new-operator")
        page.click("#admin-new-role")
        page.click("text=指挥中心值班员")
        page.click("#admin-create")
        page.wait_for_function("() => document.querySelector('#admin-message').innerText.includes('b-new-operator')")
        assert "只显示一次" in page.inner_text("#admin-message")
        page.wait_for_function("() => document.querySelector('#admin-users').innerText.includes('b-new-operator')")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "admin-users.png"), full_page=True)


def test_the_audit_log_reads_in_local_time_and_in_words_in_either_language(server):
    """What an auditor sees: local times (not UTC), actions and details in words, a leader's
    town by name, and a date picker in the page's language whatever the browser speaks."""
    base, town = server
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1920, "height": 1080}, locale="en-US")
        sign_in(page, base, "b-admin")
        page.goto(base + "/admin/audit", wait_until="networkidle")
        page.wait_for_selector(".audit-table tr[data-action='user.create']")
        table = page.inner_text(".audit-table")
        assert "UTC" not in table and "user.create" not in table and "login.success" not in table
        assert "新建用户" in table and "登录成功" in table
        created = page.locator(".audit-table tr[data-action='user.create']:has-text('b-leader') td.detail").first.inner_text()
        assert created == f"角色：领导；管辖范围：{town.name} ({town.code})；部门：—"
        shown = page.locator(".audit-table tr[data-action='login.success'] td").first.inner_text()
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", shown)
        moment = datetime.strptime(shown, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
        assert abs((datetime.now(UTC) - moment).total_seconds()) < 600  # Beijing time, not UTC: eight hours apart
        page.click(".date-range input >> nth=0")
        page.wait_for_selector(".dash-datepicker-content")
        calendar = page.inner_text(".dash-datepicker-content")
        assert "年" in calendar and "一" in calendar and "Mo" not in calendar
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "audit-zh.png"))
        page.keyboard.press("Escape")

        page.goto(base + "/admin/audit?lang=en", wait_until="networkidle")
        page.wait_for_selector(".audit-table tr[data-action='user.create']")
        assert "Created a user" in page.inner_text(".audit-table")
        page.click(".date-range input >> nth=0")
        page.wait_for_selector(".dash-datepicker-content")
        calendar = page.inner_text(".dash-datepicker-content")
        assert "年" not in calendar and re.search(r"\b(Mo|Mon)\b", calendar)
