// Admin: prepaid balances, recent top-ups and refunds, manual adjustments, and (when the proxy has
// them) the meter-event outbox and subscriptions.

import { api } from "../api.js";
import { h, badge, clear, empty, errorNotice, field, fill, formValues, loading, notice, openDialog, submitting, toast } from "../dom.js";
import { decimalText, money, number, plural, when } from "../format.js";
import { dataTable } from "../table.js";
import { pageHead, section, stat } from "./common.js";
import { kindLabel, ledgerTable, meterEventsSection, subscriptionsSection } from "./billing_common.js";

const ACCOUNT_TYPES = [["user", "User"], ["team", "Team"], ["end_user", "End user"]];
const MOVEMENTS = new Set(["topup", "refund", "dispute", "topup_failed"]);

export async function renderAdminBilling(main, ctx) {
  main.append(pageHead("Billing", "Prepaid credit: balances, top-ups and refunds from Stripe, and manual adjustments."));
  const message = h("div");
  const cards = h("div", { class: "grid" });
  const balances = h("div");
  const movements = h("div");
  const extra = h("div");
  main.append(message, cards);

  let accounts = [];
  const accountName = (a) => `${a.account_type} ${a.account_id}`;

  const adjustForm = h("form", { class: "card", novalidate: true, "aria-labelledby": "adjust-title" },
    h("h2", { id: "adjust-title" }, "Adjust a balance"),
    h("p", { class: "muted" }, "Credits (positive) or debits (negative) an account outside Stripe, e.g. a goodwill credit. The reason is kept in the ledger."),
    h("div", { class: "form-grid" },
      field({ label: "Account type", name: "account_type", type: "select", value: "user", options: ACCOUNT_TYPES }),
      field({ label: "Account id", name: "account_id", required: true, hint: "The user id (or team id) that pays.", attrs: { autocomplete: "off" } }),
      field({ label: "Amount (USD)", name: "amount", required: true, hint: "e.g. 10 or -2.50", attrs: { inputmode: "decimal", autocomplete: "off" } }),
      field({ label: "Reason", name: "reason", required: true, attrs: { maxlength: 500, autocomplete: "off" } })),
    h("div", { class: "form-actions" }, h("button", { class: "btn primary", type: "submit" }, "Apply adjustment")));
  adjustForm.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(adjustForm, async () => {
      const values = formValues(adjustForm);
      const amount = decimalText(values.amount, { signed: true });
      if (amount === null || Number(amount) === 0) throw Object.assign(new Error("Enter a non-zero amount with at most two decimals, e.g. 10 or -2.50."), { param: "amount" });
      if (!values.account_id) throw Object.assign(new Error("Enter the account id."), { param: "account_id" });
      if (!values.reason) throw Object.assign(new Error("Enter a reason; it is kept in the ledger."), { param: "reason" });
      const answer = await api.post("/stripe/balance/adjust", { account_type: values.account_type, account_id: values.account_id, amount, reason: values.reason });
      toast(`New balance of ${answer.account_type} ${answer.account_id}: ${money(answer.balance)}.`);
      adjustForm.reset();
      await load();
    });
  });

  function ledger(account) {
    const body = h("div", {}, loading());
    openDialog(`Ledger of ${accountName(account)}`, body);
    api.get("/stripe/transactions", { account_type: account.account_type, account_id: account.account_id, limit: 200 })
      .then((answer) => {
        fill(body, 
          h("p", {}, `Balance ${money(account.balance, account.currency)}; ${money(account.reserved, account.currency)} reserved for requests in flight.`),
          ledgerTable(answer.data, account.currency, `Ledger of ${accountName(account)}`),
          answer.has_more ? h("p", { class: "muted" }, "Showing the newest 200 entries.") : null);
      })
      .catch((error) => fill(body, errorNotice(error, "The ledger could not be loaded")));
  }

  const balanceTable = dataTable({
    caption: "Balances", pageSize: 20, sort: { key: "balance", dir: "asc" },
    empty: () => empty("No prepaid accounts yet.", "An account appears when it first tops up, spends or is adjusted below."),
    columns: [
      { key: "account_id", label: "Account", render: (a) => h("div", {}, a.account_id, h("div", { class: "sub" }, a.account_type)) },
      { key: "balance", label: "Balance", numeric: true, render: (a) => money(a.balance, a.currency) },
      { key: "reserved", label: "Reserved", numeric: true, render: (a) => money(a.reserved, a.currency) },
      { key: "total_topups", label: "Topped up", numeric: true, render: (a) => money(a.total_topups, a.currency) },
      { key: "total_spent", label: "Spent", numeric: true, render: (a) => money(a.total_spent, a.currency) },
      { key: "low_balance", label: "Status", render: (a) => (a.low_balance
        ? badge(`Low (under ${money(a.low_balance_threshold, a.currency)})`, "warn") : badge("OK", "ok")) },
      { key: "stripe_customer_id", label: "Stripe customer", render: (a) => (a.stripe_customer_id ? h("span", { class: "mono" }, a.stripe_customer_id) : "—") },
      { key: "actions", label: "Actions", sortable: false, render: (a) => h("div", { class: "actions" },
        h("button", { class: "btn small", type: "button", "aria-label": `Ledger of ${accountName(a)}`, onclick: () => ledger(a) }, "Ledger"),
        h("button", { class: "btn small", type: "button", "aria-label": `Adjust ${accountName(a)}`, onclick: () => {
          adjustForm.elements.account_type.value = a.account_type;
          adjustForm.elements.account_id.value = a.account_id;
          adjustForm.elements.amount.focus();
        } }, "Adjust")) },
    ],
  });

  const movementTable = dataTable({
    caption: "Recent top-ups and refunds", pageSize: 15, sort: { key: "created_at", dir: "desc" },
    empty: () => empty("No top-ups or refunds yet.", "Customers top up from their own Billing page; payments show here once Stripe confirms them."),
    columns: [
      { key: "created_at", label: "When", render: (r) => when(r.created_at) },
      { key: "account", label: "Account", value: (r) => accountName(r.account), render: (r) => accountName(r.account) },
      { key: "kind", label: "What", render: (r) => kindLabel(r.kind) },
      { key: "amount", label: "Amount", numeric: true, render: (r) => money(r.amount, r.account.currency) },
      { key: "reference", label: "Reference", render: (r) => h("span", { class: "mono" }, r.reference || "—") },
    ],
  });

  async function loadMovements() {
    const funded = accounts.filter((a) => a.total_topups > 0).slice(0, 50);
    const found = [];
    for (let i = 0; i < funded.length; i += 5) {
      const answers = await Promise.all(funded.slice(i, i + 5).map((a) => api.get("/stripe/transactions",
        { account_type: a.account_type, account_id: a.account_id, limit: 50 }).then((t) => [a, t.data])));
      for (const [account, rows] of answers) {
        for (const row of rows) if (MOVEMENTS.has(row.kind)) found.push({ ...row, account });
      }
    }
    return found;
  }

  async function load() {
    fill(message, loading("Loading balances…"));
    let answer;
    try {
      answer = await api.optional("/stripe/balances", { limit: 1000 });
    } catch (error) {
      fill(message, errorNotice(error, "Balances could not be loaded"));
      return;
    }
    if (!ctx.alive()) return;
    clear(message);
    if (answer === null) {
      clear(cards);
      message.append(notice("info",
        h("p", {}, "Prepaid billing is not enabled on this proxy."),
        h("p", {}, "To sell credits, set STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET and STRIPE_USE_PREPAID_BALANCE=true, point a Stripe webhook at /stripe/webhook, and restart.")));
      balances.remove(); movements.remove(); adjustForm.remove();
      return;
    }
    accounts = answer.data;
    const total = accounts.reduce((a, x) => a + x.balance, 0);
    const low = accounts.filter((a) => a.low_balance).length;
    fill(cards, 
      stat("Accounts", number(accounts.length), accounts.length >= 1000 ? "Showing the first 1,000" : null),
      stat("Credit outstanding", money(total), "Sum of every balance"),
      stat("Topped up", money(accounts.reduce((a, x) => a + x.total_topups, 0)), "All time"),
      stat("Low balance", number(low), low ? plural(low, "account") + " below the threshold" : "None"));
    balanceTable.update(accounts);
    if (!balances.isConnected) main.append(section("Balances", balances), section("Recent top-ups and refunds", movements), adjustForm, extra);
    fill(balances, balanceTable);
    fill(movements, loading("Loading top-ups…"));
    try {
      const rows = await loadMovements();
      if (!ctx.alive()) return;
      fill(movements, movementTable);
      movementTable.update(rows);
    } catch (error) {
      fill(movements, errorNotice(error, "Top-ups could not be loaded"));
    }
  }

  await load();
  if (!ctx.alive() || !balances.isConnected) return;
  // Each of these is hidden when the proxy has no such endpoint.
  const [outbox, subscriptions] = await Promise.all([meterEventsSection(ctx), subscriptionsSection()]);
  if (!ctx.alive()) return;
  if (subscriptions) extra.append(subscriptions);
  if (outbox) extra.append(outbox);
}
