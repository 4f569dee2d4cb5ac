// The segment builder: rows of conditions joined by "all" or "any", with translated field
// names and value pickers fed from the chosen brand's own data (values/<brand>/). It writes
// the rules JSON textarea, which stays the source of truth (and all there is without
// JavaScript); edits to the JSON, shown as the advanced view, come back into the rows.
// Nested rules (not, groups in groups) are left to the JSON, with a note saying so.
(function () {
  "use strict";
  function ready(fn) { document.readyState !== "loading" ? fn() : document.addEventListener("DOMContentLoaded", fn); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; } else if (attrs[key] !== undefined && attrs[key] !== null) { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }
  var LIST_OPS = ["in", "not_in", "all"];
  var NO_VALUE_OPS = ["is_set", "is_not_set"];
  var SEPARATORS = /[,，、]/;
  var uid = 0;

  ready(function () {
    var root = document.getElementById("rule-builder");
    var textarea = document.querySelector("textarea[name='rules']");
    var fieldsData = document.getElementById("rule-fields-data");
    if (!root || !textarea || !fieldsData) { return; }
    var form = textarea.form;
    var FIELDS = JSON.parse(fieldsData.textContent);
    var byName = {};
    FIELDS.forEach(function (f) { byName[f.name] = f; });
    var labels = root.dataset;
    var rowsBox = root.querySelector("[data-rows]");
    var joiner = root.querySelector("[data-joiner]");
    var note = root.querySelector("[data-note]");
    var syncNote = root.querySelector("[data-sync-note]");
    var addButton = root.querySelector("[data-add]");
    var toggle = root.querySelector("[data-toggle-json]");
    var rulesRow = textarea.closest(".form-row") || textarea.parentNode;
    var brandSelect = form ? form.querySelector("[name='brand']") : null;
    var values = {};  // field name → {options: [{value, label}], closed}
    var writing = false;

    // The builder sits right above the JSON it edits, the live count right below it.
    rulesRow.parentNode.insertBefore(root, rulesRow);
    var liveCount = document.getElementById("live-count");
    if (liveCount) { rulesRow.parentNode.insertBefore(liveCount, rulesRow.nextSibling); }

    function optionsFor(field) {
      var known = values[field.name];
      if (known) { return known; }
      if (field.choices.length) {
        return { options: field.choices.map(function (c) { return { value: c, label: c }; }), closed: true };
      }
      return { options: [], closed: false };
    }
    function number(text) {
      var trimmed = String(text).trim();
      if (trimmed === "") { return ""; }
      var n = Number(trimmed);
      return isNaN(n) ? trimmed : n;  // the validator names what is wrong with it
    }
    function split(text) { return text.split(SEPARATORS).map(function (s) { return s.trim(); }).filter(Boolean); }
    function asList(value) { return Array.isArray(value) ? value : (value === undefined || value === null || value === "" ? [] : [value]); }

    function addRow(leaf) {
      leaf = leaf || { field: "city", op: "in", value: [] };
      var id = "rule-" + (++uid);
      var fieldSelect = el("select", { "aria-label": labels.labelField, "data-rule-field": "" });
      var groups = {};
      FIELDS.forEach(function (f) {
        if (!groups[f.group]) { groups[f.group] = el("optgroup", { label: f.group_label }); fieldSelect.appendChild(groups[f.group]); }
        groups[f.group].appendChild(el("option", { value: f.name, text: f.label }));
      });
      fieldSelect.value = byName[leaf.field] ? leaf.field : "city";
      var opSelect = el("select", { "aria-label": labels.labelOp, "data-rule-op": "" });
      var box = el("div", { class: "rule-value-box", "data-rule-value": "" });
      var daysInput = el("input", { type: "number", min: "1", step: "1", class: "vIntegerField", placeholder: labels.placeholderDays, "aria-label": labels.labelDays, "data-rule-days": "" });
      var remove = el("button", { type: "button", class: "button", text: "×", "aria-label": labels.labelRemove, title: labels.labelRemove });
      var hint = el("p", { class: "help" });
      var row = el("div", { class: "rule-row" }, [fieldSelect, opSelect, box, daysInput, remove, hint]);
      var read = function () { return undefined; };
      var current = leaf;

      function refreshOps(keepOp) {
        var field = byName[fieldSelect.value];
        opSelect.replaceChildren();
        field.ops.forEach(function (o) { opSelect.appendChild(el("option", { value: o.op, text: o.label })); });
        opSelect.value = field.ops.some(function (o) { return o.op === keepOp; }) ? keepOp : field.ops[0].op;
        daysInput.hidden = !field.window;
        hint.textContent = field.help;
      }

      // The value controls for the field and operator, filled with ``value``.
      function renderValue(value) {
        var field = byName[fieldSelect.value];
        var op = opSelect.value;
        box.replaceChildren();
        if (NO_VALUE_OPS.indexOf(op) >= 0) { read = function () { return undefined; }; return; }
        if (field.kind === "number" || field.kind === "date" || op === "within_last_days") {
          var type = field.kind === "date" && op !== "within_last_days" ? "date" : "number";
          var make = function (label, v) {
            var input = el("input", { type: type, "aria-label": field.label + " · " + label, step: type === "number" ? "any" : null });
            if (v !== undefined && v !== null) { input.value = v; }
            box.appendChild(input);
            return input;
          };
          if (op === "between") {
            var pair = Array.isArray(value) ? value : [];
            var low = make(labels.labelLow, pair[0]);
            var high = make(labels.labelHigh, pair[1]);
            read = function () { return type === "number" ? [number(low.value), number(high.value)] : [low.value, high.value]; };
          } else {
            var single = make(labels.labelValue, Array.isArray(value) ? value[0] : value);
            read = function () { return type === "number" ? number(single.value) : single.value; };
          }
          return;
        }
        var known = optionsFor(field);
        var chosen = asList(value).map(String);
        var knownValues = known.options.map(function (o) { return o.value; });
        var leftover = chosen.filter(function (v) { return knownValues.indexOf(v) < 0; });
        if (LIST_OPS.indexOf(op) >= 0) {
          var boxes = [];
          if (known.options.length) {
            var picks = el("fieldset", { class: "rule-picks" }, [el("legend", { text: field.label })]);
            known.options.forEach(function (o) {
              var check = el("input", { type: "checkbox", value: o.value });
              check.checked = chosen.indexOf(o.value) >= 0;
              boxes.push(check);
              picks.appendChild(el("label", {}, [check, document.createTextNode(" " + o.label)]));
            });
            box.appendChild(picks);
          }
          var other = null;
          if (!known.closed || leftover.length || !known.options.length) {
            other = el("input", { type: "text", size: "24", "aria-label": known.options.length ? field.label + " · " + labels.labelOther : field.label + " · " + labels.labelValue, placeholder: known.options.length ? labels.labelOther : "" });
            other.value = (known.options.length ? leftover : chosen).join(", ");
            box.appendChild(other);
          }
          read = function () {
            var out = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
            if (other) { split(other.value).forEach(function (v) { if (out.indexOf(v) < 0) { out.push(v); } }); }
            return out;
          };
          return;
        }
        var first = chosen.length ? chosen[0] : "";
        if (known.closed && known.options.length) {
          var select = el("select", { "aria-label": field.label + " · " + labels.labelValue }, [el("option", { value: "", text: labels.labelChoose })]);
          known.options.forEach(function (o) { select.appendChild(el("option", { value: o.value, text: o.label })); });
          if (first && knownValues.indexOf(first) < 0) { select.appendChild(el("option", { value: first, text: first })); }
          select.value = first;
          box.appendChild(select);
          read = function () { return select.value; };
          return;
        }
        var input = el("input", { type: "text", size: "24", "aria-label": field.label + " · " + labels.labelValue });
        if (known.options.length) {
          var list = el("datalist", { id: id + "-list" });
          known.options.forEach(function (o) { list.appendChild(el("option", { value: o.value, label: o.label })); });
          box.appendChild(list);
          input.setAttribute("list", list.id);
        }
        input.value = first;
        box.appendChild(input);
        read = function () { return input.value.trim(); };
      }

      row.toLeaf = function () {
        var field = byName[fieldSelect.value];
        var out = { field: field.name, op: opSelect.value };
        var value = read();
        if (value !== undefined) { out.value = value; }
        if (field.window && daysInput.value) { out.within_days = Number(daysInput.value); }
        return out;
      };
      row.rerender = function () { current = row.toLeaf(); renderValue(current.value); };

      refreshOps(leaf.op);
      renderValue(leaf.value);
      if (leaf.within_days) { daysInput.value = leaf.within_days; }

      fieldSelect.addEventListener("change", function () { refreshOps(opSelect.value); renderValue(undefined); write(); });
      opSelect.addEventListener("change", function () {
        var before = read();
        var wasList = Array.isArray(before);
        var isList = LIST_OPS.indexOf(opSelect.value) >= 0 || opSelect.value === "between";
        renderValue(wasList && !isList ? before[0] : (!wasList && isList ? asList(before) : before));
        write();
      });
      box.addEventListener("input", write);
      box.addEventListener("change", write);
      daysInput.addEventListener("input", write);
      remove.addEventListener("click", function () { row.remove(); write(); });
      rowsBox.appendChild(row);
      return row;
    }

    function leaves() { return Array.prototype.map.call(rowsBox.children, function (row) { return row.toLeaf(); }); }

    function write() {
      var rules = {};
      rules[joiner.value] = leaves();
      writing = true;
      textarea.value = JSON.stringify(rules, null, 2);
      textarea.dispatchEvent(new Event("input", { bubbles: true }));  // the live count listens
      writing = false;
      syncNote.hidden = true;
    }

    function showJson(show) {
      rulesRow.hidden = !show;
      toggle.setAttribute("aria-expanded", show ? "true" : "false");
      toggle.textContent = show ? labels.labelHideJson : labels.labelShowJson;
    }

    // Rows from the JSON; false when the JSON is not a flat list the rows can show.
    function load() {
      var rules;
      try { rules = JSON.parse(textarea.value || "null"); } catch (e) {
        syncNote.hidden = false;
        return false;
      }
      syncNote.hidden = true;
      if (rules === null || (rules && typeof rules === "object" && !Array.isArray(rules) && !Object.keys(rules).length)) {
        rules = { all: [] };  // nothing yet: start an empty list
      }
      var key = rules && typeof rules === "object" && (Array.isArray(rules.all) ? "all" : (Array.isArray(rules.any) ? "any" : null));
      var flat = key && Object.keys(rules).length === 1 && rules[key].every(function (item) {
        return item && typeof item === "object" && byName[item.field] && Object.keys(item).every(function (k) { return ["field", "op", "value", "within_days"].indexOf(k) >= 0; })
          && byName[item.field].ops.some(function (o) { return o.op === item.op; });
      });
      note.hidden = !!flat;
      rowsBox.hidden = addButton.hidden = !flat;
      joiner.disabled = !flat;
      if (!flat) { rowsBox.replaceChildren(); return false; }
      joiner.value = key;
      rowsBox.replaceChildren();
      rules[key].forEach(addRow);
      return true;
    }

    function loadValues() {
      var brand = brandSelect ? brandSelect.value : "";
      root.removeAttribute("data-values-brand");
      if (!brand) { values = {}; rerenderAll(); return; }
      fetch(root.dataset.valuesUrl + "?brand=" + encodeURIComponent(brand), { credentials: "same-origin" })
        .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
        .then(function (data) { values = data.fields || {}; rerenderAll(); root.setAttribute("data-values-brand", brand); })
        .catch(function () { values = {}; rerenderAll(); });  // the rows still take typed values
    }
    function rerenderAll() { Array.prototype.forEach.call(rowsBox.children, function (row) { row.rerender(); }); }

    var timer = null;
    textarea.addEventListener("input", function () {
      if (writing) { return; }
      clearTimeout(timer);
      timer = setTimeout(load, 300);
    });
    addButton.addEventListener("click", function () {
      var row = addRow();
      write();
      row.querySelector("select").focus();
    });
    joiner.addEventListener("change", write);
    toggle.addEventListener("click", function () { showJson(rulesRow.hidden); });
    if (brandSelect) { brandSelect.addEventListener("change", loadValues); }

    root.hidden = false;
    var usable = load();
    var serverErrors = rulesRow.querySelector(".errorlist");
    showJson(!usable || !!serverErrors);
    loadValues();
  });
})();
