// Charts drawn as SVG: axes with units, a legend, a text summary for screen readers, and the
// numbers themselves one click away.

import { h, fill, s, swatch, uid } from "./dom.js";
import { compact, number } from "./format.js";

export const PALETTE = ["#2563eb", "#c2410c", "#047857", "#a21caf", "#0e7490", "#854d0e", "#4338ca", "#6b7280"];
const CHAR = 6.5; // width of one 11px label character, for margins

/**
 * A holder that draws `build(width)` at its own width (so text stays 11px on any screen) and
 * redraws when that width changes.
 */
export function responsive(build) {
  const holder = h("div", { class: "chart-holder" });
  let drawn = 0;
  let pending = false;
  const draw = () => {
    pending = false;
    const width = Math.floor(holder.clientWidth);
    if (!width || Math.abs(width - drawn) < 16) return;
    drawn = width;
    fill(holder, build(Math.max(260, width)));
  };
  new ResizeObserver(() => {
    if (!pending) {
      pending = true;
      requestAnimationFrame(draw);
    }
  }).observe(holder);
  return holder;
}

function niceStep(raw) {
  if (raw <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const residual = raw / magnitude;
  const nice = residual <= 1 ? 1 : residual <= 2 ? 2 : residual <= 2.5 ? 2.5 : residual <= 5 ? 5 : 10;
  return nice * magnitude;
}

function scale(max, ticks = 5) {
  const step = niceStep(max / ticks);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const values = [];
  for (let v = 0; v <= top + step / 2; v += step) values.push(Number(v.toPrecision(12)));
  return { top, values };
}

function legend(items) {
  return h("ul", { class: "legend" }, items.map(([name, color]) => h("li", {}, swatch(color), name)));
}

function numbersTable(caption, head, rows) {
  return h("details", { class: "data" },
    h("summary", {}, "Show the numbers"),
    h("div", { class: "table-wrap" }, h("table", {},
      h("caption", { class: "sr-only" }, caption),
      h("thead", {}, h("tr", {}, head.map((text, i) => h("th", { scope: "col", class: i ? "num" : null }, text)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((text, i) => h("td", { class: i ? "num" : null }, text))))))));
}

function emptyFigure(title, message) {
  return h("figure", { class: "chart" }, h("figcaption", {}, title), h("div", { class: "empty" }, message));
}

/**
 * Stacked vertical bars: one bar per category (e.g. day), one colour per series (e.g. model).
 * { title, unit, categories, labels, series: [{name, values}], format(v), axisFormat(v), xTitle, emptyMessage }
 */
export function barChart({ title, unit, categories, labels = categories, series, format = number,
  axisFormat = compact, xTitle = "Day (UTC)", emptyMessage = "No data for this period.", height = 260, width = 760 }) {
  const totals = categories.map((_, i) => series.reduce((sum, se) => sum + (se.values[i] || 0), 0));
  const grand = totals.reduce((a, b) => a + b, 0);
  if (!grand) return emptyFigure(title, emptyMessage);

  const { top, values: ticks } = scale(Math.max(...totals));
  const widest = Math.max(...ticks.map((t) => axisFormat(t).length));
  const margin = { top: 14, right: 12, bottom: 46, left: Math.ceil(widest * CHAR) + 34 };
  const innerW = width - margin.left - margin.right;
  const innerH = height - margin.top - margin.bottom;
  const y = (v) => margin.top + innerH - (v / top) * innerH;
  const band = innerW / categories.length;
  const barW = Math.max(2, band * 0.72);
  const widestLabel = Math.max(...labels.map((l) => String(l).length));
  const every = Math.max(1, Math.ceil((categories.length * (widestLabel * CHAR + 10)) / innerW));
  const titleId = uid("chart");
  const descId = uid("desc");
  const peak = totals.indexOf(Math.max(...totals));
  const summary = `${title}: total ${format(grand)} over ${categories.length} ${xTitle.startsWith("Day") ? "days" : "bars"}; `
    + `highest ${format(totals[peak])} on ${labels[peak]}.`;

  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${titleId} ${descId}` },
    s("title", { id: titleId }, title),
    s("desc", { id: descId }, summary),
    s("g", { class: "grid" }, ticks.map((t) => s("line", { x1: margin.left, x2: width - margin.right, y1: y(t), y2: y(t) }))),
    s("g", { class: "axis" },
      s("line", { x1: margin.left, x2: margin.left, y1: margin.top, y2: margin.top + innerH }),
      s("line", { x1: margin.left, x2: width - margin.right, y1: margin.top + innerH, y2: margin.top + innerH }),
      ticks.map((t) => s("text", { x: margin.left - 8, y: y(t) + 4, "text-anchor": "end" }, axisFormat(t))),
      categories.map((_, i) => ((categories.length - 1 - i) % every === 0
        ? s("text", { x: margin.left + band * i + band / 2, y: margin.top + innerH + 16, "text-anchor": "middle" }, labels[i])
        : null))),
    s("text", { class: "axis-title", transform: `translate(14 ${margin.top + innerH / 2}) rotate(-90)`, "text-anchor": "middle" }, unit),
    s("text", { class: "axis-title", x: margin.left + innerW / 2, y: height - 6, "text-anchor": "middle" }, xTitle),
    s("g", {}, categories.map((_, i) => {
      let base = 0;
      return series.map((se, j) => {
        const v = se.values[i] || 0;
        if (v <= 0) return null;
        const rect = s("rect", {
          x: margin.left + band * i + (band - barW) / 2, width: barW,
          y: y(base + v), height: Math.max(1, y(base) - y(base + v)),
          fill: PALETTE[j % PALETTE.length],
        }, s("title", {}, `${labels[i]} · ${se.name}: ${format(v)}`));
        base += v;
        return rect;
      });
    })));

  const head = [xTitle, ...series.map((se) => se.name), "Total"];
  const rows = categories.map((_, i) => [labels[i], ...series.map((se) => format(se.values[i] || 0)), format(totals[i])]);
  return h("figure", { class: "chart" },
    h("figcaption", {}, title),
    svg,
    legend(series.map((se, j) => [se.name, PALETTE[j % PALETTE.length]])),
    numbersTable(title, head, rows));
}

/** Horizontal bars for a ranking: { title, unit, items: [{label, value}], format, axisFormat }. */
export function rankChart({ title, unit, items, format = number, axisFormat = compact, emptyMessage = "No data for this period.",
  color = PALETTE[0], width = 760 }) {
  const shown = items.filter((it) => it.value > 0);
  if (!shown.length) return emptyFigure(title, emptyMessage);
  const row = 28;
  const room = Math.max(8, Math.min(24, Math.floor(width / 4 / CHAR)));
  const clip = (text) => (text.length > room ? `${text.slice(0, room - 1)}…` : text);
  const { top, values: ticks } = scale(Math.max(...shown.map((it) => it.value)), width < 420 ? 2 : 4);
  const margin = {
    top: 8, bottom: 40,
    left: Math.ceil(Math.max(...shown.map((it) => clip(it.label).length)) * CHAR) + 16,
    right: Math.ceil(Math.max(...shown.map((it) => format(it.value).length)) * CHAR) + 14,
  };
  const height = margin.top + margin.bottom + row * shown.length;
  const innerW = width - margin.left - margin.right;
  const x = (v) => margin.left + (v / top) * innerW;
  const titleId = uid("chart");
  const descId = uid("desc");
  const summary = `${title}: ${shown.map((it) => `${it.label} ${format(it.value)}`).join("; ")}.`;

  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${titleId} ${descId}` },
    s("title", { id: titleId }, title),
    s("desc", { id: descId }, summary),
    s("g", { class: "grid" }, ticks.map((t) => s("line", { x1: x(t), x2: x(t), y1: margin.top, y2: height - margin.bottom }))),
    s("g", { class: "axis" },
      s("line", { x1: margin.left, x2: margin.left, y1: margin.top, y2: height - margin.bottom }),
      ticks.map((t) => s("text", { x: x(t), y: height - margin.bottom + 16, "text-anchor": "middle" }, axisFormat(t)))),
    s("text", { class: "axis-title", x: margin.left + innerW / 2, y: height - 6, "text-anchor": "middle" }, unit),
    shown.map((it, i) => {
      const cy = margin.top + row * i;
      return s("g", {},
        s("text", { x: margin.left - 8, y: cy + row / 2 + 4, "text-anchor": "end", class: "bar-label" }, clip(it.label),
          s("title", {}, it.label)),
        s("rect", { x: margin.left, y: cy + 5, height: row - 10, width: Math.max(1, x(it.value) - margin.left), fill: color },
          s("title", {}, `${it.label}: ${format(it.value)}`)),
        s("text", { x: x(it.value) + 6, y: cy + row / 2 + 4 }, format(it.value)));
    }));

  return h("figure", { class: "chart" },
    h("figcaption", {}, title),
    svg,
    legend([[unit, color]]),
    numbersTable(title, ["Name", unit], shown.map((it) => [it.label, format(it.value)])));
}

/** A thin budget meter: spend against a limit. */
export function meter(value, limit, label) {
  const share = limit > 0 ? Math.min(1, value / limit) : 0;
  return s("svg", { class: "meter", viewBox: "0 0 100 6", preserveAspectRatio: "none", role: "img", "aria-label": label },
    s("rect", { x: 0, y: 0, width: 100, height: 6, rx: 3, fill: "transparent" }),
    s("rect", { class: value >= limit ? "fill over" : "fill", x: 0, y: 0, width: 100 * share, height: 6, rx: 3 }));
}
