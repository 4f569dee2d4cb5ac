/* Progressive enhancement only: every form works without this file.
   - Consent switches save in place (fetch) instead of reloading the page.
   - The language menu applies on change (its button stays for keyboard and no-JS use).
   - "Request new code" stays disabled while the server's cooldown runs, the seconds
     counting down (the server says how many; without this file the page says it once and
     the server refuses an early request). */
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

  var wait = document.querySelector("form[data-resend] [data-resend-in]");
  if (wait) {
    var resend = wait.parentNode.querySelector("button[type=submit]");
    var left = parseInt(wait.getAttribute("data-resend-in"), 10) || 0;
    var lang = document.documentElement.lang || "en";
    var rules = window.Intl && Intl.PluralRules ? new Intl.PluralRules(lang) : null;
    var sentence = function (n) {
      var form = wait.getAttribute("data-" + (rules ? rules.select(n) : "other")) || wait.getAttribute("data-other") || "";
      return form.replace("{n}", String(n));
    };
    if (left > 0 && resend) {
      // Counted against the clock, not the ticks: timers slow down in background tabs.
      var until = Date.now() + left * 1000;
      resend.disabled = true;
      var tick = function () {
        var now = Math.max(Math.ceil((until - Date.now()) / 1000), 0);
        if (now > 0) {
          wait.textContent = sentence(now);
          window.setTimeout(tick, 250);
          return;
        }
        wait.hidden = true;
        resend.disabled = false;
      };
      tick();
    }
  }

  Array.prototype.forEach.call(document.querySelectorAll("select[data-autosubmit]"), function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // The browser's time zone, for the server to show times in (privacy/timezones.py). Only
  // when the person has not picked one; the next page shows it.
  var zoneForm = document.querySelector("form[data-tz]");
  if (zoneForm && !/(?:^|;\s*)tz=/.test(document.cookie) && window.Intl && Intl.DateTimeFormat) {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && zone !== zoneForm.getAttribute("data-tz")) {
      document.cookie = "tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax" +
        (location.protocol === "https:" ? "; Secure" : "");
    }
  }
})();
