// Form-based builder for the common case: one list of conditions joined by "all" or "any".
// It edits the rules JSON textarea (the source of truth, which still works without
// JavaScript); nested rules are left to the JSON, with a note saying so.
(function () {
  "use strict";
  function ready(fn) { document.readyState !== "loading" ? fn() : document.addEventListener("DOMContentLoaded", fn); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }
  var LIST_OPS = ["in", "not_in", "all"];

  ready(function () {
    var root = document.getElementById("rule-builder");
    var textarea = document.querySelector("textarea[name='rules']");
    var fieldsData = document.getElementById("rule-fields-data");
    if (!root || !textarea || !fieldsData) { return; }
    var FIELDS = JSON.parse(fieldsData.textContent);
    var byName = {};
    FIELDS.forEach(function (f) { byName[f.name] = f; });
    var rowsBox = root.querySelector("[data-rows]");
    var joiner = root.querySelector("[data-joiner]");
    var note = root.querySelector("[data-note]");

    function parseValue(field, op, text) {
      var parts = text.split(/[,，]/).map(function (s) { return s.trim(); }).filter(Boolean);
      var convert = field.kind === "number" ? function (s) { var n = Number(s); return isNaN(n) ? s : n; } : function (s) { return s; };
      if (LIST_OPS.indexOf(op) >= 0) { return parts.map(convert); }
      if (op === "between") { return parts.slice(0, 2).map(convert); }
      if (op === "within_last_days") { return Number(text.trim()); }
      return convert(text.trim());
    }
    function showValue(value) { return Array.isArray(value) ? value.join(", ") : (value === undefined ? "" : String(value)); }

    function addRow(leaf) {
      leaf = leaf || { field: "city", op: "in", value: [] };
      var fieldSelect = el("select", { "aria-label": root.dataset.labelField });
      FIELDS.forEach(function (f) { fieldSelect.appendChild(el("option", { value: f.name, text: f.name })); });
      fieldSelect.value = leaf.field;
      var opSelect = el("select", { "aria-label": root.dataset.labelOp });
      var valueInput = el("input", { type: "text", size: "28", "aria-label": root.dataset.labelValue });
      var daysInput = el("input", { type: "number", min: "1", size: "5", placeholder: "within_days", "aria-label": "within_days" });
      var remove = el("button", { type: "button", class: "button", text: "×", "aria-label": root.dataset.labelRemove });
      var hint = el("span", { class: "help" });
      var row = el("div", { class: "rule-row" }, [fieldSelect, opSelect, valueInput, daysInput, remove, hint]);

      function refreshOps(keepOp) {
        var field = byName[fieldSelect.value];
        opSelect.replaceChildren();
        field.ops.forEach(function (op) { opSelect.appendChild(el("option", { value: op, text: op })); });
        if (keepOp && field.ops.indexOf(keepOp) >= 0) { opSelect.value = keepOp; }
        daysInput.hidden = !field.window;
        hint.textContent = field.choices.length ? field.choices.join(" · ") : field.help;
      }
      function refreshValue() { valueInput.hidden = opSelect.value === "is_set" || opSelect.value === "is_not_set"; }
      refreshOps(leaf.op);
      refreshValue();
      valueInput.value = showValue(leaf.value);
      if (leaf.within_days) { daysInput.value = leaf.within_days; }

      row.toLeaf = function () {
        var field = byName[fieldSelect.value];
        var out = { field: field.name, op: opSelect.value };
        if (!valueInput.hidden) { out.value = parseValue(field, opSelect.value, valueInput.value); }
        if (field.window && daysInput.value) { out.within_days = Number(daysInput.value); }
        return out;
      };
      fieldSelect.addEventListener("change", function () { refreshOps(opSelect.value); refreshValue(); write(); });
      opSelect.addEventListener("change", function () { refreshValue(); write(); });
      valueInput.addEventListener("input", write);
      daysInput.addEventListener("input", write);
      remove.addEventListener("click", function () { row.remove(); write(); });
      rowsBox.appendChild(row);
    }

    function write() {
      var leaves = Array.prototype.map.call(rowsBox.children, function (row) { return row.toLeaf(); });
      var rules = {};
      rules[joiner.value] = leaves;
      textarea.value = JSON.stringify(rules, null, 2);
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    }

    function load() {
      var rules;
      try { rules = JSON.parse(textarea.value || "null"); } catch (e) { rules = undefined; }
      if (rules === null || (rules && typeof rules === "object" && !Array.isArray(rules) && !Object.keys(rules).length)) {
        rules = { all: [] };  // nothing yet: start an empty list
      }
      var key = rules && (rules.all ? "all" : (rules.any ? "any" : null));
      var flat = key && Array.isArray(rules[key]) && rules[key].every(function (item) { return item && item.field && byName[item.field]; });
      root.hidden = false;
      if (!flat) {
        note.hidden = false;
        rowsBox.hidden = true;
        root.querySelector("[data-add]").hidden = true;
        joiner.disabled = true;
        return;
      }
      joiner.value = key;
      rules[key].forEach(addRow);
    }

    root.querySelector("[data-add]").addEventListener("click", function () { addRow(); write(); });
    joiner.addEventListener("change", write);
    load();
  });
})();
