/* Map styling functions, referenced from Python by name ({"variable": "gridops.map.gridStyle"}),
   and the one way the maps show text: as text.

   Names, ids and free text on the map come from feeds and import files and may hold
   anything. Leaflet parses a string given to bindTooltip, bindPopup or a divIcon's html as
   HTML, and so does dash-leaflet's default binding of properties.tooltip and .popup. Here
   a feature carries a plain-text properties.label (a string or a list of lines); every
   GeoJSON layer binds it with gridops.map.label (layouts.widgets.geojson sets it), which
   builds the tooltip from text nodes, so nothing is ever parsed. */
(function () {
  /* A <div> holding each line in a <div> of its own, set with textContent. */
  function textBox(lines) {
    var box = document.createElement("div");
    [].concat(lines === undefined || lines === null ? [] : lines).forEach(function (line) {
      var row = document.createElement("div");
      row.textContent = String(line);
      box.appendChild(row);
    });
    return box;
  }

  /* Bind a tooltip of text lines to a layer. A function, so that Leaflet builds the node
     only when the tooltip opens (thousands of markers carry a label). */
  function bindLabel(layer, lines, options) {
    if (lines === undefined || lines === null || (Array.isArray(lines) && !lines.length)) return layer;
    return layer.bindTooltip(function () { return textBox(lines); }, options);
  }

  /* An element with its text set as text (for divIcons: never an HTML string). */
  function textElement(tag, text) {
    var element = document.createElement(tag);
    element.textContent = String(text);
    return element;
  }

  /* The one colour ramp of every map: none, few … many (five steps), defined once in
     gridops.css (--ramp-0 … --ramp-4), where the legends take it from too. */
  var ramp = null;
  function rampColour(step) {
    if (!ramp) {
      var style = getComputedStyle(document.documentElement);
      ramp = [0, 1, 2, 3, 4].map(function (n) { return style.getPropertyValue("--ramp-" + n).trim(); });
    }
    return ramp[step];
  }

  /* Show a name marker only where its area is wider on screen than the name, and the name
     overlaps no other shown. */
  function fitName(marker, feature) {
    var map = marker._map, element = marker.getElement();
    if (!map || !element) return;
    var p = feature.properties || {}, lat = marker.getLatLng().lat;
    var width = map.latLngToContainerPoint([lat, p.east]).x - map.latLngToContainerPoint([lat, p.west]).x;
    var text = element.firstChild;
    element.style.visibility = "hidden";
    element.style.display = "";
    var shown = text && text.offsetWidth + 8 <= width;
    if (shown) {  // nor over a neighbour's name already shown
      var box = text.getBoundingClientRect();
      shown = ![].some.call(element.parentNode.querySelectorAll(".area-name"), function (other) {
        if (other === element || other.style.display === "none") return false;
        var b = other.firstChild.getBoundingClientRect();
        return box.left < b.right && b.left < box.right && box.top < b.bottom && b.top < box.bottom;
      });
    }
    element.style.display = shown ? "" : "none";
    element.style.visibility = "";
  }

  window.gridops = Object.assign({}, window.gridops, {
    text: { box: textBox, bindLabel: bindLabel, element: textElement },
    map: {
      /* The ramp's colour for a number of open cases: 0, 1, 2–3, 4–6, 7 or more. */
      openColour: function (open) {
        return rampColour(open === 0 ? 0 : open < 2 ? 1 : open < 4 ? 2 : open < 7 ? 3 : 4);
      },
      /* The ramp's colour for a share 0..1 of the largest value. */
      shareColour: function (share) {
        return rampColour(share === 0 ? 0 : share < 0.25 ? 1 : share < 0.5 ? 2 : share < 0.75 ? 3 : 4);
      },
      /* pointToLayer of a layer of area names: the name as text at the point, not
         interactive (a click goes to the area under it), hidden where it does not fit. */
      nameMarker: function (feature, latlng) {
        var name = textElement("span", (feature.properties || {}).name || "");
        var icon = L.divIcon({ className: "area-name", html: name, iconSize: null });
        var marker = L.marker(latlng, { icon: icon, interactive: false, keyboard: false });
        function fit() { fitName(marker, feature); }
        marker.on("add", function () { fit(); marker._map.on("zoomend", fit); });
        marker.on("remove", function (event) { event.target._map && event.target._map.off("zoomend", fit); });
        return marker;
      },
      /* pointToLayer of the case panel's map: the case's place. */
      casePoint: function (feature, latlng) {
        return L.circleMarker(latlng, { radius: 7, color: "#ffffff", weight: 2, fillColor: "#ff4d4f", fillOpacity: 1, interactive: false });
      },
      /* onEachFeature of every GeoJSON layer: the feature's label as a text tooltip. */
      label: function (feature, layer) {
        bindLabel(layer, (feature.properties || {}).label);
      },
      /* Shade a grid by its open cases; red outline once any is overdue. */
      gridStyle: function (feature) {
        var p = feature.properties || {};
        var fill = window.gridops.map.openColour(p.open || 0);
        return {
          color: p.overdue > 0 ? "#ff4d4f" : "#3b7ea1",
          weight: p.overdue > 0 ? 1.6 : 0.6,
          fillColor: fill,
          fillOpacity: 0.55,
          opacity: 0.9
        };
      },
      areaStyle: function (feature, context) {
        var p = feature.properties || {};
        var max = (context.hideout || {}).max || 1;
        var fill = window.gridops.map.shareColour((p.reported || 0) / max);
        return { color: p.overdue > 0 ? "#ff4d4f" : "#5aa9d6", weight: p.overdue > 0 ? 2 : 1, fillColor: fill, fillOpacity: 0.6, opacity: 0.9 };
      },
      hoverStyle: function () {
        return { weight: 3, color: "#ffffff", fillOpacity: 0.75 };
      }
    }
  });
})();
