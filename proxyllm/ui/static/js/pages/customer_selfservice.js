// Customer self-service on the billing page: the Stripe Billing Portal, automatic recharge (saved card,
// threshold, amount, monthly cap) and promotional credits.

import { api } from "../api.js";
import { h, badge, empty, errorNotice, field, fill, loading, notice, submitting, toast } from "../dom.js";
import { decimalText, money, when } from "../format.js";
import { dataTable } from "../table.js";
import { section } from "./common.js";
import { checkoutTarget } from "./customer_billing.js";

/** A button that opens the customer's Stripe Billing Portal (invoices, receipts, payment methods). */
export function portalSection() {
  const form = h("form", { class: "card", "aria-labelledby": "portal-title" },
    h("h2", { id: "portal-title" }, "Invoices, receipts and cards"),
    h("p", {}, "Stripe's billing portal lists your invoices and receipts and lets you manage saved cards."),
    h("div", { class: "form-actions" }, h("button", { class: "btn", type: "submit" }, "Manage billing on Stripe")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const answer = await api.post("/stripe/portal", { return_url: `${window.location.origin}/ui/billing` });
      const target = checkoutTarget(answer.url);
      if (!target) throw new Error("Stripe did not return a portal address.");
      window.location.assign(target);
      await new Promise(() => {});
    });
  });
  return form;
}

function amountField(label, name, value, hint) {
  return field({ label, name, required: true, hint, value: value ?? "",
    attrs: { inputmode: "decimal", autocomplete: "off" } });
}

/** Automatic recharge: save a card (Stripe Checkout, setup mode), then threshold, amount and cap. */
export async function autoRechargeSection(currency, ctx) {
  const body = h("div", {}, loading("Loading automatic recharge…"));
  const box = section("Automatic recharge", body);
  let state;
  try {
    state = await api.get("/stripe/auto_recharge");
  } catch (error) {
    fill(body, errorNotice(error, "Automatic recharge could not be loaded"));
    return box;
  }
  if (!ctx.alive()) return box;
  const cur = currency.toUpperCase();
  const status = state.enabled
    ? notice("ok", h("p", {}, `Automatic recharge is on: ${money(state.amount, currency)} when your balance falls under `,
      `${money(state.threshold, currency)}, at most ${money(state.monthly_cap, currency)} a month `,
      `(${money(state.charged_this_month, currency)} so far this month).`))
    : notice("info", h("p", {}, state.disabled_reason
      ? `Automatic recharge is off: ${state.disabled_reason}. Check your card, then turn it on again.`
      : "Automatic recharge is off."));

  const saveCard = h("form", { class: "card", "aria-labelledby": "card-title" },
    h("h2", { id: "card-title" }, "Saved card"),
    h("p", {}, state.card_saved ? badge("Card saved", "ok") : "No card saved yet: save one to recharge automatically."),
    h("div", { class: "form-actions" },
      h("button", { class: "btn", type: "submit" }, state.card_saved ? "Replace the card" : "Save a card")));
  saveCard.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(saveCard, async () => {
      const origin = window.location.origin;
      const answer = await api.post("/stripe/auto_recharge/card", {
        success_url: `${origin}/ui/billing`, cancel_url: `${origin}/ui/billing`,
      });
      const target = checkoutTarget(answer.checkout_url);
      if (!target) throw new Error("Stripe did not return a page to save the card.");
      window.location.assign(target);
      await new Promise(() => {});
    });
  });

  const enabled = field({ label: "Recharge automatically", name: "enabled", type: "checkbox", value: state.enabled });
  const settings = h("form", { class: "card", novalidate: true, "aria-labelledby": "recharge-title" },
    h("h2", { id: "recharge-title" }, "Recharge settings"),
    enabled,
    amountField(`When the balance falls under (${cur})`, "threshold", state.threshold, "e.g. 5"),
    amountField(`Add (${cur})`, "amount", state.amount, "Charged to the saved card, e.g. 20"),
    amountField(`At most per month (${cur})`, "monthly_cap", state.monthly_cap, "Never charged more than this in a calendar month"),
    h("div", { class: "form-actions" }, h("button", { class: "btn primary", type: "submit" }, "Save recharge settings")));
  settings.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(settings, async () => {
      const values = {};
      for (const name of ["threshold", "amount", "monthly_cap"]) {
        const text = decimalText(settings.querySelector(`[name="${name}"]`).value);
        if (text === null) throw Object.assign(new Error("Enter amounts such as 5 or 12.50."), { param: name });
        values[name] = text;
      }
      values.enabled = settings.querySelector('[name="enabled"]').checked;
      const saved = await api.post("/stripe/auto_recharge", values);
      toast(saved.enabled ? "Automatic recharge is on." : "Automatic recharge is off.");
      fill(body, (await autoRechargeSection(currency, ctx)).lastElementChild);
    });
  });
  fill(body, status, h("div", { class: "grid" }, saveCard, settings));
  return box;
}

/** Promotional credits: what was granted, what is left, when it expires. */
export async function grantsSection(currency) {
  const body = h("div", {}, loading("Loading promotional credits…"));
  const box = section("Promotional credits", body);
  try {
    const answer = await api.get("/stripe/grants");
    fill(body, dataTable({
      caption: "Promotional credits", pageSize: 10, rows: answer.data, sort: { key: "created_at", dir: "desc" },
      empty: () => empty("No promotional credits.", "Credits granted to you are spent before paid credit."),
      columns: [
        { key: "description", label: "Credit", render: (r) => r.description || "Promotional credit" },
        { key: "amount", label: "Granted", numeric: true, render: (r) => money(r.amount, currency) },
        { key: "remaining", label: "Left", numeric: true, render: (r) => money(r.remaining, currency) },
        { key: "priority", label: "Priority", numeric: true },
        { key: "expires_at", label: "Expires", render: (r) => r.expired ? badge("Expired", "warn") : (r.expires_at ? when(r.expires_at) : "Never") },
      ],
    }));
  } catch (error) {
    fill(body, errorNotice(error, "Promotional credits could not be loaded"));
  }
  return box;
}
