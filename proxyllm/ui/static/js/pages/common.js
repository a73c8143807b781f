// Pieces several pages share: headings, loaders over paged API lists, limit fields and cells.

import { api } from "../api.js";
import { h, badge, field, checkGroup } from "../dom.js";
import { meter } from "../chart.js";
import { money, number, when } from "../format.js";

export function pageHead(title, lead, ...actions) {
  return h("div", { class: "page-head" },
    h("div", {}, h("h1", {}, title), lead ? h("p", { class: "lead" }, lead) : null),
    actions.length ? h("div", { class: "actions" }, ...actions) : null);
}

export function section(title, ...content) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { class: "section", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

export function stat(label, value, sub) {
  return h("div", { class: "card stat" }, h("p", { class: "label" }, label), h("p", { class: "value" }, value),
    sub ? h("p", { class: "sub" }, sub) : null);
}

// Every key (full objects), page by page, up to `cap`.
export async function allKeys(cap = 10000) {
  const keys = [];
  for (let page = 1; keys.length < cap; page += 1) {
    const answer = await api.get("/key/list", { return_full_object: "true", size: 500, page });
    keys.push(...answer.keys);
    if (page >= answer.total_pages || !answer.keys.length) return { keys, total: answer.total_count };
  }
  return { keys, total: keys.length };
}

export async function allUsers(cap = 10000) {
  const users = [];
  for (let page = 1; users.length < cap; page += 1) {
    const answer = await api.get("/user/list", { page, page_size: 500 });
    users.push(...answer.users);
    if (page >= answer.total_pages || !answer.users.length) break;
  }
  return users;
}

export async function allTeams(cap = 10000) {
  const teams = [];
  for (let page = 1; teams.length < cap; page += 1) {
    const batch = await api.get("/team/list", { page, page_size: 500 });
    teams.push(...batch);
    if (batch.length < 500) break;
  }
  return teams;
}

let modelNames = null;
export async function models() {
  if (!modelNames) {
    const answer = await api.get("/v1/models");
    modelNames = answer.data.map((m) => m.id).sort();
  }
  return modelNames;
}

export const BUDGET_PERIODS = [["", "Never resets"], ["1d", "Daily"], ["7d", "Weekly"], ["30d", "Every 30 days"], ["1mo", "Monthly"]];

// Budget, reset period, model access and rate limits, as form fields (prefilled from `row`).
export function limitFields(row = {}, modelChoices = []) {
  return [
    h("div", { class: "form-grid" },
      field({ label: "Budget (USD)", name: "max_budget", value: row.max_budget ?? "", hint: "Empty means no budget.",
        attrs: { inputmode: "decimal", autocomplete: "off" } }),
      field({ label: "Budget resets", name: "budget_duration", type: "select", value: row.budget_duration ?? "", options: BUDGET_PERIODS }),
      field({ label: "Requests per minute", name: "rpm_limit", type: "number", value: row.rpm_limit ?? "", attrs: { min: 0, step: 1 } }),
      field({ label: "Tokens per minute", name: "tpm_limit", type: "number", value: row.tpm_limit ?? "", attrs: { min: 0, step: 1 } }),
      field({ label: "Parallel requests", name: "max_parallel_requests", type: "number", value: row.max_parallel_requests ?? "", attrs: { min: 1, step: 1 } })),
    checkGroup({ legend: "Models", name: "models", choices: modelChoices, selected: row.models || [],
      hint: "Tick none to allow every model." }),
  ];
}

// Form values -> API body. Empty fields are left out when creating and cleared (null) when updating.
export function limitsBody(values, { update = false } = {}) {
  const body = {};
  for (const name of ["max_budget", "budget_duration", "rpm_limit", "tpm_limit", "max_parallel_requests"]) {
    const value = values[name];
    if (value !== "" && value !== undefined) body[name] = name === "budget_duration" || name === "max_budget" ? value : Number(value);
    else if (update) body[name] = null;
  }
  if (values.models !== undefined) body.models = values.models;
  return body;
}

export function textBody(values, names, { update = false } = {}) {
  const body = {};
  for (const name of names) {
    if (values[name]) body[name] = values[name];
    else if (update) body[name] = null;
  }
  return body;
}

export function budgetCell(row) {
  if (row.max_budget === null || row.max_budget === undefined) return h("span", { class: "muted" }, "No budget");
  const period = BUDGET_PERIODS.find(([v]) => v === row.budget_duration);
  return h("div", {},
    h("span", { class: "nowrap" }, `${money(row.spend)} of ${money(row.max_budget)}`),
    row.budget_duration ? h("div", { class: "sub" }, `${period ? period[1] : row.budget_duration}${row.budget_reset_at ? `, next ${when(row.budget_reset_at)}` : ""}`) : null,
    meter(row.spend || 0, row.max_budget, `${money(row.spend)} spent of a ${money(row.max_budget)} budget`));
}

export function modelsCell(row) {
  const list = row.models || [];
  return list.length ? list.join(", ") : h("span", { class: "muted" }, "All models");
}

export function limitsCell(row) {
  const parts = [];
  if (row.rpm_limit !== null && row.rpm_limit !== undefined) parts.push(`${number(row.rpm_limit)} rpm`);
  if (row.tpm_limit !== null && row.tpm_limit !== undefined) parts.push(`${number(row.tpm_limit)} tpm`);
  if (row.max_parallel_requests) parts.push(`${number(row.max_parallel_requests)} parallel`);
  return parts.length ? parts.join(" · ") : h("span", { class: "muted" }, "None");
}

export function blockedBadge(row) {
  return row.blocked ? badge("Blocked", "danger") : badge("Active", "ok");
}
