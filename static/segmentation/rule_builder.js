// The rule builder of rule-based segments: one AND/OR group of conditions, kept in sync with
// the JSON field (which stays editable for nested groups), and a live member count.
(function () {
  "use strict";
  const spec = JSON.parse(document.getElementById("rule-builder-spec").textContent);
  const config = JSON.parse(document.getElementById("rule-preview-config").textContent);
  const textarea = document.querySelector("textarea[name=rule]");
  const builder = document.getElementById("rule-builder");
  const list = document.getElementById("rule-conditions");
  const join = document.getElementById("rule-join");
  const fields = Object.fromEntries(spec.fields.map((field) => [field.name, field]));
  const months = Array.from({ length: 12 }, (_, index) => [index + 1, new Date(2026, index, 1).toLocaleString(document.documentElement.lang || undefined, { month: "long" })]);

  join.options[0].textContent = spec.text.all;
  join.options[1].textContent = spec.text.any;
  document.getElementById("rule-add").textContent = spec.text.add;
  document.getElementById("rule-count").textContent = spec.text.count;

  function element(tag, attributes = {}, children = []) {
    const node = document.createElement(tag);
    Object.entries(attributes).forEach(([key, value]) => {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    });
    children.forEach((child) => node.appendChild(child));
    return node;
  }

  function options(select, pairs, selected) {
    select.innerHTML = "";
    pairs.forEach(([value, label]) => {
      const option = element("option", { value: String(value), text: label });
      if (Array.isArray(selected) ? selected.map(String).includes(String(value)) : String(selected) === String(value)) option.selected = true;
      select.appendChild(option);
    });
  }

  function valueInputs(row, field, op, value) {
    const box = row.querySelector(".rule-value");
    box.innerHTML = "";
    if (field.kind === "choice" || field.kind === "month") {
      const select = element("select", { multiple: "", class: "rule-input", "aria-label": field.label });
      options(select, field.kind === "month" ? months : field.choices, value || []);
      box.appendChild(select);
    } else if (field.kind === "boolean") {
      const select = element("select", { class: "rule-input", "aria-label": field.label });
      options(select, [["true", spec.text.yes], ["false", spec.text.no]], value === false ? "false" : "true");
      box.appendChild(select);
    } else if (field.kind === "date") {
      box.appendChild(element("input", { type: "date", class: "rule-input", value: value || "", "aria-label": field.label }));
    } else {
      const values = op === "between" ? (Array.isArray(value) ? value : ["", ""]) : [value ?? ""];
      values.forEach((item) => box.appendChild(element("input", { type: "number", step: field.kind === "integer" ? "1" : "any", class: "rule-input", value: item, "aria-label": field.label })));
    }
    box.querySelectorAll(".rule-input").forEach((input) => input.addEventListener("change", write));
  }

  function addRow(condition = {}) {
    const field = fields[condition.field] || spec.fields[0];
    const row = element("div", { class: "form-row rule-row" });
    const fieldSelect = element("select", { class: "rule-field", "aria-label": "field" });
    options(fieldSelect, spec.fields.map((item) => [item.name, item.label]), field.name);
    const opSelect = element("select", { class: "rule-op", "aria-label": "operator" });
    const days = element("input", { type: "number", min: "1", max: "3650", class: "rule-days", value: condition.days || 90, "aria-label": spec.text.days, title: spec.text.days });
    const remove = element("button", { type: "button", class: "button rule-remove", text: spec.text.remove });
    row.append(fieldSelect, opSelect, element("span", { class: "rule-value" }), days, remove);
    function refresh(keepValue) {
      const current = fields[fieldSelect.value];
      options(opSelect, current.ops.map((op) => [op, spec.ops[op]]), keepValue ? condition.op : current.ops[0]);
      days.hidden = !current.needs_days;
      valueInputs(row, current, opSelect.value, keepValue ? condition.value : undefined);
    }
    fieldSelect.addEventListener("change", () => { refresh(false); write(); });
    opSelect.addEventListener("change", () => { valueInputs(row, fields[fieldSelect.value], opSelect.value); write(); });
    days.addEventListener("change", write);
    remove.addEventListener("click", () => { row.remove(); write(); });
    list.appendChild(row);
    refresh(Boolean(condition.field));
  }

  function readRow(row) {
    const field = fields[row.querySelector(".rule-field").value];
    const op = row.querySelector(".rule-op").value;
    const inputs = Array.from(row.querySelectorAll(".rule-input"));
    let value;
    if (field.kind === "choice") value = Array.from(inputs[0].selectedOptions).map((option) => option.value);
    else if (field.kind === "month") value = Array.from(inputs[0].selectedOptions).map((option) => Number(option.value));
    else if (field.kind === "boolean") value = inputs[0].value === "true";
    else if (field.kind === "date") value = inputs[0].value;
    else {
      const numbers = inputs.map((input) => (input.value === "" ? null : Number(input.value)));
      value = op === "between" ? numbers : numbers[0];
    }
    const condition = { field: field.name, op: op, value: value };
    if (field.needs_days) condition.days = Number(row.querySelector(".rule-days").value);
    return condition;
  }

  function write() {
    const parts = Array.from(list.querySelectorAll(".rule-row")).map(readRow);
    textarea.value = JSON.stringify({ [join.value]: parts }, null, 2);
  }

  function load() {
    let rule;
    try { rule = JSON.parse(textarea.value || "null"); } catch (error) { rule = undefined; }
    if (rule === null) rule = { all: [] };
    if (rule && rule.field) rule = { all: [rule] };
    const key = rule && (rule.all ? "all" : rule.any ? "any" : null);
    const flat = key && Array.isArray(rule[key]) && rule[key].every((part) => part && part.field);
    builder.hidden = false;
    const nested = document.getElementById("rule-nested");
    if (!flat) {
      nested.textContent = spec.text.nested;
      nested.hidden = false;
      builder.querySelectorAll("select, button").forEach((node) => { node.disabled = true; });
      return;
    }
    join.value = key;
    rule[key].forEach(addRow);
    if (!rule[key].length) { addRow(); write(); }
  }

  join.addEventListener("change", write);
  document.getElementById("rule-add").addEventListener("click", () => { addRow(); write(); });
  document.getElementById("rule-count").addEventListener("click", async () => {
    const output = document.getElementById("rule-count-result");
    const body = new FormData();
    body.append("rule", textarea.value);
    body.append("csrfmiddlewaretoken", document.querySelector("input[name=csrfmiddlewaretoken]").value);
    const response = await fetch(config.url, { method: "POST", body: body, credentials: "same-origin" });
    const data = await response.json();
    output.className = response.ok ? "rule-count-ok" : "errornote";
    output.textContent = response.ok ? spec.text.members.replace("%(count)s", data.count.toLocaleString(document.documentElement.lang || undefined)) : data.message;
  });
  load();
})();
