// Live counts: elements marked data-live="<key>" are refreshed from /ui/counts without
// reloading the page (every data-refresh milliseconds on <body>, 10 s by default).
(function () {
  "use strict";
  var body = document.body;
  var every = parseInt(body.getAttribute("data-refresh") || "10000", 10);
  if (!document.querySelector("[data-live]") || !(every > 0)) { return; }
  function refresh() {
    fetch("/ui/counts", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (counts) {
        if (!counts) { return; }
        document.querySelectorAll("[data-live]").forEach(function (el) {
          var v = counts[el.getAttribute("data-live")];
          if (v !== undefined && el.textContent !== String(v)) { el.textContent = String(v); }
        });
      })
      .catch(function () { /* the next tick tries again */ });
  }
  refresh();
  setInterval(refresh, every);
}());
