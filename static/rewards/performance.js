// Stacked bars of points spent per month and partner (vendored Chart.js).
(function () {
  "use strict";
  // Axis and tooltip numbers in the page's language ("2.936" / "2,936"), not the browser's.
  Chart.defaults.locale = document.documentElement.lang || undefined;
  const data = JSON.parse(document.getElementById("performance-data").textContent);
  const colours = ["#0b5c4a", "#f2a900", "#2b6cb0", "#7c3aed", "#c0392b", "#6b7280"];
  new Chart(document.getElementById("chart-performance"), {
    type: "bar",
    data: {
      labels: data.months,
      datasets: data.series.map((series, index) => ({ label: series.label, data: series.points, backgroundColor: colours[index % colours.length] })),
    },
    options: { responsive: true, aspectRatio: 3, plugins: { legend: { position: "bottom" } }, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
})();
