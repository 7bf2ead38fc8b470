/* The video wall in the browser: map styling, merging deltas into the map layers, the clock,
   live ageing of alerts, staleness and reconnection. No network access of its own. */
(function () {
  // Timing, words and element ids come from Python through the page state (layouts/wall.py
  // TIMING and JS_TEXTS, callbacks/wall.py PAGE_IDS): configure() keeps them here.
  var TRAIL_STYLE = { color: "#35d07f", weight: 3, opacity: 0.8 };

  /* every mark on the map grows with the screen as the fonts do (1 at 1920 px wide, 2 at 3840) */
  function scale() {
    return Math.max(1, window.innerWidth / 1920);
  }

  /* the zoom at which a 1920 px wall would show things as large as this one does at ``zoom``:
     what is legible from across the room depends on that, not on the zoom alone (a 4K wall
     fits the district one zoom level further in, and its grids are no larger to the eye) */
  function apparentZoom(zoom) {
    return zoom - Math.log2(scale());
  }

  function counts(hideout, code) {
    return ((hideout || {}).counts || {})[code] || [0, 0];
  }

  function fill(open) {
    return window.gridops.map.openColour(open);  // gridops_map.js: the one ramp
  }

  var WORKER_PANE = "gridops-workers";

  /* A worker as an arrow drawn on the canvas (a circle marker's hit area and bounds, a shape of
     its own). Made on first use: Leaflet is loaded by then. */
  var WorkerMark = null;
  function workerMarkClass() {
    if (WorkerMark) return WorkerMark;
    WorkerMark = L.CircleMarker.extend({
      _workerMark: true,
      beforeAdd: function (map) {
        if (!map.getPane(WORKER_PANE)) {
          var pane = map.createPane(WORKER_PANE);
          pane.style.zIndex = 640;  // above the pins (600), below tooltips (650)
          pane.style.pointerEvents = "none";
          map.getContainer().addEventListener("click", function (event) {
            var hit = window.gridops.wall.workerAt(map, map.mouseEventToContainerPoint(event));
            if (!hit) return;
            event.stopPropagation();
            window.dash_clientside.set_props(window.gridops.wall.config.ids.workers, { clickData: hit.feature });
          }, true);
        }
        L.CircleMarker.prototype.beforeAdd.call(this, map);
      },
      /* how large at the map's zoom: over the whole district hundreds of workers would hide the
         cases, so there they are small dots; from a town's zoom on, full arrows */
      _zoomFactor: function () {
        var zoom = apparentZoom(this._map ? this._map.getZoom() : 14);
        return zoom >= 14 ? 1 : zoom >= 12 ? 0.75 : 0.4;
      },
      _arrow: function () {
        var heading = this.options.heading;
        return heading !== null && heading !== undefined && this._zoomFactor() > 0.5;
      },
      drawnLength: function () {
        return this._radius * this._zoomFactor() * (this._arrow() ? 2.8 : 2);
      },
      hitRadius: function () {
        return this._radius * this._zoomFactor() * (this._arrow() ? 1.4 : 1) + 4;
      },
      _updateBounds: function () {
        var r = this._radius * 1.7 + this._clickTolerance(), p = L.point(r, r);
        this._pxBounds = L.bounds(this._point.subtract(p), this._point.add(p));
      },
      _updatePath: function () {
        var renderer = this._renderer;
        if (!renderer._ctx) return L.CircleMarker.prototype._updatePath.call(this);
        if (!renderer._drawing || this._empty()) return;
        var ctx = renderer._ctx, c = this._point, r = this._radius * this._zoomFactor();
        if (!this._arrow()) {
          ctx.beginPath();
          ctx.arc(c.x, c.y, r, 0, Math.PI * 2, false);
          // a thinner edge on a small dot (the renderer reads only the options it is handed)
          renderer._fillStroke(ctx, { options: Object.assign({}, this.options, { weight: this.options.weight * Math.max(0.5, this._zoomFactor()) }) });
          return;
        }
        var a = this.options.heading * Math.PI / 180;
        // (across, ahead) in the worker's frame → screen: heading is clockwise from north, y grows down
        var at = function (across, ahead) {
          return [c.x + across * Math.cos(a) + ahead * Math.sin(a), c.y + across * Math.sin(a) - ahead * Math.cos(a)];
        };
        var points = [at(0, 1.7 * r), at(1.1 * r, -1.1 * r), at(0, -0.45 * r), at(-1.1 * r, -1.1 * r)];
        ctx.beginPath();
        ctx.moveTo(points[0][0], points[0][1]);
        for (var i = 1; i < points.length; i++) ctx.lineTo(points[i][0], points[i][1]);
        ctx.closePath();
        renderer._fillStroke(ctx, this);
      }
    });
    return WorkerMark;
  }

  window.gridops = Object.assign({}, window.gridops);
  function format(template, values) {
    return (template || "").replace(/\{(\w+)\}/g, function (_, name) { return values[name]; });
  }

  window.gridops.wall = {
    config: { timing: {}, texts: {}, ids: {} },

    configure: function (state) {
      if (state && state.timing) {
        window.gridops.wall.config = { timing: state.timing, texts: state.texts || {}, ids: state.ids || {} };
      }
    },

    gridStyle: function (feature, context) {
      var h = context.hideout || {};
      var c = counts(h, feature.properties.code);
      var near = apparentZoom(h.zoom || 10) >= 11;   // basic grids when zoomed in, towns when out
      return {
        color: c[1] > 0 ? "#ff4d4f" : "#3b7ea1", weight: c[1] > 0 ? 1.6 : 0.5,
        fillColor: fill(c[0]), fillOpacity: near ? 0.55 : 0.08, opacity: near ? 0.9 : 0.25
      };
    },
    townStyle: function (feature, context) {
      var h = context.hideout || {};
      var c = counts(h, feature.properties.code);
      var far = apparentZoom(h.zoom || 10) < 11;
      return {
        color: c[1] > 0 ? "#ff4d4f" : "#7fb8e6", weight: far ? 2 : 1, dashArray: far ? null : "4 4",
        fillColor: fill(Math.round(c[0] / 10)), fillOpacity: far ? 0.45 : 0, opacity: 0.9
      };
    },
    /* Markers carry no text of their own: the layer's onEachFeature (gridops.map.label)
       binds each feature's label as a text tooltip. */
    /* workers: a green arrow pointing where the worker heads (a dot when the device sends no
       heading), white-edged, grey when offline, larger than a pin, on a canvas of their own
       above the pins (workerMark) */
    workerMarker: function (feature, latlng) {
      var p = feature.properties, s = scale();
      return new (workerMarkClass())(latlng, {
        pane: WORKER_PANE, radius: 7 * s, weight: 2 * s, heading: p.heading, color: p.online ? "#ffffff" : "#8a96a6",
        fillColor: p.online ? "#35d07f" : "#6b7a8c", fillOpacity: p.online ? 1 : 0.75
      });
    },

    /* the worker mark under a click, if any: the workers' canvas lets every click through (it
       covers the whole map, and would take the pins' and grids' clicks), so it is hit-tested here */
    workerAt: function (map, point) {
      var hit = null, best = Infinity;
      map.eachLayer(function (layer) {
        if (!layer._workerMark || !layer._point || !layer.feature) return;
        var d = layer._point.distanceTo(point);
        if (d <= layer.hitRadius() && d < best) { hit = layer; best = d; }
      });
      return hit;
    },
    trailStyle: function () {
      return Object.assign({}, TRAIL_STYLE, { weight: TRAIL_STYLE.weight * scale() });
    },
    pinSize: function () { return Math.round(14 * scale()); },
    casePin: function (feature, latlng) {
      var p = feature.properties, size = window.gridops.wall.pinSize();
      var fresh = Date.now() - p.reported < (window.gridops.wall.config.timing.fresh_ms || 0) ? " fresh" : "";
      var supervised = p.supervised ? " supervised" : "";
      var icon = L.divIcon({ className: "case-pin grade-" + p.grade + " state-" + p.state + " stage-" + p.stage + fresh + supervised, iconSize: [size, size] });
      // Leaflet sets the title as a property of the icon element: text, never markup
      return L.marker(latlng, { icon: icon, title: [].concat(p.label || []).join(" · ") });
    },
    caseCluster: function (feature, latlng, index, context) {
      var n = feature.properties.point_count;
      var size = Math.round((n < 10 ? 26 : n < 100 ? 32 : 40) * scale());
      var box = document.createElement("div");
      box.appendChild(window.gridops.text.element("span", n));
      var icon = L.divIcon({ html: box, className: "case-cluster", iconSize: L.point(size, size) });
      return L.marker(latlng, { icon: icon });
    },

    /* Merge a delta from the server into the layers' data, keyed by feature id. */
    merge: function (current, upserts, removals, reset) {
      var byId = {};
      if (!reset && current && current.features) {
        current.features.forEach(function (f) { byId[f.id] = f; });
      }
      (removals || []).forEach(function (id) { delete byId[id]; });
      (upserts || []).forEach(function (f) { byId[f.id] = f; });
      return { type: "FeatureCollection", features: Object.keys(byId).map(function (k) { return byId[k]; }) };
    },

    /* Apply compact moves [id, lon, lat, heading, speed, online, trail_lon, trail_lat]. */
    moveWorkers: function (current, moves, trailPoints) {
      var byId = {};
      ((current && current.features) || []).forEach(function (f) { byId[f.id] = f; });
      moves.forEach(function (m) {
        var old = byId[m[0]];
        var trail = old ? old.properties.trail.slice() : [];
        var last = trail[trail.length - 1];
        if (m[6] !== null && (!last || last[0] !== m[6] || last[1] !== m[7])) trail.push([m[6], m[7]]);
        if (trail.length > trailPoints) trail = trail.slice(trail.length - trailPoints);
        byId[m[0]] = {
          type: "Feature", id: m[0], geometry: { type: "Point", coordinates: [m[1], m[2]] },
          properties: { id: m[0], online: m[5], heading: m[3], speed: m[4], trail: trail, label: old ? old.properties.label : [m[0]] }
        };
      });
      return { type: "FeatureCollection", features: Object.keys(byId).map(function (k) { return byId[k]; }) };
    },

    /* One pull in flight at a time: signals heard meanwhile become one pull after it. */
    flow: { since: 0, pending: false },

    /* A pull was answered: pull again at once if signals came in meanwhile. (Not a callback
       of its own: answer → signal → pull would be a cycle, which Dash stops scheduling.) */
    answered: function (state) {
      var flow = window.gridops.wall.flow;
      if (!flow.pending) {
        flow.since = 0;
        return;
      }
      flow.since = Date.now();
      flow.pending = false;
      window.dash_clientside.set_props(state.ids.signal, { data: "pending-" + flow.since });
    },

    /* Worker moves wait here between redraws: drawing 5,000 markers and trails takes the
       browser a good part of 100 ms, and the pulls can come many times a second. */
    workerQueue: { moves: [], offline: [], last: 0, timer: null, current: null },

    queueWorkers: function (delta, workers, state) {
      var W = window.gridops.wall, q = W.workerQueue;
      q.current = q.current && q.current.features ? q.current : workers;
      q.moves.push.apply(q.moves, delta.worker_moves || []);
      q.offline.push.apply(q.offline, delta.workers_offline || []);
      if (!q.moves.length && !q.offline.length) return null;
      var wait = W.config.timing.worker_flush_ms - (Date.now() - q.last);
      if (wait <= 0) return W.flushWorkers(state);
      if (!q.timer) {
        q.timer = setTimeout(function () {
          q.timer = null;
          var out = W.flushWorkers(state);
          window.dash_clientside.set_props(state.ids.workers, { data: out[0] });
          window.dash_clientside.set_props(state.ids.trails, { data: out[1] });
        }, wait);
      }
      return null;
    },

    flushWorkers: function (state) {
      var W = window.gridops.wall, q = W.workerQueue;
      var out = W.moveWorkers(q.current, q.moves, (state && state.trail_points) || 10);
      var gone = {};
      q.offline.forEach(function (id) { gone[id] = true; });
      out.features = out.features.map(function (f) {
        return gone[f.id] ? Object.assign({}, f, { properties: Object.assign({}, f.properties, { online: false }) }) : f;
      });
      q.moves = [];
      q.offline = [];
      q.last = Date.now();
      q.current = out;
      return [out, W.trails(out)];
    },

    trails: function (workers) {
      return {
        type: "FeatureCollection",
        features: workers.features.filter(function (f) { return f.properties.online && f.properties.trail.length > 1; })
          .map(function (f) { return { type: "Feature", id: f.id, geometry: { type: "LineString", coordinates: f.properties.trail }, properties: {} }; })
      };
    },

    /* the same words as layouts/wall.py late_text, from the same templates */
    lateText: function (lateMs) {
      var texts = window.gridops.wall.config.texts;
      var minutes = Math.floor(Math.abs(lateMs) / 60000), h = Math.floor(minutes / 60), m = minutes % 60;
      var span = h ? format(texts.span_hours, { hours: h, minutes: (m < 10 ? "0" : "") + m }) : format(texts.span_minutes, { minutes: m });
      return (lateMs >= 0 ? texts.late_by : texts.left) + " " + span;
    },

    /* YYYY-MM-DD HH:MM:SS in both languages: 02/12/2026 reads as 2 December in one country and
       12 February in another */
    clockText: function (tz, lang) {
      var options = { timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" };
      var parts = {};
      new Intl.DateTimeFormat("en-US", options).formatToParts(new Date()).forEach(function (part) { parts[part.type] = part.value; });
      return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute + ":" + parts.second;
    },

    /* show one page of the ticker's rows (data-row), turning every ticker_page_s seconds; a page
       under the pointer stays, so that the row an operator is about to click does not turn away */
    pointer: null,  // where the mouse is ([x, y])
    pointedCase: null,  // the alert row (its case) the operator last moved the mouse onto
    followPointer: function () {
      var W = window.gridops.wall;
      if (W.followingPointer) return;
      W.followingPointer = true;
      document.addEventListener("mousemove", function (event) {
        // Only a move of the mouse itself: after a redraw the browser moves it "again" on the
        // same spot, onto whatever row the new list put there.
        var same = W.pointer && W.pointer[0] === event.clientX && W.pointer[1] === event.clientY;
        W.pointer = [event.clientX, event.clientY];
        if (!same) {
          var row = event.target && event.target.closest ? event.target.closest("li[data-row]") : null;
          W.pointedCase = row && row.dataset.case ? row.dataset.case : null;
        }
      });
      document.documentElement.addEventListener("mouseleave", function () { W.pointer = null; });
    },
    pageTicker: function (n) {
      var W = window.gridops.wall, config = W.config;
      W.followPointer();
      document.querySelectorAll("#" + config.ids.ticker + " .ticker-list[data-page]").forEach(function (list) {
        var size = Number(list.dataset.fit || list.dataset.page) || 5;
        var rows = list.querySelectorAll("li[data-row]");
        var pages = Math.max(1, Math.ceil(rows.length / size));
        var page = Math.floor(n / config.timing.ticker_page_s) % pages;
        /* A page under the pointer stays. The list is drawn anew whenever an alert changes,
           under a pointer that has not moved: the row the operator pointed at is held by its
           case, wherever the new list puts it. */
        var box = list.getBoundingClientRect(), at = W.pointer;
        if (at && at[0] >= box.left && at[0] <= box.right && at[1] >= box.top && at[1] <= box.bottom) {
          var held = W.pointedCase && list.querySelector('li[data-row][data-case="' + W.pointedCase + '"]');
          if (held) page = Math.floor(Number(held.dataset.row) / size);
          else if (list.querySelector("li[data-row]:not(.paged-out)")) return;
        }
        rows.forEach(function (row) {
          var index = Number(row.dataset.row);
          row.classList.toggle("paged-out", index < page * size || index >= (page + 1) * size);
        });
        list.querySelectorAll(".ticker-page").forEach(function (el) { el.textContent = (page + 1) + " / " + pages; });
      });
    },

    /* New danger (grade-A reports, grade-A cases fallen overdue) until acknowledged: its pins and
       alert rows flash; a key never heard before plays the alert sound where the wall was opened
       with ?sound=1 (what was there when the wall opened does not) */
    attention: null,
    soundsPlayed: 0,
    heedAttention: function (keys, state) {
      var W = window.gridops.wall, known = W.attention;
      var fresh = known ? keys.filter(function (key) { return !known[key]; }) : [];
      W.attention = {};
      keys.forEach(function (key) { W.attention[key] = true; });
      if (fresh.length && state.sound) {
        W.soundsPlayed += 1;
        try {
          var played = new Audio("/assets/alert.wav").play();
          if (played && played.catch) played.catch(function () {});  // a browser that forbids autoplay: the flash stays
        } catch (e) { /* no audio device */ }
      }
      W.markAttention();
    },
    markAttention: function () {
      var W = window.gridops.wall, cases = {};
      Object.keys(W.attention || {}).forEach(function (key) { cases[key.split("|")[0]] = true; });
      document.querySelectorAll(".case-pin[title]").forEach(function (pin) {
        pin.classList.toggle("attention", !!cases[pin.getAttribute("title").split(" ")[0]]);
      });
      document.querySelectorAll(".alert-row[data-case]").forEach(function (row) {
        row.classList.toggle("attention", !!cases[row.dataset.case]);
      });
    },

    /* the dispatch board: as many departments as its panel holds, worst first, and a last line
       saying how many it leaves out; fitted again when the board is redrawn or the screen resized */
    /* the ticker's rows on one line where their words fit, else on two; and as many rows a page
       as its panel holds (at most the server's page); once per rendered list and whenever the
       panel's size changes (it settles after the charts beside it are drawn). Nothing is measured
       otherwise: a layout forced every second would hold up the pins. */
    tickerSize: 0,
    fitTicker: function () {
      var W = window.gridops.wall, config = W.config;
      document.querySelectorAll("#" + config.ids.ticker + " .ticker-list[data-page]").forEach(function (list) {
        var panel = list.closest(".wall-panel");
        if (!W.tickerWatch && window.ResizeObserver) {
          W.tickerWatch = new ResizeObserver(function () { W.tickerSize += 1; });
          W.tickerWatch.observe(panel);
        }
        var size = String(W.tickerSize);
        if (list.dataset.fitted === size) return;
        var rows = Array.prototype.slice.call(list.querySelectorAll("li[data-row]"));
        if (!rows.length) { list.dataset.fitted = size; return; }
        list.classList.remove("two-line");
        rows.forEach(function (row) { row.classList.remove("paged-out"); });
        var cut = rows.some(function (row) {
          return Array.prototype.some.call(row.querySelectorAll(".alert-category, .alert-grid, .alert-dept"), function (cell) {
            return cell.scrollWidth > cell.clientWidth + 1;
          });
        });
        list.classList.toggle("two-line", cut);
        rows.forEach(function (row, index) { row.classList.toggle("paged-out", index > 0); });
        var footer = list.querySelector(".ticker-footer");
        var bottom = panel.getBoundingClientRect().bottom - parseFloat(getComputedStyle(panel).paddingBottom || "0");
        var room = bottom - rows[0].getBoundingClientRect().top - (footer ? footer.getBoundingClientRect().height : 0);
        var fits = Math.max(1, Math.floor(room / Math.max(1, rows[0].getBoundingClientRect().height)));
        list.dataset.fit = String(Math.min(Number(list.dataset.page) || 5, fits));
        list.dataset.fitted = size;
      });
    },

    fitBoard: function () {
      var table = document.querySelector("#" + window.gridops.wall.config.ids.board + " .board-table");
      if (!table) return;
      var size = window.innerWidth + "x" + window.innerHeight;
      if (table.dataset.fitted === size) return;
      var panel = table.closest(".wall-panel") || table.parentElement;
      var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-dept]"));
      var more = table.querySelector("tr.board-more");
      rows.forEach(function (row) { row.hidden = false; });
      if (more) more.hidden = true;
      var bottom = panel.getBoundingClientRect().bottom - parseFloat(getComputedStyle(panel).paddingBottom || "0");
      var hidden = 0;
      while (rows.length - hidden > 1 && table.getBoundingClientRect().bottom > bottom + 0.5) {
        rows[rows.length - 1 - hidden].hidden = true;
        hidden += 1;
        if (more) {
          more.hidden = false;
          more.firstElementChild.textContent = more.dataset.template.replace("{n}", hidden);
        }
      }
      table.dataset.fitted = size;
    },

    timeText: function (ms, tz) {
      return new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(ms));
    }
  };

  /* On the duty desk's own wall (not a kiosk, which nobody clicks and whose token may not open
     the review) a case is one click away: an alert row or a pin opens the review's case panel,
     a row of the dispatch board the review of that department's cases, in a new tab (the wall
     keeps running); the page's language goes along. */
  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target : null;
    var wall = target && target.closest(".wall");
    if (!wall || wall.classList.contains("kiosk")) return;
    var lang = wall.getAttribute("lang") === "en" ? "&lang=en" : "";
    var row = target.closest(".alert-row[data-case]");
    var pin = target.closest(".case-pin[title]");
    var dept = target.closest(".board-table tr[data-dept]");
    var url = row ? "/review?case=" + encodeURIComponent(row.dataset.case)
      : pin ? "/review?case=" + encodeURIComponent(pin.getAttribute("title").split(" ")[0])
      : dept ? "/review?window=30d&dept=" + encodeURIComponent(dept.dataset.dept) : null;
    if (url) window.open(url + lang, "_blank", "noopener");
  });

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridops_wall: {
      /* delta or zoom changed → new layer data and styles; remember when data last arrived. */
      apply: function (delta, zoom, cases, workers, grids, towns, state) {
        var W = window.gridops.wall;
        W.configure(state);
        var noUpdate = window.dash_clientside.no_update;
        var triggered = (window.dash_clientside.callback_context.triggered || []).map(function (t) { return t.prop_id; });
        var z = zoom || 10;
        var gridsOut = Object.assign({}, grids, { zoom: z });
        var townsOut = Object.assign({}, towns, { zoom: z });
        if (triggered.length === 1 && triggered[0].indexOf("zoom") >= 0) {
          return [noUpdate, noUpdate, noUpdate, gridsOut, townsOut, noUpdate];
        }
        if (!delta) return [noUpdate, noUpdate, noUpdate, noUpdate, noUpdate, noUpdate];
        var casesOut = (delta.cases || delta.cases_remove || delta.reset_cases) ? W.merge(cases, delta.cases, delta.cases_remove, delta.reset_cases) : noUpdate;
        var flushed = W.queueWorkers(delta, workers, state);
        var workersOut = flushed ? flushed[0] : noUpdate, trailsOut = flushed ? flushed[1] : noUpdate;
        W.answered(state);
        if (delta.attention) W.heedAttention(delta.attention, state);
        // a new hideout restyles every grid: only when the counts changed
        if (delta.grid_counts) gridsOut.counts = delta.grid_counts;
        if (delta.town_counts) townsOut.counts = delta.town_counts;
        var fresh = triggered.some(function (t) { return t.indexOf("zoom") >= 0; });
        return [casesOut, workersOut, trailsOut, delta.grid_counts || fresh ? gridsOut : noUpdate,
                delta.town_counts || fresh ? townsOut : noUpdate, Date.now()];
      },

      /* every second: clock, feed health, ageing alerts, staleness and reconnecting. */
      tick: function (n, lastOk, delta, state, streamUrl, streamHeard) {
        var W = window.gridops.wall;
        W.configure(state);
        var timing = W.config.timing, texts = W.config.texts, ids = W.config.ids;
        var tz = state.tz;
        var now = Date.now();
        if (W.attention === null) W.heedAttention(state.attention || [], state);
        else W.markAttention();  // pins come and go with zoom and clusters
        document.querySelectorAll("#" + ids.ticker + " .late[data-deadline], #" + ids.overdue_view + " .late[data-deadline]").forEach(function (el) {
          el.textContent = W.lateText(now - Number(el.dataset.deadline));
        });
        W.fitTicker();
        W.pageTicker(n || 0);
        W.fitBoard();
        // the server's verdict first (no consumer, an outage, lagging: red or amber whatever the
        // age), then the age of the last message the consumer received
        var feed = (delta && delta.feed) || state.feed || {};
        var age = feed.last_ms ? Math.max(0, Math.round((now - feed.last_ms) / 1000)) : null;
        var health = age === null ? "health health-unknown" : age < timing.health_ok_s ? "health health-ok" : age < timing.health_warn_s ? "health health-warn" : "health health-down";
        var healthText = age === null ? texts.feed_no_data : format(texts.feed_age, { seconds: age });
        if (feed.state && feed.state !== "ok") {
          health = feed.state === "lagging" ? "health health-warn" : "health health-down";
          healthText = feed.text || healthText;
        }
        var stale = "", url = window.dash_clientside.no_update;
        var silent = streamHeard && now - streamHeard > timing.silent_ms;
        if (lastOk && now - lastOk > timing.stale_ms) {
          stale = texts.stale_since + " " + W.timeText(lastOk, tz);
        }
        // the browser gives up on an event stream after some errors (a server restart):
        // ask for a fresh one every ten seconds while it is silent or the data is stale
        if ((stale || silent) && n % 10 === 0) {
          url = streamUrl.split("&n=")[0] + "&n=" + n;
        }
        return [W.clockText(tz, state.lang), health, healthText, stale, url];
      },

      /* the wall's width against 1920 px, so the server can size chart fonts; only when it changes. */
      measure: function (n, scale) {
        var now = Math.round(window.innerWidth / 1920 * 100) / 100;
        return now === scale ? window.dash_clientside.no_update : now;
      },

      /* a message on the stream: note that it is alive; pass on change signals, not heartbeats. */
      heard: function (message, state) {
        var W = window.gridops.wall, flow = W.flow, now = Date.now();
        W.configure(state);
        var quiet = typeof message === "string" && (message.indexOf('"hb"') >= 0 || message.indexOf('"redis"') >= 0);
        if (quiet) return [window.dash_clientside.no_update, now];
        // a new pull while one is out would make Dash drop the first answer: under a
        // fast feed no answer would ever land, so wait for it and pull once after
        if (flow.since && now - flow.since < W.config.timing.in_flight_max_ms) {
          flow.pending = true;
          return [window.dash_clientside.no_update, now];
        }
        flow.since = now;
        flow.pending = false;
        return [message, now];
      },

      /* the stream ended (server recycles it): open a new one. */
      reconnect: function (done, url) {
        if (!done) return window.dash_clientside.no_update;
        return url.split("&n=")[0] + "&n=" + Date.now();
      },

      /* rotation: district, each town, the overdue list, then again. */
      rotate: function (n, view, state) {
        var stops = 1 + (state.towns || []).length + 1;
        return { index: ((view && view.index) || 0) + 1 === stops ? 0 : ((view && view.index) || 0) + 1 };
      }
    }
  });
})();
