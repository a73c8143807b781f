// Customer: balance, top up through Stripe Checkout, the transaction ledger, and (when the proxy
// has them) subscription and metered usage.

import { api } from "../api.js";
import { h, clear, errorNotice, field, fill, loading, notice, submitting } from "../dom.js";
import { decimalText, money } from "../format.js";
import { pageHead, section } from "./common.js";
import { balanceCards, customerSubscriptionSection, ledgerTable, lowBalanceWarning } from "./billing_common.js";
import { autoRechargeSection, grantsSection, portalSection } from "./customer_selfservice.js";

const PRESETS = ["10", "25", "50", "100"];

export function checkoutTarget(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function topupForm(account) {
  const amount = field({ label: `Amount (${account.currency.toUpperCase()})`, name: "amount", required: true,
    hint: "Whole or with cents, e.g. 25 or 12.50. You pay on Stripe's secure page.",
    attrs: { inputmode: "decimal", autocomplete: "off", placeholder: "25" } });
  const input = amount.querySelector("input");
  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "topup-title" },
    h("h2", { id: "topup-title" }, "Add credit"),
    h("div", { class: "presets", role: "group", "aria-label": "Quick amounts" },
      PRESETS.map((v) => h("button", { class: "btn small", type: "button", onclick: () => { input.value = v; input.focus(); } },
        money(v, account.currency)))),
    amount,
    h("div", { class: "form-actions" }, h("button", { class: "btn primary", type: "submit" }, "Continue to payment")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const value = decimalText(input.value);
      if (value === null || Number(value) <= 0) {
        throw Object.assign(new Error("Enter an amount such as 25 or 12.50."), { param: "amount" });
      }
      const origin = window.location.origin;
      const answer = await api.post("/stripe/topup", {
        amount: value,
        success_url: `${origin}/ui/billing/success?session_id={CHECKOUT_SESSION_ID}`,
        cancel_url: `${origin}/ui/billing/cancel`,
      });
      const target = checkoutTarget(answer.checkout_url);
      if (!target) throw new Error("Stripe did not return a payment page address.");
      window.location.assign(target);
      await new Promise(() => {}); // keep the form busy while the browser leaves
    });
  });
  return form;
}

export async function renderCustomerBilling(main, ctx) {
  main.append(pageHead("Billing", "Prepaid credit for your API usage: top up, and see every transaction."));
  const top = h("div", {}, loading("Loading your balance…"));
  main.append(top);
  let account;
  try {
    account = await api.optional("/stripe/balance");
  } catch (error) {
    fill(top, errorNotice(error, "Your balance could not be loaded"));
    return;
  }
  if (!ctx.alive()) return;
  clear(top);
  if (account === null) {
    top.append(notice("info", h("p", {}, "Prepaid billing is not enabled on this proxy: there is nothing to top up. Ask the operator if you expected it.")));
    return;
  }
  fill(top, lowBalanceWarning(account), balanceCards(account));

  const ledger = h("div", {}, loading("Loading transactions…"));
  main.append(h("div", { class: "section grid" }, topupForm(account), portalSection()), section("Transactions", ledger));

  let rows = [];
  let table = null;
  const more = h("button", { class: "btn", type: "button", onclick: () => loadPage() }, "Load older transactions");
  async function loadPage() {
    more.disabled = true;
    try {
      const last = rows.length ? rows[rows.length - 1].id : undefined;
      const answer = await api.get("/stripe/transactions", { limit: 100, starting_after: last });
      if (!ctx.alive()) return;
      rows = [...rows, ...answer.data];
      if (!table) {
        table = ledgerTable(rows, account.currency, "Transactions");
        fill(ledger, table);
      } else {
        table.update(rows);
      }
      if (answer.has_more) ledger.append(more);
      else more.remove();
    } catch (error) {
      fill(ledger, errorNotice(error, "Transactions could not be loaded"));
    } finally {
      more.disabled = false;
    }
  }
  await loadPage();
  if (!ctx.alive()) return;
  main.append(await autoRechargeSection(account.currency, ctx));
  if (!ctx.alive()) return;
  main.append(await grantsSection(account.currency));

  const subscription = await customerSubscriptionSection();
  if (subscription && ctx.alive()) main.append(subscription);
}
