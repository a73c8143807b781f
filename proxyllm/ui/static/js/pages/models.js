// Admin: every deployment with its health, routing state, and requests/errors in the last hour.

import { api } from "../api.js";
import { h, badge, clear, empty, errorNotice, fill, loading, notice } from "../dom.js";
import { number, plural } from "../format.js";
import { dataTable } from "../table.js";
import { pageHead, stat } from "./common.js";

function stateBadge(row) {
  if (row.state === "cooldown") {
    const c = row.cooldown || {};
    return h("div", {}, badge("Cooling down", "warn"),
      h("div", { class: "sub" }, `${c.reason || "failures"}; ${c.remaining_seconds ?? "?"} s left`));
  }
  if (row.state === "available") return badge("Routing", "ok");
  return badge("No traffic yet");
}

export async function renderModels(main, ctx) {
  const refresh = h("button", { class: "btn", type: "button", onclick: () => load() }, "Refresh");
  main.append(pageHead("Models", "Each deployment behind a model name: its health probe, routing state and traffic (requests and errors in the last hour).", refresh));
  const summary = h("div", { class: "grid" });
  const message = h("div");
  let rows = [];
  const table = dataTable({
    caption: "Deployments", pageSize: 25, sort: { key: "model_name", dir: "asc" },
    empty: () => empty("No models are configured.", "Add entries to model_list in the config file (or with /model/new) and restart."),
    columns: [
      { key: "model_name", label: "Model name", render: (r) => h("div", {}, r.model_name, h("div", { class: "sub mono" }, r.model)) },
      { key: "api_base", label: "Upstream", render: (r) => h("span", { class: "mono wrap" }, r.api_base || "default") },
      { key: "healthy", label: "Health", value: (r) => (r.healthy ? 1 : 0),
        render: (r) => (r.healthy ? badge("Healthy", "ok")
          : h("div", {}, badge("Unhealthy", "danger"), h("div", { class: "sub" }, r.error))) },
      { key: "state", label: "State", render: stateBadge },
      { key: "in_flight", label: "In flight", numeric: true, render: (r) => number(r.in_flight ?? 0) },
      { key: "requests_this_minute", label: "This minute", numeric: true, render: (r) => number(r.requests_this_minute ?? 0) },
      { key: "latency_ms", label: "Latency", numeric: true, render: (r) => (r.latency_ms === null || r.latency_ms === undefined ? "—" : `${r.latency_ms} ms`) },
      { key: "hour_requests", label: "Last hour", numeric: true, render: (r) => number(r.hour_requests) },
      { key: "hour_errors", label: "Errors", numeric: true,
        render: (r) => (r.hour_errors ? h("span", { class: "badge danger" }, number(r.hour_errors)) : "0") },
    ],
  });
  main.append(message, summary, h("div", { class: "section" }, table));

  async function load() {
    fill(message, loading("Probing every deployment… this can take a few seconds."));
    refresh.disabled = true;
    try {
      const since = new Date(Date.now() - 3600 * 1000).toISOString();
      const [health, logs] = await Promise.all([
        api.get("/health"),
        api.get("/spend/logs", { start_date: since, limit: 10000 }),
      ]);
      if (!ctx.alive()) return;
      const traffic = new Map();
      for (const log of logs) {
        const t = traffic.get(log.model_id) || { requests: 0, errors: 0 };
        t.requests += 1;
        if (log.status !== "success") t.errors += 1;
        traffic.set(log.model_id, t);
      }
      const withTraffic = (r, healthy) => {
        const t = traffic.get(r.model_id) || { requests: 0, errors: 0 };
        return { ...r, healthy, hour_requests: t.requests, hour_errors: t.errors };
      };
      rows = [...health.healthy_endpoints.map((r) => withTraffic(r, true)), ...health.unhealthy_endpoints.map((r) => withTraffic(r, false))];
      const cooling = rows.filter((r) => r.state === "cooldown").length;
      const hourRequests = logs.length;
      const hourErrors = logs.filter((l) => l.status !== "success").length;
      fill(summary, 
        stat("Healthy", number(health.healthy_count), plural(rows.length, "deployment")),
        stat("Unhealthy", number(health.unhealthy_count), health.unhealthy_count ? "See the errors below" : "All probes answered"),
        stat("Cooling down", number(cooling), "Skipped by the router for now"),
        stat("Last hour", plural(hourRequests, "request"), hourErrors ? `${plural(hourErrors, "error")}` : "No errors"));
      clear(message);
      if (logs.length >= 10000) message.append(notice("info", h("p", {}, "Over 10,000 requests in the last hour: the counts show the newest 10,000.")));
      table.update(rows);
    } catch (error) {
      fill(message, errorNotice(error, "Deployments could not be loaded"));
    } finally {
      refresh.disabled = false;
    }
  }

  await load();
}
