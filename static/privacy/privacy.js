/* Progressive enhancement only: every form works without this file.
   - Consent switches save in place (fetch) instead of reloading the page, with a visible
     "Saved" (or the error) next to the switch; a withdrawal offers "Undo" for a few
     seconds, counting down (the same form the message shows without this file).
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

  var lang = document.documentElement.lang || "en";
  var rules = window.Intl && Intl.PluralRules ? new Intl.PluralRules(lang) : null;

  // A sentence with {n} in the plural form the page's language uses for n (the server puts
  // each form in a data-one / data-few / data-many / data-other attribute).
  function plural(element, n) {
    var text = element.getAttribute("data-" + (rules ? rules.select(n) : "other")) || element.getAttribute("data-other") || "";
    return text.replace("{n}", String(n));
  }

  // Counted against the clock, not the ticks: timers slow down in background tabs.
  function countdown(seconds, each, done) {
    var until = Date.now() + seconds * 1000;
    var tick = function () {
      var left = Math.max(Math.ceil((until - Date.now()) / 1000), 0);
      if (left > 0) { each(left); window.setTimeout(tick, 250); } else { done(); }
    };
    tick();
  }

  function showState(button, state) {
    var on = state === "on", pending = state === "pending";
    button.setAttribute("aria-checked", on ? "true" : "false");
    button.classList.toggle("pending", pending);
    var value = button.form && button.form.querySelector("input[name=value]");
    if (value) { value.value = (on || pending) ? "off" : "on"; }
    var label = button.querySelector(".state");
    if (label) { label.textContent = button.getAttribute(on ? "data-on" : pending ? "data-pending" : "data-off"); }
  }

  // The visible word next to a switch: "Saving…", "✓ Saved 14:03", or the error.
  function mark(form, kind, text) {
    var spot = form.querySelector("[data-saved-mark]");
    if (!spot) { return; }
    spot.hidden = false;
    spot.className = "saved-mark" + (kind === "error" ? " error" : "");
    spot.textContent = "";
    if (kind === "saved") {
      var tick = document.createElement("span");
      tick.setAttribute("aria-hidden", "true");
      tick.textContent = "\u2713 ";
      spot.appendChild(tick);
      var time = window.Intl && Intl.DateTimeFormat
        ? new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" }).format(new Date()) : "";
      spot.appendChild(document.createTextNode(spot.getAttribute("data-saved") + (time ? " " + time : "")));
    } else {
      spot.textContent = kind === "saving" ? spot.getAttribute("data-saving") : text;
    }
  }

  function post(form) {
    return fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" }
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    });
  }

  // The Undo form of a withdrawal: counts down, and goes when its time is up.
  function startUndo(form) {
    var left = form.querySelector("[data-undo-left]");
    var seconds = left ? parseInt(left.getAttribute("data-undo-left"), 10) || 0 : 0;
    var gone = function () {
      var toast = form.closest(".undo-toast");
      (toast || form).remove();
    };
    countdown(seconds, function (n) { if (left) { left.textContent = plural(left, n); } }, gone);
  }

  function offerUndo(switchForm, undo) {
    var template = document.getElementById("undo-template");
    var choice = switchForm.closest(".choice");
    if (!template || !choice || !undo || !undo.token) { return; }
    var old = choice.nextElementSibling;
    if (old && old.classList.contains("undo-toast")) { old.remove(); }
    var toast = template.content.firstElementChild.cloneNode(true);
    var form = toast.querySelector("form[data-undo]");
    form.action = undo.url;
    form.querySelector("input[name=token]").value = undo.token;
    form.querySelector("input[name=next]").value = location.pathname + "#" + choice.id;
    var left = form.querySelector("[data-undo-left]");
    if (left) { left.setAttribute("data-undo-left", String(undo.seconds)); }
    choice.parentNode.insertBefore(toast, choice.nextSibling);
    startUndo(form);
  }

  function saveSwitch(form) {
    var button = form.querySelector("button[role=switch]");
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    mark(form, "saving");
    post(form).then(function (result) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      if (!result.ok) {
        mark(form, "error", result.body.error || "");
        announce(result.body.error || "");
        return;
      }
      showState(button, result.body.state);
      mark(form, "saved");
      announce(result.body.message || "");
      if (result.body.undo) { offerUndo(form, result.body.undo); }
    }).catch(function () { button.disabled = false; button.removeAttribute("aria-busy"); form.submit(); });
  }

  function sendUndo(form) {
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    post(form).then(function (result) {
      var toast = form.closest(".undo-toast");
      if (!result.ok) {
        var note = document.createElement("span");
        note.className = "error";
        note.textContent = result.body.error || "";
        form.replaceWith(note);
        announce(result.body.error || "");
        return;
      }
      (result.body.switches || []).forEach(function (restored) {
        var choice = document.getElementById("p-" + restored.key);
        var switchButton = choice && choice.querySelector("button[role=switch]");
        if (switchButton) { showState(switchButton, restored.state); mark(switchButton.form, "saved"); }
      });
      (toast || form).remove();
      announce(result.body.message || "");
    }).catch(function () { button.disabled = false; button.removeAttribute("aria-busy"); form.submit(); });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!window.fetch || !form.matches) { return; }
    if (form.matches("form[data-switch]") && form.querySelector("button[role=switch]") &&
        form.querySelector("input[name=value]")) {
      event.preventDefault();
      saveSwitch(form);
    } else if (form.matches("form[data-undo]")) {
      event.preventDefault();
      sendUndo(form);
    }
  });

  // An Undo form in a message (a withdrawal saved without the script, or "withdraw everything").
  Array.prototype.forEach.call(document.querySelectorAll(".messages form[data-undo]"), startUndo);

  var wait = document.querySelector("form[data-resend] [data-resend-in]");
  if (wait) {
    var resend = wait.parentNode.querySelector("button[type=submit]");
    var left = parseInt(wait.getAttribute("data-resend-in"), 10) || 0;
    if (left > 0 && resend) {
      resend.disabled = true;
      countdown(left, function (n) { wait.textContent = plural(wait, n); }, function () {
        wait.hidden = true;
        resend.disabled = false;
      });
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
