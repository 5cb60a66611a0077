// Draws the usage charts with uPlot (static/vendor/uplot) from the page's JSON
// (#usage-chart-data: x = day starts in unix seconds, labels, tokens[], requests[]).
// Redraws on resize and when the theme changes, so axes and grid follow light and dark.
(function () {
  "use strict";

  const dataNode = document.getElementById("usage-chart-data");
  if (!dataNode || typeof uPlot === "undefined") return;
  const data = JSON.parse(dataNode.textContent);
  const PALETTE = ["#10a37f", "#0b63c5", "#c2410c", "#7c3aed", "#be185d", "#0e7490"];
  const numberFormat = new Intl.NumberFormat(document.documentElement.lang || undefined);
  const dateFormat = new Intl.DateTimeFormat(document.documentElement.lang || undefined, { month: "short", day: "numeric" });
  const charts = [];

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function options(width, kind) {
    const text = cssVar("--text-muted") || "#5d5d5d";
    const grid = cssVar("--border") || "#e5e5e5";
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const series = [{ value: (u, ts) => (ts == null ? "" : dateFormat.format(new Date(ts * 1000))) }];
    data.labels.forEach((label, i) => {
      series.push({
        label: label,
        stroke: PALETTE[i % PALETTE.length],
        width: i === 0 ? 2.5 : 1.5,
        fill: i === 0 ? PALETTE[0] + "1f" : undefined,
        value: (u, v) => (v == null ? "" : numberFormat.format(v)),
        points: { show: data.x.length < 40 },
      });
    });
    return {
      width: width,
      height: kind === "small" ? 200 : 260,
      series: series,
      scales: { x: { time: true } },
      axes: [
        Object.assign({}, axis, { values: (u, ticks) => ticks.map((t) => dateFormat.format(new Date(t * 1000))) }),
        Object.assign({}, axis, { size: 64, values: (u, ticks) => ticks.map((t) => numberFormat.format(t)) }),
      ],
      legend: { show: true },
    };
  }

  function draw() {
    while (charts.length) charts.pop().destroy();
    for (const node of document.querySelectorAll(".usage-chart[data-chart]")) {
      const values = data[node.dataset.chart];
      const width = Math.max(240, node.clientWidth);
      const kind = node.classList.contains("usage-chart-small") ? "small" : "large";
      charts.push(new uPlot(options(width, kind), [data.x].concat(values), node));
    }
  }

  let pending = null;
  function redrawSoon() {
    if (pending) cancelAnimationFrame(pending);
    pending = requestAnimationFrame(draw);
  }

  draw();
  window.addEventListener("resize", redrawSoon);
  new MutationObserver(redrawSoon).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
})();
