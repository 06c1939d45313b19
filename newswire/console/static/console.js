// Draws the console's charts with uPlot (served from /static), and refreshes the pipeline page.
// Data arrives as JSON in data- attributes or from /api/pipeline: never as markup.
"use strict";
window.newswireCharts = {};

function sparkline(el) {
  const data = JSON.parse(el.dataset.series);
  const opts = {
    width: 160, height: 36, legend: { show: false }, cursor: { show: false },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{ show: false }, { show: false }],
    series: [{}, { stroke: "#2f5fd0", fill: "rgba(47,95,208,.15)", width: 1.5, points: { show: false } }],
  };
  return new uPlot(opts, data, el);
}

function lineChart(el, label, color) {
  const opts = {
    width: Math.max(420, el.clientWidth - 16), height: 240,
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max || 0, 0.001) * 1.15] } },
    series: [{}, { label: label, stroke: color, width: 2, fill: color + "22", spanGaps: true, points: { show: true, size: 4 } }],
  };
  return new uPlot(opts, [[], []], el);
}

function showPipeline(data) {
  const charts = window.newswireCharts;
  charts.throughput.setData(data.throughput);
  charts.latency.setData(data.latency);
  document.getElementById("batches").textContent = data.batches;
  document.getElementById("records").textContent = data.records;
  const error = document.getElementById("pipeline-error");
  error.hidden = !data.error;
  error.textContent = data.error || "";
  const body = document.querySelector("#lag tbody");
  body.replaceChildren();
  for (const row of data.lag) {
    const tr = document.createElement("tr");
    for (const [value, cls] of [[row.topic, ""], [row.partition, ""], [row.records, "num"]]) {
      const td = document.createElement("td");
      td.textContent = value;  // text, never HTML
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".spark").forEach((el, i) => { window.newswireCharts["spark" + i] = sparkline(el); });
  const pipeline = document.getElementById("pipeline");
  if (pipeline) {
    window.newswireCharts.throughput = lineChart(document.getElementById("chart-throughput"), "records/s", "#2f5fd0");
    window.newswireCharts.latency = lineChart(document.getElementById("chart-latency"), "mean batch s", "#c05621");
    showPipeline(JSON.parse(pipeline.dataset.initial));
    const every = Number(pipeline.dataset.refreshMs) || 5000;
    setInterval(async () => {
      try {
        const response = await fetch("/api/pipeline", { cache: "no-store" });
        if (response.ok) showPipeline(await response.json());
      } catch (e) { /* the next tick tries again */ }
    }, every);
  }
});
