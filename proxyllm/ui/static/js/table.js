// A table that sorts (click or Enter on a column header) and pages. Rows are plain API objects.

import { h, clear } from "./dom.js";
import { number } from "./format.js";

function compare(a, b) {
  const aMissing = a === null || a === undefined || a === "";
  const bMissing = b === null || b === undefined || b === "";
  if (aMissing || bMissing) return aMissing === bMissing ? 0 : aMissing ? 1 : -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "boolean" && typeof b === "boolean") return Number(a) - Number(b);
  return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: "base" });
}

// columns: [{ key, label, value?(row), render?(row) -> Node|string, numeric?, sortable? }]
export function dataTable({ caption, columns, rows = [], pageSize = 20, empty, sort = null }) {
  let data = rows;
  let sortKey = sort ? sort.key : null;
  let direction = sort ? sort.dir : "asc";
  let page = 0;

  const tbody = h("tbody");
  const heads = columns.map((col) => {
    const th = h("th", { scope: "col", class: col.numeric ? "num" : null });
    if (col.sortable === false) {
      th.append(col.label);
      return { col, th };
    }
    const arrow = h("span", { class: "arrow", "aria-hidden": "true" });
    const button = h("button", { class: "sort", type: "button", onclick: () => {
      direction = sortKey === col.key && direction === "asc" ? "desc" : "asc";
      if (sortKey !== col.key) direction = col.numeric ? "desc" : "asc";
      sortKey = col.key;
      page = 0;
      render();
    } }, col.label, arrow);
    th.append(button);
    return { col, th, arrow };
  });

  const status = h("span", { "aria-live": "polite" });
  const prev = h("button", { class: "btn small", type: "button", onclick: () => { page -= 1; render(); } }, "Previous");
  const next = h("button", { class: "btn small", type: "button", onclick: () => { page += 1; render(); } }, "Next");
  const pageLabel = h("span");
  const pager = h("div", { class: "pager" }, status, h("div", { class: "actions" }, prev, pageLabel, next));

  const table = h("table", {},
    h("caption", { class: "sr-only" }, caption),
    h("thead", {}, h("tr", {}, heads.map((x) => x.th))),
    tbody);
  const root = h("div", { class: "data-table" },
    h("div", { class: "table-wrap", role: "region", "aria-label": caption, tabindex: "0" }, table),
    pager);

  function valueOf(col, row) {
    return col.value ? col.value(row) : row[col.key];
  }

  function ordered() {
    if (!sortKey) return data;
    const col = columns.find((c) => c.key === sortKey);
    const sign = direction === "asc" ? 1 : -1;
    return [...data].sort((a, b) => compare(valueOf(col, a), valueOf(col, b)) * sign);
  }

  function render() {
    for (const { col, th, arrow } of heads) {
      if (!arrow) continue;
      const active = col.key === sortKey;
      th.setAttribute("aria-sort", active ? (direction === "asc" ? "ascending" : "descending") : "none");
      arrow.textContent = active ? (direction === "asc" ? "▲" : "▼") : "↕";
    }
    const rowsNow = ordered();
    const pages = Math.max(1, Math.ceil(rowsNow.length / pageSize));
    page = Math.min(Math.max(page, 0), pages - 1);
    clear(tbody);
    if (!rowsNow.length) {
      tbody.append(h("tr", {}, h("td", { colspan: columns.length }, (typeof empty === "function" ? empty() : empty) || "Nothing to show.")));
    }
    for (const row of rowsNow.slice(page * pageSize, (page + 1) * pageSize)) {
      tbody.append(h("tr", {}, columns.map((col) => {
        const content = col.render ? col.render(row) : valueOf(col, row);
        return h("td", { class: col.numeric ? "num" : null }, content ?? "—");
      })));
    }
    const first = rowsNow.length ? page * pageSize + 1 : 0;
    const last = Math.min(rowsNow.length, (page + 1) * pageSize);
    status.textContent = rowsNow.length ? `Showing ${number(first)}–${number(last)} of ${number(rowsNow.length)}` : "";
    pageLabel.textContent = `Page ${page + 1} of ${pages}`;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    pager.hidden = rowsNow.length <= pageSize;
  }

  root.update = (rows2) => {
    data = rows2;
    render();
  };
  render();
  return root;
}
