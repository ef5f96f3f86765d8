// Charts of the segmentation dashboard, from the JSON the page embeds (vendored Chart.js).
(function () {
  "use strict";
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
    options: { ...common, scales: { y: { position: "left", beginAtZero: true }, y1: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } } } },
  });
  new Chart(document.getElementById("chart-clv"), {
    type: "bar",
    data: { labels: data.clv_labels, datasets: [{ label: labels.members, data: data.clv, backgroundColor: "#7c3aed" }] },
    options: { ...common, aspectRatio: 2.6 },
  });
  new Chart(document.getElementById("chart-alive"), {
    type: "bar",
    data: { labels: data.p_alive_labels, datasets: [{ label: labels.members, data: data.p_alive, backgroundColor: "#2b6cb0" }] },
    options: { ...common, aspectRatio: 2.6 },
  });
})();
