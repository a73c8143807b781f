// Sign-in: the master key opens the admin view, a virtual key its owner's view.

import { auth } from "../api.js";
import { h, field, notice, submitting } from "../dom.js";

export function renderLogin(main, { reason, onSignedIn }) {
  document.title = "Sign in · proxyllm";
  const keyField = field({
    label: "API key", name: "key", type: "password", required: true,
    hint: "The master key opens the admin view; your own API key shows your balance and usage.",
    attrs: { autocomplete: "off", spellcheck: "false", autocapitalize: "off" },
  });
  const form = h("form", { class: "card", "aria-labelledby": "login-title", novalidate: true },
    h("h1", { id: "login-title" }, "Sign in"),
    reason ? notice("info", h("p", {}, reason)) : null,
    keyField,
    h("div", { class: "form-actions" }, h("button", { class: "btn primary", type: "submit" }, "Sign in")),
    h("p", { class: "muted" }, "Your key is kept in a secure cookie for this browser session. Scripts on this page never see it."));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = form.elements.key;
    const key = input.value.trim();
    if (!key) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    submitting(form, async () => {
      const session = await auth.signIn(key);
      input.value = "";
      onSignedIn(session);
    });
  });
  main.append(h("section", { class: "login" },
    h("p", { class: "brand" }, h("img", { src: "/ui/static/icon.svg", alt: "", width: 26, height: 26 }), "proxyllm"),
    form));
  form.elements.key.focus();
}
