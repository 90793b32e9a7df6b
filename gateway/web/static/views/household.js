// One elder's page: who and where, devices with their latest values (live), charts of water,
// electricity and vitals over 24 hours or 7 days, the learned routine, alerts and visits.
import { useState } from "preact/hooks";
import { get, query } from "../api.js";
import { Chart } from "../charts.js";
import { ago, clock, number, when } from "../format.js";
import { html } from "../html.js";
import { kindName, metricName, signName, t } from "../i18n.js";
import { useLoad, useTick } from "../hooks.js";
import { AlertQueue } from "./alerts.js";

const path = (id, rest = "") => `/api/households/${encodeURIComponent(id)}${rest}`;
const VITALS = ["heart_rate_bpm", "spo2_pct", "bp_systolic_mmhg", "bp_diastolic_mmhg", "body_temp_c"];

export function Household({ id }) {
  // The registry is loaded once per visit: for staff it shows whole numbers, and each such
  // view is audited, so it is not refetched with every reading.
  const { data, error } = useLoad((signal) => get(path(id), { signal }), [id]);
  if (error && !data) {
    const missing = error.status === 404 || error.status === 403;
    return html`<p class="error">${missing ? t("household.not_found") : t("error.load", { reason: error.message })}</p>`;
  }
  if (!data) return html`<p class="loading">${t("loading")}</p>`;
  const a = data.address;
  return html`<article class="household" data-household=${id}>
    <p><a href="#/overview">← ${t("household.back")}</a></p>
    <header class="who-card">
      <h1>${data.elder_name} <small>${id}</small></h1>
      <dl>
        <dt>${t("household.address")}</dt><dd>${[a.county, a.township, a.village, a.detail].filter(Boolean).join(" ")}</dd>
        ${data.elder_phone && html`<dt>${t("household.phone")}</dt><dd>${data.elder_phone}</dd>`}
        <dt>${t("household.visitors")}</dt><dd>${data.visitors.map((c) => `${c.name} ${c.phone}`).join("，") || "—"}</dd>
        <dt>${t("household.relatives")}</dt><dd>${data.relatives.map((c) => `${c.name}${c.relation ? `（${c.relation}）` : ""} ${c.phone}`).join("，") || "—"}</dd>
      </dl>
    </header>
    <div class="columns">
      <section><h2>${t("household.devices")}</h2><${Devices} id=${id} /></section>
      <section><h2>${t("household.routine")}</h2><${Routine} id=${id} /></section>
    </div>
    <section><h2>${t("household.charts")}</h2><${Charts} id=${id} /></section>
    <div class="columns">
      <section><h2>${t("household.alerts")}</h2><${AlertQueue} household=${id} active=${false} compact /></section>
      <section><h2>${t("household.visits")}</h2><${Visits} id=${id} /></section>
    </div>
  </article>`;
}

function Devices({ id }) {
  const now = useTick();
  const { data } = useLoad(
    (signal) => get(path(id, "/devices"), { signal }),
    [id],
    (changes) => changes.households.includes(id) || changes.alerts.some((a) => a.household_id === id),
  );
  if (!data) return html`<p class="loading">${t("loading")}</p>`;
  return html`<ul class="devices" data-testid="devices">
    ${data.map((d) => {
      const online = d.state.online?.value;
      const low = d.state.battery_low?.value === true;
      const values = Object.entries(d.state).filter(([m]) => m !== "online");
      return html`<li class=${`device ${online === false ? "is-offline" : ""} ${low ? "is-low" : ""}`}
        data-device=${d.device_id}>
        <div class="device-head"><b>${d.label || (d.kind ? kindName(d.kind) : d.device_id)}</b> <small>${d.device_id}</small>
          ${online === false && html`<span class="tag off">${t("household.offline")}</span>`}</div>
        <dl>${values.map(([m, s]) => html`<dt>${metricName(m)}</dt><dd data-metric=${m}>${show(s.value)}</dd>`)}</dl>
        <small>${t("household.last_seen")}: ${d.last_seen ? ago(d.last_seen, now) : "—"}</small>
      </li>`;
    })}
  </ul>`;
}

