// The invariant console's only script: small partial refreshes, and confirmations.
// An element with data-refresh="<url>" is replaced every data-every milliseconds by the
// fragment the console serves at <url> (not while the page is hidden, nor while a form
// inside it has focus); a checkbox with data-toggles="<id>" switches that refresh off and
// on. A form with data-confirm="<question>" is sent only if the operator agrees.
(function () {
  "use strict";

  function refresh(element) {
    var every = parseInt(element.getAttribute("data-every"), 10) || 2000;
    function tick() {
      var paused = element.getAttribute("data-paused") === "true" || document.hidden ||
        element.contains(document.activeElement);
      if (paused) { window.setTimeout(tick, every); return; }
      fetch(element.getAttribute("data-refresh"), {
        credentials: "same-origin", headers: {"X-Console-Partial": "1"}
      }).then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      }).then(function (html) {
        if (html !== null && html !== undefined) { element.innerHTML = html; }
      }).catch(function () { /* the server is away: try again at the next tick */ })
        .then(function () { window.setTimeout(tick, every); });
    }
    window.setTimeout(tick, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(refresh);
    document.querySelectorAll("[data-toggles]").forEach(function (box) {
      box.addEventListener("change", function () {
        var target = document.getElementById(box.getAttribute("data-toggles"));
        if (target) { target.setAttribute("data-paused", box.checked ? "false" : "true"); }
      });
    });
  });

  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
}());
