// Where Stripe Checkout sends the customer back: success (wait for the webhook's credit) or cancel.

import { api } from "../api.js";
import { h, clear, errorNotice, fill, loading, notice } from "../dom.js";
import { money } from "../format.js";
import { pageHead } from "./common.js";
import { balanceCards } from "./billing_common.js";

const WAIT_MS = 30000;
const POLL_MS = 1000;

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function creditFor(sessionId) {
  const answer = await api.get("/stripe/transactions", { limit: 50 });
  return answer.data.find((row) => row.kind === "topup" && row.reference === sessionId) || null;
}

export async function renderBillingReturn(main, ctx, outcome) {
  const back = h("p", { class: "section" }, h("a", { href: "/ui/billing", "data-link": "" }, "Back to billing"), " · ",
    h("a", { href: "/ui/usage", "data-link": "" }, "See your usage"));
  const status = h("div");
  const balance = h("div");
  if (outcome === "cancel") {
    main.append(pageHead("Top-up cancelled"), notice("info", h("p", {}, "You left the payment page: nothing was charged. You can start again at any time.")), balance, back);
  } else {
    main.append(pageHead("Thank you"), status, balance, back);
  }

  const showBalance = async () => {
    try {
      const account = await api.optional("/stripe/balance");
      if (!ctx.alive()) return;
      clear(balance);
      if (account) balance.append(h("h2", {}, "Your balance"), balanceCards(account));
    } catch (error) {
      fill(balance, errorNotice(error, "Your balance could not be loaded"));
    }
  };
  if (outcome === "cancel") {
    await showBalance();
    return;
  }

  const sessionId = new URLSearchParams(window.location.search).get("session_id");
  if (!sessionId) {
    status.append(notice("info", h("p", {}, "Your payment is being processed. The credit appears in your balance once Stripe confirms it.")));
    await showBalance();
    return;
  }
  status.append(loading("Waiting for Stripe to confirm your payment…"));
  const deadline = Date.now() + WAIT_MS;
  try {
    for (;;) {
      const entry = await creditFor(sessionId);
      if (!ctx.alive()) return;
      if (entry) {
        fill(status, notice("ok", h("p", {}, `Payment received: ${money(entry.amount)} was added to your balance.`)));
        break;
      }
      if (Date.now() > deadline) {
        fill(status, notice("warn", h("p", {}, "Stripe has not confirmed the payment yet. It usually takes a few seconds; the credit appears in your balance as soon as it does. You can leave this page.")));
        break;
      }
      await sleep(POLL_MS);
    }
  } catch (error) {
    fill(status, errorNotice(error, "The payment could not be checked"));
  }
  await showBalance();
}
