// Admin: teams — list, create, budgets and limits, members, delete.

import { api } from "../api.js";
import { h, clear, confirmAction, empty, errorNotice, field, fill, formValues, loading, openDialog, submitting, toast } from "../dom.js";
import { money, plural, when } from "../format.js";
import { dataTable } from "../table.js";
import { allTeams, blockedBadge, budgetCell, limitFields, limitsBody, models, modelsCell, pageHead,
  textBody } from "./common.js";

export async function renderTeams(main, ctx) {
  const create = h("button", { class: "btn primary", type: "button", onclick: () => createTeam() }, "Create team");
  main.append(pageHead("Teams", "Groups of users and keys with a shared budget and model access.", create));
  const message = h("div");
  let teams = [];
  const name = (t) => t.team_alias || t.team_id;

  const columns = [
    { key: "team_id", label: "Team", value: name,
      render: (t) => h("div", {}, name(t), t.team_alias ? h("div", { class: "sub mono" }, t.team_id) : null) },
    { key: "members", label: "Members", numeric: true, value: (t) => t.members_with_roles.length,
      render: (t) => String(t.members_with_roles.length) },
    { key: "spend", label: "Spend", numeric: true, render: (t) => money(t.spend) },
    { key: "max_budget", label: "Budget", render: budgetCell },
    { key: "models", label: "Models", value: (t) => (t.models || []).join(","), render: modelsCell },
    { key: "blocked", label: "Status", render: blockedBadge },
    { key: "created_at", label: "Created", render: (t) => when(t.created_at) },
    { key: "actions", label: "Actions", sortable: false, render: (t) => h("div", { class: "actions" },
      h("button", { class: "btn small", type: "button", "aria-label": `Members of team ${name(t)}`, onclick: () => members(t) }, "Members"),
      h("button", { class: "btn small", type: "button", "aria-label": `Edit team ${name(t)}`, onclick: () => edit(t) }, "Edit"),
      h("button", { class: "btn small danger", type: "button", "aria-label": `Delete team ${name(t)}`, onclick: () => remove(t) }, "Delete")) },
  ];
  const table = dataTable({ caption: "Teams", columns, sort: { key: "created_at", dir: "desc" },
    empty: () => empty("No teams yet.", "Create one with “Create team”, then add members and give its keys the team id.") });
  main.append(message, table);

  async function load() {
    fill(message, loading("Loading teams…"));
    try {
      teams = await allTeams();
      if (!ctx.alive()) return;
      clear(message);
      table.update(teams);
    } catch (error) {
      fill(message, errorNotice(error, "Teams could not be loaded"));
    }
  }

  function teamForm(row, modelChoices, creating) {
    return [
      h("div", { class: "form-grid" },
        creating ? field({ label: "Team id", name: "team_id", hint: "Empty: one is generated.", attrs: { autocomplete: "off" } }) : null,
        field({ label: "Name", name: "team_alias", value: row.team_alias ?? "", attrs: { autocomplete: "off" } })),
      ...limitFields(row, modelChoices),
    ];
  }

  async function createTeam() {
    let modelChoices = [];
    try { modelChoices = await models(); } catch (error) { toast(`Models could not be loaded: ${error.message}`, "error"); }
    const form = h("form", { novalidate: true }, ...teamForm({}, modelChoices, true),
      h("div", { class: "form-actions" },
        h("button", { class: "btn", type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { class: "btn primary", type: "submit" }, "Create team")));
    const dialog = openDialog("Create a team", form);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitting(form, async () => {
        const values = formValues(form);
        const answer = await api.post("/team/new", { ...textBody(values, ["team_id", "team_alias"]), ...limitsBody(values) });
        dialog.close();
        toast(`Team ${name(answer)} created.`);
        await load();
      });
    });
  }

  async function edit(row) {
    let modelChoices = [];
    try { modelChoices = await models(); } catch (error) { toast(`Models could not be loaded: ${error.message}`, "error"); }
    const form = h("form", { novalidate: true }, ...teamForm(row, modelChoices, false),
      field({ label: "Blocked (every key of this team is refused)", name: "blocked", type: "checkbox", value: row.blocked }),
      h("div", { class: "form-actions" },
        h("button", { class: "btn", type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { class: "btn primary", type: "submit" }, "Save")));
    const dialog = openDialog(`Edit team ${name(row)}`, form);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitting(form, async () => {
        const values = formValues(form);
        await api.post("/team/update", { team_id: row.team_id, ...textBody(values, ["team_alias"], { update: true }),
          ...limitsBody(values, { update: true }), blocked: values.blocked });
        dialog.close();
        toast(`Team ${name(row)} saved.`);
        await load();
      });
    });
  }

  async function remove(row) {
    const ok = await confirmAction({ title: "Delete team?", confirm: "Delete", danger: true,
      message: `${name(row)} and every key of the team will be refused from now on. Its users stay.` });
    if (!ok) return;
    try {
      await api.post("/team/delete", { team_ids: [row.team_id] });
      toast(`Team ${name(row)} deleted.`);
      await load();
    } catch (error) {
      toast(`Could not delete ${name(row)}: ${error.message}`, "error");
    }
  }

  function members(row) {
    const list = h("div");
    const form = h("form", { novalidate: true },
      h("div", { class: "form-grid" },
        field({ label: "User id", name: "user_id", required: true, attrs: { autocomplete: "off" } }),
        field({ label: "Role", name: "role", type: "select", value: "user", options: [["user", "Member"], ["admin", "Team admin"]] })),
      h("div", { class: "form-actions" }, h("button", { class: "btn primary", type: "submit" }, "Add member")));
    openDialog(`Members of ${name(row)}`, list, h("h3", {}, "Add a member"), form);

    const show = (rows) => {
      fill(list, h("p", { class: "muted" }, plural(rows.length, "member")), dataTable({
        caption: `Members of ${name(row)}`, pageSize: 10, rows,
        empty: empty("No members yet.", "Add a user id below; unknown users are created."),
        columns: [
          { key: "user_id", label: "User" },
          { key: "role", label: "Role", render: (m) => (m.role === "admin" ? "Team admin" : "Member") },
          { key: "actions", label: "Actions", sortable: false, render: (m) => h("button", {
            class: "btn small danger", type: "button", "aria-label": `Remove ${m.user_id} from the team`,
            onclick: async () => {
              try {
                const answer = await api.post("/team/member_delete", { team_id: row.team_id, user_id: m.user_id });
                show(answer.members_with_roles);
                toast(`${m.user_id} removed from ${name(row)}.`);
                load();
              } catch (error) {
                toast(`Could not remove ${m.user_id}: ${error.message}`, "error");
              }
            } }, "Remove") },
        ] }));
    };
    show(row.members_with_roles);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitting(form, async () => {
        const values = formValues(form);
        const answer = await api.post("/team/member_add", { team_id: row.team_id, member: { user_id: values.user_id, role: values.role } });
        form.elements.user_id.value = "";
        show(answer.members_with_roles);
        toast(`${values.user_id} added to ${name(row)}.`);
        load();
      });
    });
  }

  await load();
}
