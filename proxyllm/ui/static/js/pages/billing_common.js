// Billing pieces the admin and customer pages share.

import { api } from "../api.js";
import { h, badge, empty, errorNotice, fill, notice } from "../dom.js";
import { money, number, when } from "../format.js";
import { dataTable } from "../table.js";
import { section, stat } from "./common.js";

const KINDS = {
  topup: "Top-up", usage: "Usage", adjustment: "Adjustment", refund: "Refund", dispute: "Dispute",
  topup_failed: "Failed top-up", reversal: "Reversal", auto_recharge: "Automatic recharge",
  grant: "Promotional credit", grant_expiry: "Promotional credit expired",
};

export function kindLabel(kind) {
  return KINDS[kind] || kind;
}

export function ledgerTable(rows, currency = "usd", caption = "Ledger") {
  return dataTable({
    caption, pageSize: 15, rows, sort: { key: "id", dir: "desc" },
    empty: () => empty("No transactions yet.", "Top-ups, usage and adjustments are listed here as they happen."),
    columns: [
      { key: "id", label: "When", render: (r) => when(r.created_at) },
      { key: "kind", label: "What", render: (r) => kindLabel(r.kind) },
      { key: "amount", label: "Amount", numeric: true,
        render: (r) => h("span", { class: "nowrap" }, r.amount > 0 ? `+${money(r.amount, currency)}` : money(r.amount, currency)) },
      { key: "balance_after", label: "Balance after", numeric: true, render: (r) => money(r.balance_after, currency) },
      { key: "description", label: "Details", render: (r) => r.description || h("span", { class: "mono" }, r.reference || "—") },
    ],
  });
}

export function balanceCards(account) {
  const cur = account.currency;
  return h("div", { class: "grid" },
    stat("Balance", money(account.balance, cur), account.low_balance ? "Low: top up soon" : "Prepaid credit"),
    stat("Available", money(account.available, cur), account.reserved ? `${money(account.reserved, cur)} held for requests in flight` : "Ready to spend"),
    stat("Topped up", money(account.total_topups, cur), "All time"),
    stat("Spent", money(account.total_spent, cur), "All time"));
}

export function lowBalanceWarning(account, billingLink) {
  if (!account.low_balance) return null;
  return notice("warn", h("p", {},
    `Your balance is low (${money(account.balance, account.currency)}, under ${money(account.low_balance_threshold, account.currency)}). `,
    "Requests are refused once it runs out. ", billingLink || null));
}

const GOOD = new Set(["sent", "active", "trialing", "paid"]);
const BAD = new Set(["failed", "canceled", "cancelled", "past_due", "unpaid", "incomplete_expired"]);

export function statusBadge(status) {
  const text = String(status ?? "unknown").replace(/_/g, " ");
  return badge(text, GOOD.has(status) ? "ok" : BAD.has(status) ? "danger" : "warn");
}

function periodEnd(value) {
  if (!value) return "—";
  return when(typeof value === "number" ? new Date(value * 1000).toISOString() : value);
}

/** Admin: the meter-event outbox (pending / sent / failed). Null when this proxy has no meters API. */
export async function meterEventsSection(ctx) {
  const status = h("select", { id: "meter-status", name: "status" },
    [["", "All"], ["pending", "Pending"], ["sent", "Sent"], ["failed", "Failed"]].map(([v, t]) => h("option", { value: v }, t)));
  const counts = h("div", { class: "grid" });
  const rows = h("div");
  const table = dataTable({
    caption: "Meter events", pageSize: 15, sort: { key: "timestamp", dir: "desc" },
    empty: () => empty("No meter events.", "With Billing Meters on (STRIPE_METER_EVENT_NAME), each request's usage is queued here and sent to Stripe."),
    columns: [
      { key: "timestamp", label: "Usage at", render: (r) => periodEnd(r.timestamp) },
      { key: "account_id", label: "Account", render: (r) => h("div", {}, r.account_id, h("div", { class: "sub" }, r.account_type)) },
      { key: "event_name", label: "Event" },
      { key: "value", label: "Value", numeric: true, render: (r) => number(r.value) },
      { key: "status", label: "Status", render: (r) => statusBadge(r.status) },
      { key: "attempts", label: "Attempts", numeric: true },
      { key: "last_error", label: "Last error", render: (r) => r.last_error || "—" },
      { key: "sent_at", label: "Sent", render: (r) => when(r.sent_at) },
    ],
  });
  const load = async () => {
    const answer = await api.optional("/stripe/meter-events", { limit: 500, status: status.value });
    if (answer === null) return false;
    fill(counts, ...Object.entries(answer.counts || {}).map(([k, v]) => stat(k[0].toUpperCase() + k.slice(1), number(v),
      k === "failed" && v ? "Stripe refused these; see the last error" : k === "pending" ? "Waiting to be sent" : null)));
    table.update(answer.data);
    return true;
  };
  try {
    if (!(await load()) || !ctx.alive()) return null;
  } catch (error) {
    return section("Meter events", errorNotice(error, "Meter events could not be loaded"));
  }
  status.addEventListener("change", () => load().catch((error) => fill(rows, errorNotice(error))));
  return section("Meter events",
    h("p", { class: "muted" }, "Usage reported to Stripe Billing Meters through the outbox; failed events are retried."),
    counts,
    h("div", { class: "toolbar" }, h("div", { class: "field" }, h("label", { for: "meter-status" }, "Status"), status)),
    rows, table);
}

const subscriptionColumns = [
  { key: "subscription_id", label: "Subscription", render: (r) => h("span", { class: "mono" }, r.subscription_id) },
  { key: "status", label: "Status", render: (r) => h("div", {}, statusBadge(r.status),
    r.cancel_at_period_end ? h("div", { class: "sub" }, "Ends at period end") : null) },
  { key: "price_id", label: "Price", render: (r) => (r.price_id ? h("span", { class: "mono" }, r.price_id) : "—") },
  { key: "current_period_end", label: "Period ends", render: (r) => periodEnd(r.current_period_end) },
  { key: "last_invoice_status", label: "Last invoice", render: (r) => (r.last_invoice_status ? statusBadge(r.last_invoice_status) : "—") },
];

/** Admin: every subscription Stripe told us about. Null when absent or when there are none. */
export async function subscriptionsSection() {
  let answer;
  try {
    answer = await api.optional("/stripe/subscriptions", { limit: 1000 });
  } catch (error) {
    return section("Subscriptions", errorNotice(error, "Subscriptions could not be loaded"));
  }
  if (!answer || !answer.data.length) return null;
  return section("Subscriptions", dataTable({
    caption: "Subscriptions", pageSize: 15, rows: answer.data,
    columns: [{ key: "account_id", label: "Account", render: (r) => h("div", {}, r.account_id, h("div", { class: "sub" }, r.account_type)) },
      ...subscriptionColumns],
  }));
}

/** Customer: their subscription and whether it gives access. Null when they have none. */
export async function customerSubscriptionSection() {
  let answer;
  try {
    answer = await api.optional("/stripe/subscription", null, [403, 404]);
  } catch (error) {
    return section("Subscription", errorNotice(error, "Your subscription could not be loaded"));
  }
  if (!answer || !answer.subscriptions.length) return null;
  return section("Subscription",
    answer.access ? notice("ok", h("p", {}, "Your subscription is active: requests are billed from your metered usage."))
      : notice("warn", h("p", {}, `Requests are refused: ${answer.reason || "no active subscription"}. Update your payment details with Stripe.`)),
    dataTable({ caption: "Your subscriptions", pageSize: 10, rows: answer.subscriptions, columns: subscriptionColumns }));
}
