/* Progressive enhancement only: every form works without this file.
   - Consent switches save in place (fetch) instead of reloading the page.
   - The language menu applies on change (its button stays for keyboard and no-JS use). */
(function () {
  "use strict";
  var live = document.getElementById("live");

  function announce(text) {
    if (live) { live.textContent = ""; window.setTimeout(function () { live.textContent = text; }, 30); }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-switch]")) { return; }
    var button = form.querySelector("button[role=switch]");
    var value = form.querySelector("input[name=value]");
    if (!window.fetch || !button || !value) { return; }
    event.preventDefault();
    var data = new FormData(form);
    button.disabled = true;
    fetch(form.action, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" }
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      button.disabled = false;
      if (!result.ok) { announce(result.body.error || ""); return; }
      var on = result.body.state === "on";
      var pending = result.body.state === "pending";
      button.setAttribute("aria-checked", on ? "true" : "false");
      button.classList.toggle("pending", pending);
      value.value = (on || pending) ? "off" : "on";
      var label = button.querySelector(".state");
      if (label) { label.textContent = button.getAttribute(on ? "data-on" : pending ? "data-pending" : "data-off"); }
      announce(result.body.message || "");
    }).catch(function () { button.disabled = false; form.submit(); });
  });

  var select = document.querySelector("select[data-autosubmit]");
  if (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  }
})();
