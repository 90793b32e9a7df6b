// The month's visit coverage per area, and the elders nobody has visited yet this month.
import { useState } from "preact/hooks";
import { get, query } from "../api.js";
import { percent, thisMonth } from "../format.js";
import { html } from "../html.js";
import { t } from "../i18n.js";
import { useLoad } from "../hooks.js";
import { MonthHeader } from "./month.js";

export function Coverage() {
  const [month, setMonth] = useState(thisMonth());
  const { data, error } = useLoad(
    (signal) => get(`/api/reports/coverage${query({ month })}`, { signal }),
    [month],
    (changes) => (changes.alerts.some((a) => a.change === "resolved" || a.change === "checkin") ? 2000 : false),
  );
  return html`<section class="report">
    <${MonthHeader} title=${t("coverage.title", { month })} month=${month} onChange=${setMonth} />
    ${error && html`<p class="error">${t("error.load", { reason: error.message })}</p>`}
    ${!data && !error && html`<p class="loading">${t("loading")}</p>`}
    ${data &&
    html`<table class="grid" data-testid="coverage">
        <thead><tr><th>${t("coverage.area")}</th><th>${t("coverage.elders")}</th>
          <th>${t("coverage.visited")}</th><th>${t("coverage.rate")}</th></tr></thead>
        <tbody>
          ${data.areas.map(
            (a) => html`<tr><td>${[a.township, a.village].filter(Boolean).join(" · ") || a.county}</td>
              <td>${a.elders}</td><td>${a.visited}</td><td><${Rate} share=${a.rate} /></td></tr>`,
          )}
        </tbody>
        <tfoot><tr><th>${t("coverage.total")}</th><th>${data.total.elders}</th>
          <th>${data.total.visited}</th><th><${Rate} share=${data.total.rate} /></th></tr></tfoot>
      </table>
      <h2>${t("coverage.not_visited", { n: data.not_visited.length })}</h2>
      ${data.not_visited.length === 0
        ? html`<p class="empty">${t("coverage.all_visited")}</p>`
        : html`<ul class="unvisited" data-testid="not-visited">
            ${data.not_visited.map(
              (u) => html`<li><a href=${`#/household/${encodeURIComponent(u.household_id)}`}>${u.elder_name}</a>
                · ${u.township} ${u.village} · ${t("coverage.visitors")}: ${u.visitors.join("，") || "—"}</li>`,
            )}
          </ul>`}`}
  </section>`;
}

function Rate({ share }) {
  const width = share === null ? 0 : Math.round(share * 100);
  return html`<span class="rate"><span class="bar" style=${`width:${width}%`}></span>${percent(share)}</span>`;
}
