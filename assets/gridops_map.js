/* Map styling functions, referenced from Python by name ({"variable": "gridops.map.gridStyle"}). */
window.gridops = Object.assign({}, window.gridops, {
  map: {
    /* Shade a grid by its open cases; red outline once any is overdue. */
    gridStyle: function (feature) {
      var p = feature.properties || {};
      var open = p.open || 0;
      var fill = open === 0 ? "#10324a" : open < 2 ? "#1f5f7a" : open < 4 ? "#2f8f9d" : open < 7 ? "#e0a526" : "#e8590c";
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
      var share = (p.reported || 0) / max;
      var fill = share === 0 ? "#10324a" : share < 0.25 ? "#1f5f7a" : share < 0.5 ? "#2f8f9d" : share < 0.75 ? "#e0a526" : "#e8590c";
      return { color: p.overdue > 0 ? "#ff4d4f" : "#5aa9d6", weight: p.overdue > 0 ? 2 : 1, fillColor: fill, fillOpacity: 0.6, opacity: 0.9 };
    },
    hoverStyle: function () {
      return { weight: 3, color: "#ffffff", fillOpacity: 0.75 };
    }
  }
});
