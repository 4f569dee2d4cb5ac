/* The admin dashboard's charts (Chart.js from static/vendor/). Every chart repeats a
   visible table, so the page reads without this script; here each series also gets its
   own pattern (bars) or dash style and marker (lines), never colour alone. */
(function () {
  "use strict";

  // Okabe–Ito: told apart with the common colour-vision deficiencies.
  var COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#000000", "#999999"];
  var DASHES = [[], [8, 4], [2, 3], [12, 4, 2, 4], [4, 4], [1, 6]];
  var POINTS = ["circle", "rect", "triangle", "rectRot", "crossRot", "star", "rectRounded", "cross"];
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function pattern(colour, index) {
    // Series 0 is solid; the others carry stripes, dots or a grid on their colour.
    if (index === 0) return colour;
    var size = 10;
    var canvas = document.createElement("canvas");
    canvas.width = canvas.height = size;
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = colour;
    ctx.fillRect(0, 0, size, size);
    ctx.strokeStyle = "rgba(255,255,255,0.85)";
    ctx.fillStyle = "rgba(255,255,255,0.85)";
    ctx.lineWidth = 2;
    switch (index % 5) {
      case 1: ctx.beginPath(); ctx.moveTo(0, size); ctx.lineTo(size, 0); ctx.stroke(); break;
      case 2: ctx.beginPath(); ctx.arc(size / 2, size / 2, 2, 0, 2 * Math.PI); ctx.fill(); break;
      case 3: ctx.beginPath(); ctx.moveTo(0, size / 2); ctx.lineTo(size, size / 2); ctx.stroke(); break;
      case 4: ctx.beginPath(); ctx.moveTo(size / 2, 0); ctx.lineTo(size / 2, size); ctx.moveTo(0, size / 2);
        ctx.lineTo(size, size / 2); ctx.stroke(); break;
      default: ctx.beginPath(); ctx.moveTo(0, 0); ctx.lineTo(size, size); ctx.stroke();
    }
    return ctx.createPattern(canvas, "repeat");
  }

  function style(dataset, index, kind) {
    var colour = COLOURS[index % COLOURS.length];
    dataset.borderColor = colour;
    if (kind === "line") {
      dataset.backgroundColor = colour;
      dataset.borderDash = DASHES[index % DASHES.length];
      dataset.pointStyle = POINTS[index % POINTS.length];
      dataset.pointRadius = 4;
      dataset.borderWidth = 2;
      dataset.spanGaps = true;
    } else {
      dataset.backgroundColor = pattern(colour, index);
      dataset.borderWidth = 1;
    }
    return dataset;
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || !window.Chart) return;
    var spec = JSON.parse(source.textContent);
    var css = getComputedStyle(document.body);
    var text = (css.getPropertyValue("--body-fg") || "#333").trim();
    var grid = (css.getPropertyValue("--hairline-color") || "#e8e8e8").trim();
    var valueAxis = {
      beginAtZero: true,
      stacked: spec.stacked,
      grid: {color: grid},
      ticks: {
        color: text,
        precision: spec.percent ? undefined : 0, // people and events come in whole numbers
        callback: function (value) { return spec.percent ? value + "%" : value.toLocaleString(); },
      },
    };
    if (spec.percent) valueAxis.max = 100;
    var labelAxis = {stacked: spec.stacked, grid: {display: false}, ticks: {color: text}};
    new window.Chart(canvas, {
      type: spec.kind,
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (d, i) { return style(d, i, spec.kind); }),
      },
      options: {
        indexAxis: spec.horizontal ? "y" : "x",
        maintainAspectRatio: false,
        animation: reduceMotion ? false : {duration: 300},
        scales: spec.horizontal ? {x: valueAxis, y: labelAxis} : {x: labelAxis, y: valueAxis},
        plugins: {
          legend: {
            display: spec.datasets.length > 1,
            labels: {color: text, usePointStyle: spec.kind === "line"},
          },
          tooltip: {
            callbacks: spec.percent ? {
              label: function (item) { return item.dataset.label + ": " + item.formattedValue + "%"; },
            } : {},
          },
        },
      },
    });
  }

  function toggleCustomDates() {
    var period = document.getElementById("id_period");
    if (!period) return;
    var fields = document.querySelectorAll(".cdp-dash-custom");
    function update() {
      fields.forEach(function (field) { field.hidden = period.value !== "custom"; });
    }
    period.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    toggleCustomDates();
    document.querySelectorAll(".cdp-dash canvas[data-chart]").forEach(draw);
  });
})();
