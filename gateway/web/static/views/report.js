// How fast alerts were acknowledged in a month, against the standard, by severity and village.
import { useState } from "preact/hooks";
import { get, query } from "../api.js";
import { number, percent, thisMonth, when } from "../format.js";
import { html } from "../html.js";
import { ruleName, t } from "../i18n.js";
import { useLoad } from "../hooks.js";
import { MonthHeader } from "./month.js";

const seconds = (s) => (s === null || s === undefined ? "—" : `${number(s, 0)} s`);

export function ResponseReport() {
  const [month, setMonth] = useState(thisMonth());
  const { data, error } = useLoad(
    (signal) => get(`/api/reports/response${query({ month })}`, { signal }),
    [month],
    (changes) => (changes.alerts.length ? 5000 : false),
  );
  return html`<section class="report">
    <${MonthHeader} title=${t("report.title", { month })} month=${month} onChange=${setMonth} />
    ${error && html`<p class="error">${t("error.load", { reason: error.message })}</p>`}
    ${!data && !error && html`<p class="loading">${t("loading")}</p>`}
    ${data && data.overall.alerts === 0 && html`<p class="empty">${t("report.none")}</p>`}
    ${data && data.overall.alerts > 0 &&
    html`<div data-testid="response-report">
      <ul class="standard">
        ${data.standard.map(
          (s) => html`<li class=${s.met ? "met" : "not-met"}>${t("report.standard_row", { s: s.within_s, share: percent(s.share) })}:
            ${percent(s.achieved)} · ${s.met ? t("report.met") : t("report.not_met")}</li>`,
        )}
      </ul>
      <table class="grid">
        <thead><tr><th></th><th>${t("report.alerts")}</th><th>${t("report.acknowledged")}</th>
          ${data.overall.within.map((b) => html`<th>${t("report.within", { m: b.minutes })}</th>`)}
          <th>${t("report.median")}</th><th>${t("report.p90")}</th></tr></thead>
        <tbody>
          <${Row} name=${t("coverage.total")} times=${data.overall} />
          ${data.by_severity.map((s) => html`<${Row} name=${t(`severity.${s.severity}`)} times=${s} />`)}
          ${data.by_village.map((v) => html`<${Row} name=${`${v.township} · ${v.village}`} times=${v} />`)}
        </tbody>
      </table>
      ${data.unacknowledged.length > 0 &&
      html`<h2>${t("report.unacknowledged")}</h2>
        <ul>${data.unacknowledged.map(
          (u) => html`<li><a href=${`#/household/${encodeURIComponent(u.household_id)}`}>${u.household_id}</a>
            · ${ruleName(u.rule)} · ${t(`severity.${u.severity}`)} · ${when(u.started_at)} · ${u.village}</li>`,
        )}</ul>`}
    </div>`}
  </section>`;
}

function Row({ name, times }) {
  return html`<tr><th>${name}</th><td>${times.alerts}</td><td>${times.acknowledged}</td>
    ${times.within.map((b) => html`<td>${percent(b.share)}</td>`)}
    <td>${seconds(times.median_s)}</td><td>${seconds(times.p90_s)}</td></tr>`;
}
