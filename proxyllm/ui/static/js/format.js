// Numbers, money and dates for people. Money arrives from the API as JSON numbers; it is only shown.

const moneyFormats = new Map();

export function money(value, currency = "usd") {
  if (value === null || value === undefined || value === "") return "—";
  const n = Number(value);
  const abs = Math.abs(n);
  const digits = abs === 0 || abs >= 1 ? 2 : abs >= 0.01 ? 4 : 6;
  const key = `${currency}:${digits}`;
  if (!moneyFormats.has(key)) {
    moneyFormats.set(key, new Intl.NumberFormat("en-US", {
      style: "currency", currency: currency.toUpperCase(), minimumFractionDigits: 2, maximumFractionDigits: digits,
    }));
  }
  return moneyFormats.get(key).format(n);
}

const integer = new Intl.NumberFormat("en-US");
export function number(value) {
  if (value === null || value === undefined) return "—";
  return integer.format(value);
}

const compactFormat = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
export function compact(value) {
  return compactFormat.format(value);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateTime.format(d);
}

const shortDay = new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
export function day(isoDay) {
  const d = new Date(`${isoDay}T00:00:00Z`);
  return Number.isNaN(d.getTime()) ? isoDay : shortDay.format(d);
}

// The last `count` days (UTC, as the API groups them), oldest first, as YYYY-MM-DD.
export function lastDays(count, end = new Date()) {
  const days = [];
  const last = Date.UTC(end.getUTCFullYear(), end.getUTCMonth(), end.getUTCDate());
  for (let i = count - 1; i >= 0; i -= 1) days.push(new Date(last - i * 86400000).toISOString().slice(0, 10));
  return days;
}

export function plural(n, one, many = `${one}s`) {
  return `${number(n)} ${n === 1 ? one : many}`;
}

// "12.5" -> "12.50"; refuses anything that is not a plain non-negative (or signed) decimal.
export function decimalText(text, { signed = false } = {}) {
  const value = String(text).trim();
  const pattern = signed ? /^-?\d+(\.\d{1,2})?$/ : /^\d+(\.\d{1,2})?$/;
  return pattern.test(value) ? value : null;
}
