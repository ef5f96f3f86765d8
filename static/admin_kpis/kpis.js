// Builds the KPI charts from the JSON the page embeds (no CDN, vendored Chart.js).
(function () {
  "use strict";
  // Axis and tooltip numbers in the page's language ("2.936" / "2,936"), not the browser's.
  Chart.defaults.locale = document.documentElement.lang || undefined;
  const data = JSON.parse(document.getElementById("kpi-data").textContent);
  const labels = JSON.parse(document.getElementById("kpi-labels").textContent);
  const colours = { issued: "#0b5c4a", redeemed: "#f2a900", expired: "#c0392b", active: "#2b6cb0", spend: "#7c3aed", new_members: "#0b5c4a" };
  const common = { responsive: true, maintainAspectRatio: true, aspectRatio: 2, plugins: { legend: { position: "bottom" } } };

  new Chart(document.getElementById("chart-points"), {
    type: "bar",
    data: {
      labels: data.months,
      datasets: ["issued", "redeemed", "expired"].map((key) => ({ label: labels[key], data: data[key], backgroundColor: colours[key] })),
    },
    options: common,
  });

  new Chart(document.getElementById("chart-activity"), {
    type: "line",
    data: {
      labels: data.months,
      datasets: [
        { label: labels.active, data: data.active, borderColor: colours.active, backgroundColor: colours.active, yAxisID: "y" },
        { label: labels.spend, data: data.spend, borderColor: colours.spend, backgroundColor: colours.spend, yAxisID: "y1" },
      ],
    },
    options: { ...common, scales: { y: { position: "left", beginAtZero: true }, y1: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } } } },
  });

  new Chart(document.getElementById("chart-new"), {
    type: "bar",
    data: { labels: data.months, datasets: [{ label: labels.new_members, data: data.new_members, backgroundColor: colours.new_members }] },
    options: common,
  });
})();
