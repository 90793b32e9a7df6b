// A monthly report's heading with its month picker (no month after this one).
import { thisMonth } from "../format.js";
import { html } from "../html.js";
import { t } from "../i18n.js";

export function MonthHeader({ title, month, onChange }) {
  return html`<div class="report-head">
    <h1>${title}</h1>
    <label>${t("coverage.month")} <input type="month" value=${month} max=${thisMonth()}
      onChange=${(e) => e.target.value && onChange(e.target.value)} /></label>
  </div>`;
}
