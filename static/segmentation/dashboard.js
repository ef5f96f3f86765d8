// Charts of the segmentation dashboard, from the JSON the page embeds (vendored Chart.js).
(function () {
  "use strict";
  // Axis and tooltip numbers in the page's language ("2.936" / "2,936"), not the browser's.
  Chart.defaults.locale = document.documentElement.lang || undefined;
  const data = JSON.parse(document.getElementById("segment-data").textContent);
  const labels = JSON.parse(document.getElementById("segment-labels").textContent);
  const common = { responsive: true, maintainAspectRatio: true, aspectRatio: 2, plugins: { legend: { position: "bottom" } } };

  new Chart(document.getElementById("chart-segments"), {
    type: "bar",
    data: {
      labels: data.segments,
      datasets: [
        { label: labels.members, data: data.members, backgroundColor: "#0b5c4a", yAxisID: "y" },
        { label: labels.revenue_share, data: data.revenue_share, backgroundColor: "#f2a900", yAxisID: "y1" },
      ],
    },
    options: {
      ...common,
      // On a phone the turned segment names need the height more than the bars the width.
      aspectRatio: window.innerWidth < 600 ? 0.9 : 2,
      scales: {
        // Every segment named: Chart.js would skip every other label where they do not fit
        // side by side (the longer Dutch names), so they turn instead.
        x: { ticks: { autoSkip: false, maxRotation: 60, minRotation: 0 } },
        y: { position: "left", beginAtZero: true },
        y1: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } },
      },
    },
  });
  new Chart(document.getElementById("chart-clv"), {
    type: "bar",
    data: { labels: data.clv_labels, datasets: [{ label: labels.members, data: data.clv, backgroundColor: "#7c3aed" }] },
    options: { ...common, aspectRatio: 2.6, scales: { x: { ticks: { autoSkip: false, maxRotation: 60 } } } },
  });
  new Chart(document.getElementById("chart-alive"), {
    type: "bar",
    data: { labels: data.p_alive_labels, datasets: [{ label: labels.members, data: data.p_alive, backgroundColor: "#2b6cb0" }] },
    options: { ...common, aspectRatio: 2.6, scales: { x: { ticks: { autoSkip: false, maxRotation: 60 } } } },
  });
})();
