// The dashboard shell: who is signed in, the navigation, and which page renders where.

import { auth, setCsrf, whenSignedOut } from "./api.js";
import { clear, h, errorNotice, toast } from "./dom.js";
import { renderLogin } from "./pages/login.js";
import { renderKeys } from "./pages/keys.js";
import { renderUsers } from "./pages/users.js";
import { renderTeams } from "./pages/teams.js";
import { renderModels } from "./pages/models.js";
import { renderSpend } from "./pages/spend.js";
import { renderAdminBilling } from "./pages/admin_billing.js";
import { renderUsage } from "./pages/usage.js";
import { renderCustomerBilling } from "./pages/customer_billing.js";
import { renderBillingReturn } from "./pages/billing_return.js";

const BASE = "/ui";
const ADMIN = [
  { path: "spend", title: "Spend", render: renderSpend },
  { path: "keys", title: "Keys", render: renderKeys },
  { path: "users", title: "Users", render: renderUsers },
  { path: "teams", title: "Teams", render: renderTeams },
  { path: "models", title: "Models", render: renderModels },
  { path: "billing", title: "Billing", render: renderAdminBilling },
];
const CUSTOMER = [
  { path: "usage", title: "Usage", render: renderUsage },
  { path: "billing", title: "Billing", render: renderCustomerBilling },
];
const RETURNS = [
  { path: "billing/success", title: "Payment", render: (main, ctx) => renderBillingReturn(main, ctx, "success") },
  { path: "billing/cancel", title: "Top-up cancelled", render: (main, ctx) => renderBillingReturn(main, ctx, "cancel") },
];

const state = { session: null, generation: 0 };
const root = document.getElementById("app");

function currentPath() {
  const path = location.pathname.replace(/\/+$/, "");
  return path.startsWith(`${BASE}/`) ? path.slice(BASE.length + 1) : "";
}

export function navigate(path, { replace = false } = {}) {
  const url = path ? `${BASE}/${path}` : BASE;
  if (replace) history.replaceState({}, "", url);
  else history.pushState({}, "", url);
  render();
}

function pagesFor(session) {
  return session.role === "admin" ? ADMIN : CUSTOMER;
}

async function signOut() {
  try {
    const answer = await auth.signOut();
    setCsrf(answer.csrf_token);
  } catch (error) {
    toast(`Sign-out failed: ${error.message}`, "error");
    return;
  }
  state.session = { signed_in: false, reason: "You have signed out." };
  navigate("", { replace: true });
}

function topbar(session, pages, active) {
  const who = session.role === "admin"
    ? "Admin (master key)"
    : `Key ${session.key_alias ? `“${session.key_alias}”` : ""}${session.user_id ? ` · user ${session.user_id}` : ""}`;
  return h("header", { class: "topbar" },
    h("a", { class: "brand", href: BASE, "data-link": "" },
      h("img", { src: "/ui/static/icon.svg", alt: "" }), "proxyllm"),
    h("nav", { class: "nav", "aria-label": "Main" },
      pages.map((p) => h("a", { href: `${BASE}/${p.path}`, "data-link": "", "aria-current": p === active ? "page" : null }, p.title))),
    h("div", { class: "who" }, h("span", {}, who),
      h("button", { class: "btn small", type: "button", onclick: signOut }, "Sign out")));
}

function render() {
  state.generation += 1;
  const generation = state.generation;
  const session = state.session;
  clear(root);
  const main = h("main", { id: "main", class: "main", tabindex: "-1" });
  if (!session || !session.signed_in) {
    root.append(main);
    renderLogin(main, { reason: session && session.reason, onSignedIn: signedIn });
    return;
  }
  const pages = pagesFor(session);
  const path = currentPath();
  let page = pages.find((p) => p.path === path) || (session.role !== "admin" && RETURNS.find((p) => p.path === path));
  if (!page && path === "") page = pages[0];
  root.append(topbar(session, pages, page), main);
  if (!page) {
    document.title = "Not found · proxyllm";
    main.append(h("h1", {}, "Page not found"),
      h("p", {}, "There is no such page in this dashboard. ", h("a", { href: `${BASE}/${pages[0].path}`, "data-link": "" }, `Go to ${pages[0].title}`), "."));
    return;
  }
  document.title = `${page.title} · proxyllm`;
  const ctx = {
    session,
    navigate,
    alive: () => generation === state.generation,
  };
  Promise.resolve(page.render(main, ctx)).catch((error) => {
    if (ctx.alive()) main.append(errorNotice(error, "This page could not be shown"));
  });
}

function focusMain() {
  const main = document.getElementById("main");
  if (main) main.focus({ preventScroll: true });
}

async function signedIn(session) {
  setCsrf(session.csrf_token);
  state.session = session;
  render();
  focusMain();
}

whenSignedOut((error) => {
  state.session = { signed_in: false, reason: error.message };
  render();
});

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  const target = new URL(link.href);
  history.pushState({}, "", target.pathname + target.search);
  render();
  focusMain();
  window.scrollTo(0, 0);
});

window.addEventListener("popstate", render);

async function start() {
  try {
    const session = await auth.session();
    setCsrf(session.csrf_token);
    state.session = session;
  } catch (error) {
    clear(root);
    root.append(h("main", { id: "main", class: "main" }, h("h1", {}, "proxyllm"), errorNotice(error, "The dashboard could not start")));
    return;
  }
  render();
}

start();
