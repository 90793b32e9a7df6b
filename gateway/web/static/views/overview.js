// Every visible household with its live status: counts that filter, area menus, a tile per home.
import { useState } from "preact/hooks";
import { get, query } from "../api.js";
import { ago } from "../format.js";
import { html } from "../html.js";
import { t } from "../i18n.js";
import { useLoad, useTick } from "../hooks.js";

const STATUSES = ["alert", "checkin", "offline", "low_battery", "well"];
const PAGE = 200;
const READINGS_REFRESH_MS = 5000;

export function Overview() {
  const [filter, setFilter] = useState({ township: "", village: "", status: "", q: "" });
  const [offset, setOffset] = useState(0);
  const now = useTick();
  const change = (key, value) => {
    setOffset(0);
    setFilter((f) => ({ ...f, [key]: value, ...(key === "township" ? { village: "" } : {}) }));
  };
  const { data, error } = useLoad(
    (signal) => get(`/api/overview${query({ ...filter, limit: PAGE, offset })}`, { signal }),
    [filter.township, filter.village, filter.status, filter.q, offset],
    (changes) => {
      if (changes.alerts.length) return true;
      const shown = new Set((data?.households ?? []).map((h) => h.id));
      return changes.households.some((id) => shown.has(id)) ? READINGS_REFRESH_MS : false;
    },
  );
  if (error && !data) return html`<p class="error">${t("error.load", { reason: error.message })}</p>`;
  if (!data) return html`<p class="loading">${t("loading")}</p>`;
  const townships = [...new Set(data.areas.map((a) => a.township))].sort();
  const villages = data.areas.filter((a) => a.township === filter.township).map((a) => a.village);
  return html`<section class="overview">
    <div class="counts" role="group" aria-label=${t("nav.overview")}>
      <button type="button" class=${`count count-total ${filter.status === "" ? "on" : ""}`}
        onClick=${() => change("status", "")} data-testid="count-total">
        <span class="n">${data.counts.total}</span><span>${t("status.total")}</span></button>
      ${STATUSES.map(
        (s) => html`<button type="button" data-testid=${`count-${s}`}
          class=${`count count-${s} ${filter.status === s ? "on" : ""}`}
          aria-pressed=${filter.status === s} onClick=${() => change("status", filter.status === s ? "" : s)}>
          <span class="n">${data.counts[s]}</span><span>${t(`status.${s}`)}</span></button>`,
      )}
    </div>
    <div class="filters">
      <label>${t("filter.township")}
        <select value=${filter.township} onChange=${(e) => change("township", e.target.value)}
          data-testid="filter-township">
          <option value="">${t("filter.all")}</option>
          ${townships.map((name) => html`<option value=${name}>${name}</option>`)}
        </select></label>
      <label>${t("filter.village")}
        <select value=${filter.village} disabled=${!filter.township}
          onChange=${(e) => change("village", e.target.value)} data-testid="filter-village">
          <option value="">${t("filter.all")}</option>
          ${villages.map((name) => html`<option value=${name}>${name}</option>`)}
        </select></label>
      <input type="search" placeholder=${t("filter.search")} aria-label=${t("filter.search")}
        value=${filter.q} onChange=${(e) => change("q", e.target.value.trim())} />
    </div>
    ${data.households.length === 0
      ? html`<p class="empty">${t("overview.empty")}</p>`
      : html`<ul class="tiles" data-testid="tiles">
          ${data.households.map((h) => html`<${Tile} h=${h} now=${now} key=${h.id} />`)}
        </ul>`}
    <${Pager} offset=${offset} total=${data.total} size=${PAGE} onMove=${setOffset} />
  </section>`;
}

function Tile({ h, now }) {
  const notes = [];
  if (h.active_alerts) notes.push(t("overview.alerts", { n: h.active_alerts }));
  if (h.devices_offline) notes.push(t("overview.devices_offline", { n: h.devices_offline }));
  return html`<li class=${`tile status-${h.status} ${h.worst_severity ? `sev-${h.worst_severity}` : ""}`}
    data-household=${h.id} data-status=${h.status}>
    <a href=${`#/household/${encodeURIComponent(h.id)}`}>
      <span class="name">${h.elder_name}${h.risk === "high" ? html` <b class="risk">!</b>` : ""}</span>
      <span class="place">${h.village || h.township} · ${h.id}</span>
      <span class="state">${t(`status.${h.status}`)}${notes.length ? ` · ${notes.join(" · ")}` : ""}</span>
      <span class="seen">${h.last_seen ? t("overview.last_seen", { time: ago(h.last_seen, now) }) : t("overview.never")}</span>
    </a>
  </li>`;
}

export function Pager({ offset, total, size, onMove }) {
  if (total <= size && offset === 0) return null;
  const to = Math.min(offset + size, total);
  return html`<nav class="pager" aria-label="pages">
    <button type="button" disabled=${offset === 0} onClick=${() => onMove(Math.max(0, offset - size))}>
      ${t("page.prev")}</button>
    <span>${t("page.of", { from: total ? offset + 1 : 0, to, total })}</span>
    <button type="button" disabled=${to >= total} onClick=${() => onMove(offset + size)}>
      ${t("page.next")}</button>
  </nav>`;
}
