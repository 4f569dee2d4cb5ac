// The segment form around the builder: purposes of the chosen brand only and channels of
// the chosen purpose only (the server checks both again), and the live count, which posts
// the form's purpose, channel and rules to the count endpoint (nothing is saved) and shows
// the consent funnel step by step, with who each step leaves out, or the validator's messages.
(function () {
  "use strict";
  function ready(fn) { document.readyState !== "loading" ? fn() : document.addEventListener("DOMContentLoaded", fn); }
  var STEPS = ["matched", "consented", "under_cap", "reachable"];

  function narrowChoices(form) {
    var data = document.getElementById("segment-purposes-data");
    var brand = form.querySelector("[name='brand']");
    var purpose = form.querySelector("select[name='purpose']");
    var channel = form.querySelector("select[name='channel']");
    if (!data || !purpose) { return; }
    var purposes = {};
    JSON.parse(data.textContent).forEach(function (p) { purposes[String(p.id)] = p; });
    function show(option, visible) { option.hidden = !visible; option.disabled = !visible; }
    function channels() {
      if (!channel) { return; }
      var chosen = purposes[purpose.value];
      var allowed = chosen ? (chosen.channels.length ? chosen.channels : [""]) : null;
      Array.prototype.forEach.call(channel.options, function (option) {
        show(option, !allowed || allowed.indexOf(option.value) >= 0 || (option.value === "" && !chosen));
      });
      if (allowed && allowed.indexOf(channel.value) < 0) { channel.value = allowed.length === 1 ? allowed[0] : ""; }
    }
    function brandPurposes() {
      var chosenBrand = brand ? brand.value : "";
      Array.prototype.forEach.call(purpose.options, function (option) {
        var p = purposes[option.value];
        show(option, !p || !chosenBrand || String(p.brand) === chosenBrand);
      });
      var current = purposes[purpose.value];
      if (current && chosenBrand && String(current.brand) !== chosenBrand) { purpose.value = ""; }
      channels();
    }
    if (brand) { brand.addEventListener("change", brandPurposes); }
    purpose.addEventListener("change", channels);
    brandPurposes();
  }

  ready(function () {
    var panel = document.getElementById("live-count");
    if (!panel) { return; }
    var form = panel.closest("form");
    narrowChoices(form);
    var button = document.getElementById("live-count-button");
    var status = document.getElementById("live-count-status");
    var errors = document.getElementById("live-count-errors");
    var table = document.getElementById("live-count-table");
    var timer = null;

    function field(name) { var el = form.querySelector("[name='" + name + "']"); return el ? el.value : ""; }

    function count() {
      if (!field("purpose")) { return; }
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
          var before = null;
          STEPS.forEach(function (step) {
            var cell = table.querySelector("[data-step='" + step + "']");
            var drop = table.querySelector("[data-drop='" + step + "']");
            var n = data.counts[step];
            if (cell) { cell.textContent = n.toLocaleString(); }
            if (drop) { drop.textContent = before === null ? "" : (before === n ? "0" : "−" + (before - n).toLocaleString()); }
            before = n;
          });
          table.hidden = false;
        })
        .catch(function () { status.textContent = "!"; });
    }
    function later() { clearTimeout(timer); timer = setTimeout(count, 800); }

    button.addEventListener("click", count);
    ["rules", "purpose", "channel"].forEach(function (name) {
      var el = form.querySelector("[name='" + name + "']");
      if (el) { el.addEventListener(name === "rules" ? "input" : "change", later); }
    });
  });
})();
