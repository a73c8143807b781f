// Admin: users — list, create (optionally with a first key), budgets and limits, details, delete.

import { api } from "../api.js";
import { h, clear, confirmAction, empty, errorNotice, field, fill, formValues, loading, openDialog, props, showSecret, submitting, toast } from "../dom.js";
import { money, when } from "../format.js";
import { dataTable } from "../table.js";
import { allTeams, allUsers, blockedBadge, budgetCell, limitFields, limitsBody, models, modelsCell, pageHead,
  textBody } from "./common.js";

const ROLES = [["", "Not set"], ["customer", "Customer"], ["internal_user", "Internal user"],
  ["internal_user_viewer", "Internal viewer"], ["proxy_admin", "Proxy admin"]];

function identityFields(row = {}, { creating = false } = {}) {
  return h("div", { class: "form-grid" },
    creating ? field({ label: "User id", name: "user_id", hint: "Empty: one is generated.", attrs: { autocomplete: "off" } }) : null,
    field({ label: "Email", name: "user_email", type: "email", value: row.user_email ?? "", attrs: { autocomplete: "off" } }),
    field({ label: "Display name", name: "user_alias", value: row.user_alias ?? "", attrs: { autocomplete: "off" } }),
    field({ label: "Role", name: "user_role", type: "select", value: row.user_role ?? "", options: ROLES }));
}

