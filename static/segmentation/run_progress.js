// The run page while a run is in progress: polls the run's progress JSON (status, stage and
// percentage in the viewer's language) and reloads the page once the run has finished.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("run-progress-config").textContent);

  function show(field, text) {
    const box = document.querySelector(".field-" + field + " .readonly");
    if (box) box.textContent = text;
  }

  function poll() {
    fetch(config.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((run) => {
        if (run.status !== "running") {
          window.location.reload();
          return;
        }
        const bar = document.querySelector(".field-progress_bar progress");
        if (bar) {
          bar.value = run.progress;
          bar.nextSibling.textContent = " " + run.progress + "%";
        }
        show("stage", run.stage_name);
        show("status", run.status_name);
        window.setTimeout(poll, 2000);
      })
      .catch(() => window.setTimeout(poll, 5000));
  }
  window.setTimeout(poll, 2000);
})();
