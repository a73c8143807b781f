// Admin: spend and tokens per day, top keys / models / teams, recent requests — from /global/spend/report.

import { api } from "../api.js";
import { h, clear, empty, errorNotice, field, fill, loading } from "../dom.js";
import { barChart, rankChart, responsive } from "../chart.js";
import { compact, day, lastDays, money, number, when } from "../format.js";
import { dataTable } from "../table.js";
import { pageHead, section, stat } from "./common.js";

const GROUPS = { model: "Model", key: "Key", team: "Team" };
const TOP = 6;

export function axisMoney(v) {
  if (v === 0) return "$0";
  return v >= 1 ? `$${compact(v)}` : `$${Number(v.toPrecision(2))}`;
}

function totalsByGroup(report, group) {
  const totals = new Map();
  for (const entry of report) {
    for (const row of entry[`${group}s`] || []) {
      const name = row[group] ?? "";
      const t = totals.get(name) || { spend: 0, revenue: 0, tokens: 0, requests: 0 };
      t.spend += row.total_spend || 0;
      t.revenue += row.total_revenue ?? row.total_spend ?? 0;
      t.tokens += row.total_tokens || 0;
      t.requests += row.requests || 0;
      totals.set(name, t);
    }
  }
  return totals;
}

export async function renderSpend(main, ctx) {
  main.append(pageHead("Spend", "What the proxy's traffic cost, per day and by who and what used it."));
  const period = field({ label: "Period", name: "period", type: "select", value: "30",
    options: [["7", "Last 7 days"], ["30", "Last 30 days"], ["90", "Last 90 days"]] });
  const breakdown = field({ label: "Break down by", name: "group", type: "select", value: "model",
    options: Object.entries(GROUPS) });
  const only = field({ label: "Show", name: "only", type: "select", value: "", options: [["", "Everything"]] });
  const message = h("div");
  const cards = h("div", { class: "grid" });
  const daily = h("div", { class: "grid-2" });
  const tops = h("div", { class: "grid-2" });
  const recent = h("div");
  const margins = h("div");
  main.append(h("div", { class: "toolbar", role: "group", "aria-label": "Filters" }, period, breakdown, only),
    message, cards, section("Per day", daily), section("Top spenders", tops),
    section("Cost, revenue and margin", margins), section("Recent requests", recent));

  let data = null;
  const select = (f) => f.querySelector("select");

  function labeller(group) {
    return (value) => {
      if (group === "key") {
        const key = data.keys.get(value);
        return key ? key.key_alias || key.key_name : value ? `key ${value.slice(0, 10)}…` : "(unknown key)";
      }
      if (group === "team") return value || "(no team)";
      return value || "(unknown model)";
    };
  }

  function draw() {
    const group = select(breakdown).value;
    const name = labeller(group);
    const days = lastDays(Number(select(period).value));
    const labels = days.map(day);
    const report = data.reports[group];
    const totals = totalsByGroup(report, group);
    const ranked = [...totals.entries()].sort((a, b) => b[1].spend - a[1].spend || b[1].tokens - a[1].tokens);

    const onlySelect = select(only);
    const keep = onlySelect.value;
    fill(onlySelect, h("option", { value: "" }, "Everything"),
      ...ranked.map(([value]) => h("option", { value, selected: value === keep }, name(value))));
    const chosen = ranked.some(([value]) => value === keep) ? keep : "";

    const picked = chosen !== "" ? [chosen] : ranked.slice(0, TOP).map(([value]) => value);
    const index = new Map(days.map((d, i) => [d, i]));
    const seriesFor = (metric) => {
      const series = picked.map((value) => ({ name: name(value), values: days.map(() => 0) }));
      const other = { name: "Everything else", values: days.map(() => 0) };
      for (const entry of report) {
        const i = index.get(entry.group_by_day);
        if (i === undefined) continue;
        for (const row of entry[`${group}s`] || []) {
          const j = picked.indexOf(row[group] ?? "");
          const v = metric === "spend" ? row.total_spend || 0 : row.total_tokens || 0;
          if (j >= 0) series[j].values[i] += v;
          else if (chosen === "") other.values[i] += v;
        }
      }
      return other.values.some((v) => v > 0) ? [...series, other] : series;
    };

    const sum = (metric) => [...totals.entries()].filter(([k]) => chosen === "" || k === chosen).reduce((a, [, t]) => a + t[metric], 0);
    const spend = sum("spend");
    const requests = sum("requests");
    fill(cards, 
      stat("Spend", money(spend), `${money(spend / days.length)} per day on average`),
      stat("Tokens", number(sum("tokens")), "Prompt and completion"),
      stat("Requests", number(requests), requests ? `${money(spend / requests)} per request` : "None in this period"),
      stat(`${GROUPS[group]}s with traffic`, number(totals.size), chosen ? `Showing ${name(chosen)}` : "All shown"));

    const spendSeries = seriesFor("spend");
    const tokenSeries = seriesFor("tokens");
    const noData = "No requests in this period. Traffic appears here a few seconds after it is served.";
    fill(daily, 
      h("div", { class: "card" }, responsive((width) => barChart({ title: "Spend per day", unit: "Spend (USD)", categories: days,
        labels, series: spendSeries, format: money, axisFormat: axisMoney, emptyMessage: noData, width }))),
      h("div", { class: "card" }, responsive((width) => barChart({ title: "Tokens per day", unit: "Tokens", categories: days,
        labels, series: tokenSeries, format: number, emptyMessage: noData, width }))));

    const rank = (g) => [...totalsByGroup(data.reports[g], g).entries()]
      .sort((a, b) => b[1].spend - a[1].spend).slice(0, 10)
      .map(([value, t]) => ({ label: labeller(g)(value), value: t.spend }));
    fill(tops, ...[["key", "Top keys"], ["model", "Top models"], ["team", "Top teams"]].map(([g, title]) => {
      const items = rank(g);
      return h("div", { class: "card" }, responsive((width) => rankChart({ title, unit: "Spend (USD)", items, format: money,
        axisFormat: axisMoney, emptyMessage: noData, width })));
    }));
  }

  // What upstreams cost the operator, what customers were charged (rate cards, markups), the difference.
  function drawMargins() {
    const group = select(breakdown).value;
    const name = labeller(group);
    const rows = [];
    for (const entry of data.reports[group]) {
      for (const row of entry[`${group}s`] || []) {
        const cost = row.total_cost ?? row.total_spend ?? 0;
        const revenue = row.total_revenue ?? cost;
        rows.push({ id: `${entry.group_by_day}:${row[group] ?? ""}`, day: entry.group_by_day, name: name(row[group]),
          cost, revenue, margin: revenue - cost, requests: row.requests || 0 });
      }
    }
    fill(margins, dataTable({
      caption: `Cost, revenue and margin per day and ${GROUPS[group].toLowerCase()}`, pageSize: 15, rows,
      sort: { key: "day", dir: "desc" },
      empty: empty("No requests in this period.", "Revenue is what customers are charged: their rate card, else a markup on the cost."),
      columns: [
        { key: "day", label: "Day", render: (r) => day(r.day) },
        { key: "name", label: GROUPS[group] },
        { key: "cost", label: "Cost", numeric: true, render: (r) => money(r.cost) },
        { key: "revenue", label: "Revenue", numeric: true, render: (r) => money(r.revenue) },
        { key: "margin", label: "Margin", numeric: true,
          render: (r) => `${money(r.margin)}${r.revenue ? ` (${Math.round((r.margin / r.revenue) * 100)}%)` : ""}` },
        { key: "requests", label: "Requests", numeric: true, render: (r) => number(r.requests) },
      ],
    }));
  }

  function drawRecent() {
    fill(recent, dataTable({
      caption: "Recent requests", pageSize: 15, rows: data.logs, sort: { key: "startTime", dir: "desc" },
      empty: empty("No requests yet.", "Send one through the proxy with any key; it shows up here within seconds."),
      columns: [
        { key: "startTime", label: "Time", render: (r) => when(r.startTime) },
        { key: "model_group", label: "Model" },
        { key: "key_alias", label: "Key", value: (r) => r.key_alias || r.api_key, render: (r) => r.key_alias || h("span", { class: "mono" }, `${(r.api_key || "").slice(0, 10)}…`) },
        { key: "team_id", label: "Team" },
        { key: "total_tokens", label: "Tokens", numeric: true, render: (r) => number(r.total_tokens) },
        { key: "spend", label: "Cost", numeric: true, render: (r) => money(r.spend) },
        { key: "price", label: "Charged", numeric: true, render: (r) => money(r.price ?? r.spend) },
        { key: "status", label: "Status", render: (r) => (r.status === "success" ? "OK" : h("span", { class: "badge danger" }, r.status)) },
      ],
    }));
  }

  async function load() {
    fill(message, loading("Loading spend…"));
    const days = lastDays(Number(select(period).value));
    const range = { start_date: days[0], end_date: days[days.length - 1] };
    try {
      const [model, key, team, keyList, logs] = await Promise.all([
        api.get("/global/spend/report", { ...range, group_by: "model" }),
        api.get("/global/spend/report", { ...range, group_by: "key" }),
        api.get("/global/spend/report", { ...range, group_by: "team" }),
        api.get("/key/list", { return_full_object: "true", size: 500 }),
        api.get("/spend/logs", { limit: 200 }),
      ]);
      if (!ctx.alive()) return;
      data = { reports: { model, key, team }, keys: new Map(keyList.keys.map((k) => [k.token, k])), logs };
      clear(message);
      draw();
      drawMargins();
      drawRecent();
    } catch (error) {
      fill(message, errorNotice(error, "Spend could not be loaded"));
    }
  }

  select(period).addEventListener("change", load);
  select(breakdown).addEventListener("change", () => { select(only).value = ""; if (data) { draw(); drawMargins(); } });
  select(only).addEventListener("change", () => data && draw());
  await load();
}
