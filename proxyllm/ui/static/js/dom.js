// Small DOM helpers. Text always goes in as text (never as HTML), so API data cannot inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";
let ids = 0;

export function uid(prefix = "f") {
  ids += 1;
  return `${prefix}-${ids}`;
}

function apply(el, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (name === "text") el.textContent = String(value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "value" && "value" in el) el.value = value;
    else if (name === "checked" || name === "disabled" || name === "selected") el[name] = Boolean(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  apply(el, props);
  append(el, children);
  return el;
}

export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, props);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// Replaces an element's content (null and false children are skipped, as in h()).
export function fill(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

export function swatch(color) {
  return s("svg", { viewBox: "0 0 12 12", "aria-hidden": "true", focusable: "false" },
    s("rect", { width: 12, height: 12, rx: 2, fill: color }));
}

// -- messages --------------------------------------------------------------------------------

export function notice(kind, ...content) {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : null }, ...content);
}

export function errorNotice(error, what) {
  const message = error && error.message ? error.message : String(error);
  return notice("error", h("p", {}, what ? `${what}: ${message}` : message));
}

export function empty(title, ...next) {
  return h("div", { class: "empty" }, h("strong", {}, title), ...next);
}

export function toast(message, kind = "ok") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const item = h("div", { class: `toast ${kind}`, title: "Click to dismiss", onclick: () => item.remove() }, message);
  box.append(item);
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => item.remove(), kind === "error" ? 9000 : 5000);
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

// -- forms -----------------------------------------------------------------------------------

// A labelled control. type: text|number|password|email|select|checkbox|textarea.
export function field({ label, name, type = "text", value, hint, required, options, attrs = {}, wide }) {
  const id = uid(name || "f");
  const hintId = hint ? `${id}-hint` : null;
  let control;
  if (type === "select") {
    control = h("select", { id, name, required, "aria-describedby": hintId, ...attrs },
      (options || []).map(([v, text]) => h("option", { value: v, selected: String(v) === String(value ?? "") }, text)));
  } else if (type === "textarea") {
    control = h("textarea", { id, name, required, "aria-describedby": hintId, rows: 3, ...attrs });
    if (value !== undefined && value !== null) control.value = value;
  } else if (type === "checkbox") {
    control = h("input", { id, name, type, checked: Boolean(value), "aria-describedby": hintId, ...attrs });
    return h("div", { class: "field inline" }, control, h("label", { for: id }, label),
      hint ? h("span", { class: "hint", id: hintId }, hint) : null);
  } else {
    control = h("input", { id, name, type, required, "aria-describedby": hintId, ...attrs });
    if (value !== undefined && value !== null) control.value = value;
  }
  return h("div", { class: wide ? "field wide" : "field" }, h("label", { for: id }, label), control,
    hint ? h("span", { class: "hint", id: hintId }, hint) : null);
}

// Checkboxes for a list of names (e.g. models); none ticked means "all".
export function checkGroup({ legend, name, choices, selected = [], hint }) {
  const chosen = new Set(selected);
  const hintId = hint ? uid("hint") : null;
  return h("fieldset", { class: "field", "aria-describedby": hintId },
    h("legend", {}, legend),
    choices.length
      ? h("div", { class: "checks" }, choices.map((choice) => {
          const id = uid(name);
          return h("label", { for: id }, h("input", { type: "checkbox", id, name, value: choice, checked: chosen.has(choice) }), choice);
        }))
      : h("p", { class: "muted" }, "No models are configured."),
    hint ? h("span", { class: "hint", id: hintId }, hint) : null);
}

export function formValues(form) {
  const values = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === "checkbox" && form.querySelectorAll(`input[type=checkbox][name="${el.name}"]`).length > 1) {
      values[el.name] = values[el.name] || [];
      if (el.checked) values[el.name].push(el.value);
    } else if (el.type === "checkbox") {
      values[el.name] = el.checked;
    } else {
      values[el.name] = el.value.trim();
    }
  }
  return values;
}

// Sets a form busy while `work` runs; shows an API error inside the form instead of losing it.
export async function submitting(form, work) {
  const buttons = [...form.querySelectorAll("button")];
  const slot = form.querySelector(".form-error") || form.appendChild(h("div", { class: "form-error" }));
  clear(slot);
  buttons.forEach((b) => { b.disabled = true; });
  try {
    return await work();
  } catch (error) {
    slot.append(errorNotice(error));
    const param = error && error.param ? form.querySelector(`[name="${error.param}"]`) : null;
    if (param) { param.setAttribute("aria-invalid", "true"); param.focus(); }
    return undefined;
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// -- dialogs ---------------------------------------------------------------------------------

export function openDialog(title, ...body) {
  const titleId = uid("dlg");
  const dialog = h("dialog", { "aria-labelledby": titleId },
    h("div", { class: "dialog-head" },
      h("h2", { id: titleId }, title),
      h("button", { class: "btn small", type: "button", "aria-label": "Close", onclick: () => dialog.close() }, "✕")),
    h("div", { class: "dialog-body" }, ...body));
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  const first = dialog.querySelector(".dialog-body input, .dialog-body select, .dialog-body textarea, .dialog-body button");
  if (first) first.focus();
  return dialog;
}

export function confirmAction({ title, message, confirm = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    let answer = false;
    const yes = h("button", { class: danger ? "btn danger solid" : "btn primary", type: "button",
      onclick: () => { answer = true; dialog.close(); } }, confirm);
    const no = h("button", { class: "btn", type: "button", onclick: () => dialog.close() }, "Cancel");
    const dialog = openDialog(title, h("p", {}, message), h("div", { class: "form-actions" }, no, yes));
    no.focus();
    dialog.addEventListener("close", () => resolve(answer));
  });
}

// Shows a secret once, with a copy button.
export function showSecret(title, secret, note) {
  const id = uid("secret");
  const input = h("input", { id, type: "text", readonly: true, value: secret, "aria-describedby": `${id}-note`, "data-secret": "" });
  const copy = h("button", { class: "btn", type: "button", onclick: async () => {
    try {
      await navigator.clipboard.writeText(secret);
      copy.textContent = "Copied";
    } catch {
      input.select();
      copy.textContent = "Press Ctrl+C";
    }
  } }, "Copy");
  const dialog = openDialog(title,
    notice("warn", h("p", { id: `${id}-note` }, note || "This is the only time the key is shown. Copy it now and keep it somewhere safe.")),
    h("div", { class: "field" }, h("label", { for: id }, "Key"), h("div", { class: "secret" }, input, copy)),
    h("div", { class: "form-actions" }, h("button", { class: "btn primary", type: "button", onclick: () => dialog.close() }, "Done")));
  input.focus();
  input.select();
  return new Promise((resolve) => dialog.addEventListener("close", resolve));
}

export function props(pairs) {
  return h("dl", { class: "props" }, pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}
