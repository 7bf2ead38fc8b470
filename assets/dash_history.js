/* Keep Dash's undo history short.

   dash-renderer appends every input prop change that does not come from a server answer
   (each tick of a dcc.Interval, each message of the wall's event stream, each zoom) to
   store.history.past and never drops any (plotly/dash#727): a wall open for days keeps
   them all. Worse, each stream message is a slice of the event stream's whole response text
   so far, so every entry holds a copy of that text outside V8's heap. Nothing reads the
   history but undo/redo (never shown here) and the error recovery, which needs the last
   entry only: trim it in place every few seconds. */
(function () {
  var KEEP = 5;
  var EVERY_MS = 5000;

  setInterval(function () {
    var history = window.store && window.store.getState().history;
    var past = history && history.past;
    // in place: the renderer builds each next history from this array
    if (past && past.length > KEEP) past.splice(0, past.length - KEEP);
  }, EVERY_MS);
})();
