// Live count for the segment editor: posts the form's purpose, channel and rules to the
// count endpoint (nothing is saved) and shows the funnel or the validator's messages.
(function () {
  "use strict";
  function ready(fn) { document.readyState !== "loading" ? fn() : document.addEventListener("DOMContentLoaded", fn); }
  ready(function () {
    var panel = document.getElementById("live-count");
    if (!panel) { return; }
    var form = panel.closest("form");
    var button = document.getElementById("live-count-button");
    var status = document.getElementById("live-count-status");
    var errors = document.getElementById("live-count-errors");
    var table = document.getElementById("live-count-table");
    var timer = null;

    function field(name) { var el = form.querySelector("[name='" + name + "']"); return el ? el.value : ""; }

    function count() {
      var body = new FormData();
      body.append("purpose", field("purpose"));
      body.append("channel", field("channel"));
      body.append("rules", field("rules"));
      body.append("csrfmiddlewaretoken", field("csrfmiddlewaretoken"));
      status.textContent = "…";
      fetch(panel.dataset.countUrl, { method: "POST", body: body, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          errors.replaceChildren();
          status.textContent = "";
          if (data.errors) {
            table.hidden = true;
            data.errors.forEach(function (message) {
              var li = document.createElement("li"); li.textContent = message; errors.appendChild(li);
            });
            return;
          }
          Object.keys(data.counts).forEach(function (step) {
            var cell = table.querySelector("[data-step='" + step + "']");
            if (cell) { cell.textContent = data.counts[step].toLocaleString(); }
          });
          table.hidden = false;
        })
        .catch(function () { status.textContent = "!"; });
    }

    button.addEventListener("click", count);
    var rules = form.querySelector("[name='rules']");
    if (rules) {
      rules.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(count, 800); });
    }
  });
})();