export async function renderUsers(main, ctx) {
  const create = h("button", { class: "btn primary", type: "button", onclick: () => createUser() }, "Create user");
  main.append(pageHead("Users", "People and customers; their keys share the user's budget and billing account.", create));
  const message = h("div");
  const search = field({ label: "Search", name: "q", type: "search", hint: "Id, name or email", attrs: { autocomplete: "off" } });
  search.classList.add("grow");
  let users = [];

  const columns = [
    { key: "user_id", label: "User", render: (r) => h("div", {}, r.user_id,
      r.user_alias || r.user_email ? h("div", { class: "sub" }, [r.user_alias, r.user_email].filter(Boolean).join(" · ")) : null) },
    { key: "user_role", label: "Role", render: (r) => (ROLES.find(([v]) => v === r.user_role) || [null, r.user_role || "—"])[1] },
    { key: "spend", label: "Spend", numeric: true, render: (r) => money(r.spend) },
    { key: "max_budget", label: "Budget", render: budgetCell },
    { key: "models", label: "Models", value: (r) => (r.models || []).join(","), render: modelsCell },
    { key: "blocked", label: "Status", render: blockedBadge },
    { key: "created_at", label: "Created", render: (r) => when(r.created_at) },
    { key: "actions", label: "Actions", sortable: false, render: (r) => h("div", { class: "actions" },
      h("button", { class: "btn small", type: "button", "aria-label": `Details of user ${r.user_id}`, onclick: () => details(r) }, "Details"),
      h("button", { class: "btn small", type: "button", "aria-label": `Edit user ${r.user_id}`, onclick: () => edit(r) }, "Edit"),
      h("button", { class: "btn small danger", type: "button", "aria-label": `Delete user ${r.user_id}`, onclick: () => remove(r) }, "Delete")) },
  ];
  const table = dataTable({
    caption: "Users", columns, sort: { key: "created_at", dir: "desc" },
    empty: () => (users.length ? empty("No user matches the search.")
      : empty("No users yet.", "Create one with “Create user”; a first key can be made for them at the same time.")),
  });
  const filtered = () => {
    const q = search.querySelector("input").value.trim().toLowerCase();
    return users.filter((r) => !q || [r.user_id, r.user_alias, r.user_email].some((v) => v && v.toLowerCase().includes(q)));
  };
  search.querySelector("input").addEventListener("input", () => table.update(filtered()));
  main.append(message, h("div", { class: "toolbar" }, search), table);

  async function load() {
    fill(message, loading("Loading users…"));
    try {
      users = await allUsers();
      if (!ctx.alive()) return;
      clear(message);
      table.update(filtered());
    } catch (error) {
      fill(message, errorNotice(error, "Users could not be loaded"));
    }
  }

  async function details(row) {
    const body = h("div", {}, loading());
    openDialog(`User ${row.user_id}`, body);
    try {
      const info = await api.get("/user/info", { user_id: row.user_id });
      fill(body, 
        props([["Email", info.user_info.user_email], ["Spend", money(info.user_info.spend)],
          ["Budget", info.user_info.max_budget === null ? "No budget" : money(info.user_info.max_budget)],
          ["Teams", info.teams.length ? info.teams.map((t) => t.team_alias || t.team_id).join(", ") : "None"], ["Stripe customer", info.user_info.stripe_customer_id]]),
        h("h3", {}, "Keys"),
        dataTable({ caption: `Keys of ${row.user_id}`, pageSize: 10, rows: info.keys,
          empty: empty("No keys.", "Create one on the Keys page with this user id."),
          columns: [
            { key: "key_alias", label: "Key", value: (k) => k.key_alias || k.key_name,
              render: (k) => h("div", {}, k.key_alias || "(no alias)", h("div", { class: "sub mono" }, k.key_name)) },
            { key: "spend", label: "Spend", numeric: true, render: (k) => money(k.spend) },
            { key: "blocked", label: "Status", render: blockedBadge },
          ] }));
    } catch (error) {
      fill(body, errorNotice(error, "User details could not be loaded"));
    }
  }

  async function edit(row) {
    let modelChoices = [];
    try { modelChoices = await models(); } catch (error) { toast(`Models could not be loaded: ${error.message}`, "error"); }
    const form = h("form", { novalidate: true },
      identityFields(row),
      ...limitFields(row, modelChoices),
      field({ label: "Blocked (every key of this user is refused)", name: "blocked", type: "checkbox", value: row.blocked }),
      h("div", { class: "form-actions" },
        h("button", { class: "btn", type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { class: "btn primary", type: "submit" }, "Save")));
    const dialog = openDialog(`Edit user ${row.user_id}`, form);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitting(form, async () => {
        const values = formValues(form);
        await api.post("/user/update", { user_id: row.user_id, ...textBody(values, ["user_email", "user_alias", "user_role"], { update: true }),
          ...limitsBody(values, { update: true }), blocked: values.blocked });
        dialog.close();
        toast(`User ${row.user_id} saved.`);
        await load();
      });
    });
  }

  async function remove(row) {
    const ok = await confirmAction({ title: "Delete user?", confirm: "Delete", danger: true,
      message: `${row.user_id} and every key of theirs will be refused from now on. Spend history is kept.` });
    if (!ok) return;
    try {
      await api.post("/user/delete", { user_ids: [row.user_id] });
      toast(`User ${row.user_id} deleted.`);
      await load();
    } catch (error) {
      toast(`Could not delete ${row.user_id}: ${error.message}`, "error");
    }
  }

  async function createUser() {
    let modelChoices = [];
    let teams = [];
    try {
      [modelChoices, teams] = await Promise.all([models(), allTeams(1000)]);
    } catch (error) {
      toast(`Models or teams could not be loaded: ${error.message}`, "error");
    }
    const form = h("form", { novalidate: true },
      identityFields({}, { creating: true }),
      field({ label: "Team", name: "team_id", type: "select", value: "",
        options: [["", "No team"], ...teams.map((t) => [t.team_id, t.team_alias ? `${t.team_alias} (${t.team_id})` : t.team_id])] }),
      ...limitFields({}, modelChoices),
      field({ label: "Create a first key for this user", name: "auto_create_key", type: "checkbox", value: true }),
      h("div", { class: "form-actions" },
        h("button", { class: "btn", type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { class: "btn primary", type: "submit" }, "Create user")));
    const dialog = openDialog("Create a user", form);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitting(form, async () => {
        const values = formValues(form);
        const answer = await api.post("/user/new", {
          ...textBody(values, ["user_id", "user_email", "user_alias", "user_role", "team_id"]),
          ...limitsBody(values), auto_create_key: values.auto_create_key,
        });
        dialog.close();
        if (answer.key) await showSecret(`First key of ${answer.user_id}`, answer.key);
        else toast(`User ${answer.user_id} created.`);
        await load();
      });
    });
  }

  await load();
}
