// Customer: balance, this key's spend and limits, usage per day and per model, recent requests.

import { api } from "../api.js";
import { h, empty, errorNotice, field, fill, loading, props } from "../dom.js";
import { barChart, responsive } from "../chart.js";
import { day, lastDays, money, number, when } from "../format.js";
import { dataTable } from "../table.js";
import { budgetCell, limitsCell, modelsCell, pageHead, section } from "./common.js";
import { balanceCards, lowBalanceWarning } from "./billing_common.js";
import { axisMoney } from "./spend.js";

const DAYS = 30;
const TOP = 6;

export async function renderUsage(main, ctx) {
  main.append(pageHead("Usage", "Your balance, this key's spend, and what it used over the last 30 days."));
  const balance = h("div", {}, loading("Loading your balance…"));
  const keyInfo = h("div", {}, loading("Loading your key…"));
  const metric = field({ label: "Show", name: "metric", type: "select", value: "spend", options: [["spend", "Spend (USD)"], ["tokens", "Tokens"]] });
  const chart = h("div", { class: "card" }, loading("Loading usage…"));
  const perModel = h("div");
  const recent = h("div");
  main.append(balance, section("This key", keyInfo),
    section("Usage per day", h("div", { class: "toolbar" }, metric), chart),
    section("Per model", perModel), section("Recent requests", recent));

  const loadBalance = async () => {
    try {
      const account = await api.optional("/stripe/balance");
      if (!ctx.alive()) return;
      fill(balance, account && lowBalanceWarning(account, h("a", { href: "/ui/billing", "data-link": "" }, "Top up now.")),
        account && section("Balance", balanceCards(account)));
    } catch (error) {
      fill(balance, errorNotice(error, "Your balance could not be loaded"));
    }
  };

  const loadKey = async () => {
    try {
      const answer = await api.get("/key/info");
      if (!ctx.alive()) return;
      const k = answer.info;
      fill(keyInfo, h("div", { class: "card" }, props([
        ["Name", k.key_alias || "(no alias)"],
        ["Key", h("span", { class: "mono" }, k.key_name)],
        ["Spend", money(k.spend)],
        ["Budget", budgetCell(k)],
        ["Models", modelsCell(k)],
        ["Rate limits", limitsCell(k)],
        ["Expires", k.expires ? when(k.expires) : "Never"],
        ["Status", k.blocked ? "Blocked" : "Active"],
      ])));
    } catch (error) {
      fill(keyInfo, errorNotice(error, "Your key could not be loaded"));
    }
  };

  let logs = [];
  const days = lastDays(DAYS);
  const select = metric.querySelector("select");

  function drawChart() {
    const useSpend = select.value === "spend";
    const value = (l) => (useSpend ? l.spend || 0 : l.total_tokens || 0);
    const byModel = new Map();
    for (const l of logs) byModel.set(l.model_group || "(unknown)", (byModel.get(l.model_group || "(unknown)") || 0) + value(l));
    const names = [...byModel.entries()].sort((a, b) => b[1] - a[1]).map(([n]) => n);
    const picked = names.slice(0, TOP);
    const index = new Map(days.map((d, i) => [d, i]));
    const series = picked.map((name) => ({ name, values: days.map(() => 0) }));
    const other = { name: "Other models", values: days.map(() => 0) };
    for (const l of logs) {
      const i = index.get((l.startTime || "").slice(0, 10));
      if (i === undefined) continue;
      const j = picked.indexOf(l.model_group || "(unknown)");
      (j >= 0 ? series[j] : other).values[i] += value(l);
    }
    if (other.values.some((v) => v > 0)) series.push(other);
    fill(chart, responsive((width) => barChart({
      title: useSpend ? "Spend per day, by model" : "Tokens per day, by model",
      unit: useSpend ? "Spend (USD)" : "Tokens",
      categories: days, labels: days.map(day), series,
      format: useSpend ? money : number, axisFormat: useSpend ? axisMoney : undefined,
      emptyMessage: "No requests in the last 30 days. Send one with your key to this proxy's /v1/chat/completions.",
      width,
    })));
  }
  select.addEventListener("change", drawChart);

  const loadUsage = async () => {
    try {
      logs = await api.get("/spend/logs", { start_date: days[0], limit: 10000 });
      if (!ctx.alive()) return;
    } catch (error) {
      fill(chart, errorNotice(error, "Usage could not be loaded"));
      return;
    }
    drawChart();
    const models = new Map();
    for (const l of logs) {
      const m = models.get(l.model_group) || { model: l.model_group || "(unknown)", requests: 0, errors: 0, tokens: 0, spend: 0 };
      m.requests += 1;
      m.errors += l.status === "success" ? 0 : 1;
      m.tokens += l.total_tokens || 0;
      m.spend += l.spend || 0;
      models.set(l.model_group, m);
    }
    fill(perModel, dataTable({
      caption: "Usage per model", rows: [...models.values()], sort: { key: "spend", dir: "desc" },
      empty: () => empty("No usage yet.", "Your requests will be listed per model here."),
      columns: [
        { key: "model", label: "Model" },
        { key: "requests", label: "Requests", numeric: true, render: (m) => number(m.requests) },
        { key: "errors", label: "Errors", numeric: true, render: (m) => number(m.errors) },
        { key: "tokens", label: "Tokens", numeric: true, render: (m) => number(m.tokens) },
        { key: "spend", label: "Spend", numeric: true, render: (m) => money(m.spend) },
      ],
    }));
    fill(recent, dataTable({
      caption: "Recent requests", rows: logs, pageSize: 15, sort: { key: "startTime", dir: "desc" },
      empty: () => empty("No requests yet.", "Call this proxy with your key; each request appears here within seconds."),
      columns: [
        { key: "startTime", label: "Time", render: (l) => when(l.startTime) },
        { key: "model_group", label: "Model" },
        { key: "prompt_tokens", label: "Prompt tokens", numeric: true, render: (l) => number(l.prompt_tokens) },
        { key: "completion_tokens", label: "Completion tokens", numeric: true, render: (l) => number(l.completion_tokens) },
        { key: "spend", label: "Cost", numeric: true, render: (l) => money(l.spend) },
        { key: "status", label: "Status", render: (l) => (l.status === "success" ? "OK" : h("span", { class: "badge danger" }, l.status)) },
      ],
    }));
  };

  await Promise.all([loadBalance(), loadKey(), loadUsage()]);
}
