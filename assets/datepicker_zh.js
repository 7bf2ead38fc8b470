/* Chinese words for Dash's date pickers on a Chinese page.
 *
 * Dash 4's pickers format with date-fns and take their locale from window.dateFns.locale,
 * choosing by the browser's languages and falling back to the first one registered. The page's
 * language, not the browser's, decides here: on a page whose .page element says lang="zh-CN"
 * the pickers see only the Chinese locale below (so they fall back to it whatever the browser
 * speaks); on an English page they see none and keep date-fns' English. Offline by design: the
 * few words a calendar needs are written out instead of loading date-fns' locale bundle.
 */
(function () {
  "use strict";

  var WEEKDAYS_SHORT = ["日", "一", "二", "三", "四", "五", "六"];
  var WEEKDAYS_LONG = ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"];
  var MONTHS = ["一月", "二月", "三月", "四月", "五月", "六月", "七月", "八月", "九月", "十月", "十一月", "十二月"];

  function noMatch() { return null; }  // typed dates are numeric (YYYY-MM-DD): no word to read back

  var zhCN = {
    code: "zh-CN",
    options: { weekStartsOn: 1, firstWeekContainsDate: 4 },
    localize: {
      ordinalNumber: function (n) { return "第" + n; },
      era: function (index) { return index ? "公元" : "公元前"; },
      quarter: function (q) { return "第" + q + "季度"; },
      month: function (index, options) { return options && options.width === "narrow" ? String(index + 1) : MONTHS[index]; },
      day: function (index, options) {
        var width = options && options.width;
        return width === "short" || width === "narrow" ? WEEKDAYS_SHORT[index] : WEEKDAYS_LONG[index];
      },
      dayPeriod: function (period) { return period === "pm" ? "下午" : "上午"; }
    },
    formatLong: {
      date: function (options) { return options && options.width === "full" ? "yyyy'年'M'月'd'日' EEEE" : "yyyy-MM-dd"; },
      time: function () { return "HH:mm:ss"; },
      dateTime: function () { return "{{date}} {{time}}"; }
    },
    match: { ordinalNumber: noMatch, era: noMatch, quarter: noMatch, month: noMatch, day: noMatch, dayPeriod: noMatch },
    formatDistance: function (token, count) { return String(count); },
    formatRelative: function () { return "yyyy-MM-dd"; }
  };

  function pageIsChinese() {
    var page = document.querySelector(".page[lang]");
    return !page || page.getAttribute("lang").indexOf("zh") === 0;  // Chinese by default, as the product
  }

  window.dateFns = window.dateFns || {};
  Object.defineProperty(window.dateFns, "locale", {
    configurable: true,
    get: function () { return pageIsChinese() ? { zhCN: zhCN } : {}; }
  });
})();
