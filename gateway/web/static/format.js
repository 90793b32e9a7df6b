// Times and numbers as the reader's language writes them; the browser's zone is the reader's.
import { locale, t } from "./i18n.js";

export function when(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(locale(), {
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  });
}

export function clock(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
}

export function ago(iso, now = Date.now()) {
  if (!iso) return "—";
  const minutes = Math.floor((now - new Date(iso).getTime()) / 60000);
  if (minutes < 1) return t("time.just_now");
  if (minutes < 60) return t("time.minutes_ago", { n: minutes });
  if (minutes < 48 * 60) return t("time.hours_ago", { n: Math.floor(minutes / 60) });
  return t("time.days_ago", { n: Math.floor(minutes / 1440) });
}

export function number(value, digits = 1) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  return value.toLocaleString(locale(), { maximumFractionDigits: digits });
}

export function percent(share) {
  if (share === null || share === undefined) return "—";
  return `${(share * 100).toLocaleString(locale(), { maximumFractionDigits: 1 })}%`;
}

export function thisMonth(date = new Date()) {
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}`;
}
