// Admin: virtual keys — list with search and paging, create, block/unblock, regenerate, delete.

import { api } from "../api.js";
import { h, badge, clear, confirmAction, empty, errorNotice, field, fill, formValues, loading, notice, openDialog, showSecret, submitting, toast } from "../dom.js";
import { money, when } from "../format.js";
import { dataTable } from "../table.js";
import { allKeys, allTeams, budgetCell, limitFields, limitsBody, limitsCell, models, modelsCell, pageHead,
  textBody } from "./common.js";

const DURATIONS = [["", "Never"], ["1d", "1 day"], ["7d", "7 days"], ["30d", "30 days"], ["90d", "90 days"], ["1mo", "1 month"]];

function expired(row) {
  return row.expires && new Date(row.expires).getTime() <= Date.now();
}

function statusOf(row) {
  if (row.blocked) return "blocked";
  return expired(row) ? "expired" : "active";
}

function statusBadge(row) {
  const status = statusOf(row);
  return badge(status === "active" ? "Active" : status === "blocked" ? "Blocked" : "Expired",
    status === "active" ? "ok" : status === "blocked" ? "danger" : "warn");
}

export async function renderKeys(main, ctx) {
  const create = h("button", { class: "btn primary", type: "button", onclick: () => createKey() }, "Create key");
  main.append(pageHead("Keys", "Virtual keys: which models they may call, their budgets and rate limits.", create));
  const message = h("div");
  const search = field({ label: "Search", name: "q", type: "search", hint: "Alias, key, user or team",
    attrs: { autocomplete: "off" } });
  const status = field({ label: "Status", name: "status", type: "select", value: "all",
    options: [["all", "All"], ["active", "Active"], ["blocked", "Blocked"], ["expired", "Expired"]] });
  search.classList.add("grow");
  let keys = [];

  const label = (row) => row.key_alias || row.key_name;
  const columns = [
    { key: "key_alias", label: "Key", value: (r) => r.key_alias || r.key_name,
      render: (r) => h("div", {}, r.key_alias || h("span", { class: "muted" }, "(no alias)"), h("div", { class: "sub mono" }, r.key_name)) },
    { key: "owner", label: "Owner", value: (r) => r.user_id || r.team_id || "",
      render: (r) => h("div", {}, r.user_id ? `user ${r.user_id}` : "", r.team_id ? h("div", { class: "sub" }, `team ${r.team_id}`) : null,
        !r.user_id && !r.team_id ? h("span", { class: "muted" }, "—") : null) },
    { key: "spend", label: "Spend", numeric: true, render: (r) => money(r.spend) },
    { key: "max_budget", label: "Budget", value: (r) => r.max_budget, render: budgetCell },
    { key: "models", label: "Models", value: (r) => (r.models || []).join(","), render: modelsCell },
    { key: "limits", label: "Limits", sortable: false, render: limitsCell },
    { key: "expires", label: "Expires", render: (r) => (r.expires ? when(r.expires) : h("span", { class: "muted" }, "Never")) },
    { key: "status", label: "Status", value: statusOf, render: statusBadge },
    { key: "created_at", label: "Created", render: (r) => when(r.created_at) },
    { key: "actions", label: "Actions", sortable: false, render: (r) => h("div", { class: "actions" },
      h("button", { class: "btn small", type: "button", "aria-label": `${r.blocked ? "Unblock" : "Block"} key ${label(r)}`,
        onclick: () => setBlocked(r, !r.blocked) }, r.blocked ? "Unblock" : "Block"),
      h("button", { class: "btn small", type: "button", "aria-label": `Edit key ${label(r)}`, onclick: () => edit(r) }, "Edit"),
      h("button", { class: "btn small", type: "button", "aria-label": `Regenerate key ${label(r)}`, onclick: () => regenerate(r) }, "Regenerate"),
      h("button", { class: "btn small danger", type: "button", "aria-label": `Delete key ${label(r)}`, onclick: () => remove(r) }, "Delete")) },
  ];
  const table = dataTable({
    caption: "Keys", columns, pageSize: 20, sort: { key: "created_at", dir: "desc" },
    empty: () => (keys.length
      ? empty("No key matches the search.", "Clear the search or pick another status.")
      : empty("No keys yet.", "Create one with “Create key” and give it to an app or a customer; it is shown once.")),
  });

  function filtered() {
    const q = search.querySelector("input").value.trim().toLowerCase();
    const wanted = status.querySelector("select").value;
    return keys.filter((r) => (wanted === "all" || statusOf(r) === wanted)
      && (!q || [r.key_alias, r.key_name, r.user_id, r.team_id, r.token].some((v) => v && v.toLowerCase().includes(q))));
  }
  search.querySelector("input").addEventListener("input", () => table.update(filtered()));
  status.querySelector("select").addEventListener("change", () => table.update(filtered()));

  main.append(message, h("div", { class: "toolbar" }, search, status), table);

  async function load() {
    fill(message, loading("Loading keys…"));
    try {
      const answer = await allKeys();
      if (!ctx.alive()) return;
      keys = answer.keys;
      clear(message);
      if (answer.total > keys.length) message.append(notice("info", h("p", {}, `Showing the newest ${keys.length} of ${answer.total} keys.`)));
      table.update(filtered());
    } catch (error) {
      fill(message, errorNotice(error, "Keys could not be loaded"));
    }
  }

  async function setBlocked(row, blocked) {
    try {
      await api.post(blocked ? "/key/block" : "/key/unblock", { key: row.token });
      toast(`Key ${label(row)} ${blocked ? "blocked: it is refused from now on" : "unblocked"}.`);
      await load();
    } catch (error) {
      toast(`Could not ${blocked ? "block" : "unblock"} ${label(row)}: ${error.message}`, "error");
    }
  }

  async function regenerate(row) {
    const ok = await confirmAction({ title: "Regenerate key?", confirm: "Regenerate",
      message: `The current value of ${label(row)} stops working at once; its settings and spend carry over to the new value.` });
    if (!ok) return;
    try {
      const answer = await api.post("/key/regenerate", { key: row.token });
      await showSecret("New key value", answer.key);
      await load();
    } catch (error) {
      toast(`Could not regenerate ${label(row)}: ${error.message}`, "error");
    }
  }

  async function remove(row) {
    const ok = await confirmAction({ title: "Delete key?", confirm: "Delete", danger: true,
      message: `${label(row)} will be refused from now on. Its spend history is kept.` });
    if (!ok) return;
    try {
      await api.post("/key/delete", { keys: [row.token] });
      toast(`Key ${label(row)} deleted.`);
      await load();
    } catch (error) {
      toast(`Could not delete ${label(row)}: ${error.message}`, "error");
    }
  }

  async function edit(row) {
    let modelChoices = [];
    try { modelChoices = await models(); } catch (error) { toast(`Models could not be loaded: ${error.message}`, "error"); }
    const form = h("form", { novalidate: true },
      field({ label: "Alias", name: "key_alias", value: row.key_alias ?? "", attrs: { autocomplete: "off" } }),
      ...limitFields(row, modelChoices),
      h("div", { class: "form-actions" },
        h("button", { class: "btn", type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { class: "btn primary", type: "submit" }, "Save")));
    const dialog = openDialog(`Edit key ${label(row)}`, form);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitting(form, async () => {
        const values = formValues(form);
        await api.post("/key/update", { key: row.token, ...textBody(values, ["key_alias"], { update: true }),
          ...limitsBody(values, { update: true }) });
        dialog.close();
        toast(`Key ${values.key_alias || row.key_name} saved.`);
        await load();
      });
    });
  }

  async function createKey() {
    let modelChoices = [];
    let teams = [];
    try {
      [modelChoices, teams] = await Promise.all([models(), allTeams(1000)]);
    } catch (error) {
      toast(`Models or teams could not be loaded: ${error.message}`, "error");
    }
    const form = h("form", { novalidate: true },
      h("div", { class: "form-grid" },
        field({ label: "Alias", name: "key_alias", hint: "A name to find the key by, e.g. the app or customer.", attrs: { autocomplete: "off" } }),
        field({ label: "Expires after", name: "duration", type: "select", value: "", options: DURATIONS }),
        field({ label: "User id", name: "user_id", hint: "Optional. Billing charges this user.", attrs: { autocomplete: "off" } }),
        field({ label: "Team", name: "team_id", type: "select", value: "",
          options: [["", "No team"], ...teams.map((t) => [t.team_id, t.team_alias ? `${t.team_alias} (${t.team_id})` : t.team_id])] })),
      ...limitFields({}, modelChoices),
      h("div", { class: "form-actions" },
        h("button", { class: "btn", type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { class: "btn primary", type: "submit" }, "Create key")));
    const dialog = openDialog("Create a key", form);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitting(form, async () => {
        const values = formValues(form);
        const body = { ...textBody(values, ["key_alias", "duration", "user_id", "team_id"]), ...limitsBody(values) };
        const answer = await api.post("/key/generate", body);
        dialog.close();
        await showSecret(`Key ${answer.key_alias || answer.key_name} created`, answer.key);
        await load();
      });
    });
  }

  await load();
}