function show(value) {
  if (value === true) return "✓";
  if (value === false) return "✗";
  return number(value);
}

function Charts({ id }) {
  const [range, setRange] = useState("24h");
  const { data, error } = useLoad(
    (signal) => get(path(id, `/series${query({ range })}`), { signal }),
    [id, range],
    (changes) => (changes.households.includes(id) ? 30000 : false),
  );
  const vitals = data
    ? VITALS.filter((m) => data.vitals[m]?.length).map((m) => ({ label: metricName(m), points: data.vitals[m] }))
    : [];
  const has = (points) => points?.some(([, v]) => v !== null);
  return html`<div class="charts">
    <div class="tabs" role="group">
      ${["24h", "7d"].map(
        (r) => html`<button type="button" aria-pressed=${range === r} class=${range === r ? "on" : ""}
          onClick=${() => setRange(r)}>${t(`household.range_${r}`)}</button>`,
      )}
    </div>
    ${error && !data && html`<p class="error">${t("error.load", { reason: error.message })}</p>`}
    ${!data && !error && html`<p class="loading">${t("loading")}</p>`}
    ${data &&
    html`<div class="chart-grid">
      ${has(data.water_l) && html`<${Chart} testid="chart-water" title=${t("household.water")} bars series=${[{ label: t("household.water"), points: data.water_l }]} />`}
      ${has(data.energy_kwh) && html`<${Chart} testid="chart-energy" title=${t("household.energy")} bars series=${[{ label: t("household.energy"), points: data.energy_kwh }]} />`}
      ${has(data.power_w) && html`<${Chart} testid="chart-power" title=${t("household.power")} series=${[{ label: t("household.power"), points: data.power_w }]} />`}
      ${vitals.length > 0 && html`<${Chart} testid="chart-vitals" title=${t("household.vitals")} series=${vitals} />`}
      ${!has(data.water_l) && !has(data.energy_kwh) && !has(data.power_w) && !vitals.length &&
      html`<p class="empty">${t("household.no_data")}</p>`}
    </div>`}
  </div>`;
}

function Routine({ id }) {
  const now = useTick();
  const { data, error } = useLoad(
    (signal) => get(path(id, "/activity"), { signal }),
    [id],
    (changes) => (changes.households.includes(id) ? 10000 : false),
  );
  if (error && !data) return html`<p class="empty">${t("household.routine_none")}</p>`;
  if (!data) return html`<p class="loading">${t("loading")}</p>`;
  const r = data.routine;
  const latest = Object.entries(data.last_activity ?? {}).sort(([, x], [, y]) => (x < y ? 1 : -1));
  return html`<div class="routine" data-testid="routine">
    <p>${r.status === "learned" && r.usual_start
      ? t("household.routine_usual", { time: clock(r.usual_start), late: clock(r.late_bound) })
      : r.status === "learning"
        ? t("household.routine_learning", { days: r.days_known, min: r.min_days ?? "?" })
        : t("household.routine_none")}</p>
    ${data.away_until && html`<p class="tag">${t("household.away", { time: when(data.away_until) })}</p>`}
    ${data.water_used_12h_l !== null && html`<p>${t("household.water_12h", { l: number(data.water_used_12h_l) })}</p>`}
    ${latest.length > 0 &&
    html`<dl>${latest.map(([kind, at]) => html`<dt>${t("household.last_activity")} · ${signName(kind)}</dt><dd>${ago(at, now)}</dd>`)}</dl>`}
  </div>`;
}

function Visits({ id }) {
  const { data } = useLoad(
    (signal) => get(path(id, `/visits${query({ limit: 20 })}`), { signal }),
    [id],
    (changes) => changes.alerts.some((a) => a.household_id === id),
  );
  if (!data) return html`<p class="loading">${t("loading")}</p>`;
  const visits = Array.isArray(data) ? data : data.items;
  if (!visits.length) return html`<p class="empty">${t("household.no_visits")}</p>`;
  return html`<ol class="visits">
    ${visits.map(
      (v) => html`<li><time>${when(v.visited_at)}</time> <b>${t(`visit.method.${v.method}`)}</b>
        · ${v.visitor} · ${v.summary}</li>`,
    )}
  </ol>`;
}
