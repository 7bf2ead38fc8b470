"""The administration screens in words: local times, actions and details as an auditor reads them."""
from __future__ import annotations

import json
from datetime import datetime

from layouts.admin import AUDIT_ACTIONS, DETAIL_CHARS, action_text, area_text, detail_text, local_time
from tests.support import TZ

NAMES = {"grids": {"320506003000": "长桥街道"}, "departments": {"CGJ": "城市管理局"}}


def test_stored_utc_times_read_in_the_centres_time_zone():
    assert local_time(datetime(2026, 12, 2, 23, 30, 5), TZ, seconds=True) == "2026-12-03 07:30:05"
    assert local_time(datetime(2026, 12, 2, 23, 30, 5), TZ) == "2026-12-03 07:30"
    assert local_time(None, TZ) == "—"


def test_every_action_the_search_offers_has_words_in_both_languages():
    for action in AUDIT_ACTIONS + ("login.success", "login.failure", "user.create", "token.revoke"):
        assert action_text(action, "zh") != action and action_text(action, "en") != action, action
    assert action_text("case.view", "zh") == "查看案件" and action_text("case.view", "en") == "Opened a case"
    assert action_text("something.new", "zh") == "something.new"  # an action without words is shown as stored


def test_details_read_as_labelled_values_with_names_for_codes():
    stored = json.dumps({"role": "leader", "scope": "320506003000", "dept": None})
    assert detail_text(stored, "zh", NAMES) == "角色：领导；管辖范围：长桥街道 (320506003000)；部门：—"
    assert detail_text(stored, "en", NAMES) == "role: Leader; scope: 长桥街道 (320506003000); department: —"
    export = json.dumps({"screen": "review", "selection": "?area=320506&window=7d", "rows": 12, "truncated": False, "masked": True})
    assert detail_text(export, "zh", NAMES) == "页面：态势研判；筛选条件：area=320506&window=7d；行数：12；是否截断：否；是否脱敏：是"
    assert area_text("999", NAMES) == "999" and area_text(None, NAMES) == "—"


def test_a_detail_that_is_not_an_object_or_too_long_is_shown_as_text_and_cut():
    assert detail_text("<b>not json</b>", "zh", NAMES) == "<b>not json</b>"
    long = json.dumps({"text": "查" * 1000})
    assert len(detail_text(long, "zh", NAMES)) == DETAIL_CHARS + 1
    assert detail_text("[1, 2]", "en", NAMES) == "[1, 2]"
