"""What the demo's and the simulator's cases say: a description in the words of the channel it
came by, at a place named after the streets and estates of its grid (``胥湖路与人民路交叉口
井盖缺失，存在安全隐患``), the reporters' names are drawn from SURNAMES (by
``case_model``); all invented, and the screens mask them as they would real ones. Any district: the places are built from the names
of the grid's own community and town.
"""
from __future__ import annotations

import re

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"

SOURCE_PREFIX = {
    "patrol": "网格员巡查发现：", "hotline": "12345热线市民反映：", "police": "110非警务警情转办：",
    "wechat": "微信随手拍：", "video": "视频智能识别：", "leader": "领导交办：",
}
COMMON_ROADS = ("人民路", "解放路", "建设路", "中山路", "文化路", "新华路", "长江路", "和平路", "工业园路", "学府路", "滨湖路", "迎春路")
ROAD_SUFFIXES = ("路", "街", "大道", "巷")
PLACES = (
    "{road}与{other}交叉口", "{road}{number}号门前", "{estate}小区{building}幢楼下", "{road}公交站旁", "{estate}菜市场门口",
    "{road}人行道上", "{estate}小区东门", "{estate}公园内", "{road}桥下", "{road}沿街商铺前", "{estate}农贸市场旁", "{road}绿化带",
)
# the end of a description, by the category's major class (a keyword of its name); the rest: a plain request
TAILS = (
    ("设施", "，存在安全隐患"), ("交通", "，影响车辆和行人通行"), ("市容", "，影响市容环境"), ("环境", "，影响周边居民生活"),
    ("治安", "，请派员到场处置"), ("安全", "，存在安全隐患，请尽快处理"), ("突发", "，情况紧急"), ("园林", "，影响绿化养护"),
    ("民生", "，群众意见较大"), ("房", "，请相关部门核查"),
)
NAME_ENDINGS = re.compile(r"(社区居委会|居委会|社区|村委会|村|街道办事处|街道|镇|乡|片区|第?[0-9一二三四五六七八九十]+网格|网格)$")


def stem(name: str) -> str:
    """A place name without its administrative ending: ``胥湖社区`` → ``胥湖``, ``金庭镇`` → ``金庭``."""
    shorter = NAME_ENDINGS.sub("", name or "").strip()
    return shorter if len(shorter) >= 2 else ""


def describe(source: str, category_name: str, major_name: str, places: tuple[str, ...], rng) -> str:
    """A case's description: the channel's words, a place in its grid, what is wrong, and why it matters."""
    stems = [s for s in (stem(name) for name in places[:2]) if s] or ["城东", "新村"]  # its community's, then its town's

    def road_name() -> str:
        draw = rng.random()
        if draw < 0.5:
            return stems[0] + ROAD_SUFFIXES[int(rng.integers(len(ROAD_SUFFIXES)))]
        if draw < 0.7:
            return stems[-1] + ROAD_SUFFIXES[int(rng.integers(len(ROAD_SUFFIXES)))]
        return COMMON_ROADS[int(rng.integers(len(COMMON_ROADS)))]

    road, other = road_name(), road_name()
    if other == road:
        other = COMMON_ROADS[int(rng.integers(len(COMMON_ROADS)))]
    place = PLACES[int(rng.integers(len(PLACES)))].format(
        road=road, other=other, estate=stems[0] if rng.random() < 0.75 else stems[-1], number=int(rng.integers(1, 400)), building=int(rng.integers(1, 40)),
    )
    tail = next((words for keyword, words in TAILS if keyword in (major_name or "")), "，请尽快处理")
    return f"{SOURCE_PREFIX.get(source, '')}{place}{category_name}{tail}"
