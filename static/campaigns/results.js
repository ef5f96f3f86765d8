// A campaign's cumulative conversion rate per day since the send: recipients against the
// holdout (vendored Chart.js).
(function () {
  "use strict";
  const canvas = document.getElementById("chart-conversions");
  if (!canvas || typeof Chart === "undefined") return;
  Chart.defaults.locale = document.documentElement.lang || undefined;
  const data = JSON.parse(document.getElementById("results-data").textContent);
  new Chart(canvas, {
    type: "line",
    data: {
      labels: data.days,
      datasets: [
        { label: data.labels.mailed, data: data.mailed, borderColor: "#0b5c4a", backgroundColor: "#0b5c4a", tension: 0.2 },
        { label: data.labels.holdout, data: data.holdout, borderColor: "#f2a900", backgroundColor: "#f2a900", borderDash: [6, 4], tension: 0.2 },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { position: "bottom", labels: { usePointStyle: true } } },
      scales: {
        x: { title: { display: true, text: data.labels.x } },
        y: { beginAtZero: true, title: { display: true, text: data.labels.y } },
      },
    },
  });
})();
