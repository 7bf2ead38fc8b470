/* Callbacks every page shares. No network access of its own beyond reloading this page. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  gridops_app: {
    /* An unavailable page's timer ran out: load the page again (the outage may be over). */
    reload: function (n) {
      if (n) window.location.reload();
      return true;
    }
  }
});
