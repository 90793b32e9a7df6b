// Emergency warnings: issue one to a township, then watch who is accounted for, live.
import { useState } from "preact/hooks";
import { get, post, query } from "../api.js";
import { when } from "../format.js";
import { html } from "../html.js";
import { t } from "../i18n.js";
import { useLoad } from "../hooks.js";

const KINDS = ["typhoon", "rainstorm", "heat", "cold_wave", "earthquake", "geological", "other"];
const LEVELS = ["blue", "yellow", "orange", "red"];
const MARKS = ["checked", "safe", "shelter"];

export function Warnings({ account, id }) {
  if (id) return html`<${WarningDetail} id=${Number(id)} account=${account} />`;
  const staff = account.role !== "visitor";
  const { data, error, reload } = useLoad(
    (signal) => get(`/api/warnings${query({ limit: 50 })}`, { signal }),
    [],
    (changes) => changes.warnings.length > 0,
  );
  const warnings = data ? (Array.isArray(data) ? data : data.items) : null;
  return html`<section class="warnings">
    <h1>${t("warnings.title")}</h1>
    ${staff && html`<${IssueForm} account=${account} onIssued=${reload} />`}
    ${error && html`<p class="error">${t("error.load", { reason: error.message })}</p>`}
    ${warnings && warnings.length === 0 && html`<p class="empty">${t("warnings.empty")}</p>`}
    ${warnings &&
    html`<ul class="warning-list">
      ${warnings.map(
        (w) => html`<li class=${`level-${w.level}`}><a href=${`#/warnings/${w.id}`}>
          <b>${t(`wlevel.${w.level}`)} · ${t(`wkind.${w.kind}`)}</b> ${w.title}</a>
          · ${w.township} · ${when(w.issued_at)} ${w.closed_at ? `· ${t("warnings.closed")}` : ""}</li>`,
      )}
    </ul>`}
  </section>`;
}

function IssueForm({ account, onIssued }) {
  const [form, setForm] = useState({
    kind: "typhoon",
    level: "orange",
    township: account.township ?? "",
    villages: "",
    title: "",
    body: "",
  });
  const [result, setResult] = useState(null);
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const field = (key) => (e) => setForm({ ...form, [key]: e.target.value });
  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setFailure(null);
    try {
      const villages = form.villages.split(/[,，、\s]+/).map((v) => v.trim()).filter(Boolean);
      const issued = await post("/api/warnings", { ...form, villages });
      setResult(issued);
      onIssued();
      location.hash = `#/warnings/${issued.id}`;
    } catch (e) {
      setFailure(e.message);
    } finally {
      setBusy(false);
    }
  }
  return html`<details class="issue"><summary>${t("warnings.new")}</summary>
    <form onSubmit=${submit}>
      <label>${t("warnings.kind")} <select value=${form.kind} onChange=${field("kind")}>
        ${KINDS.map((k) => html`<option value=${k}>${t(`wkind.${k}`)}</option>`)}</select></label>
      <label>${t("warnings.level")} <select value=${form.level} onChange=${field("level")}>
        ${LEVELS.map((k) => html`<option value=${k}>${t(`wlevel.${k}`)}</option>`)}</select></label>
      <label>${t("warnings.township")} <input required value=${form.township} onInput=${field("township")}
        readonly=${account.role === "operator"} /></label>
      <label>${t("warnings.villages")} <input value=${form.villages} onInput=${field("villages")} /></label>
      <label>${t("warnings.wtitle")} <input required maxlength="100" value=${form.title} onInput=${field("title")} /></label>
      <label>${t("warnings.body")} <textarea required maxlength="1000" rows="3" value=${form.body} onInput=${field("body")} /></label>
      <button type="submit" class="primary" disabled=${busy}>${t("warnings.issue")}</button>
      ${failure && html`<p class="error" role="alert">${t("alerts.failed", { reason: failure })}</p>`}
      ${result && html`<p>${t("warnings.issued", { n: result.visitors_notified, e: result.elders })}</p>`}
      ${result?.unreached?.length > 0 && html`<p class="flag">${t("warnings.unreached", { list: result.unreached.join("，") })}</p>`}
    </form>
  </details>`;
}

function WarningDetail({ id, account }) {
  const { data, error, reload } = useLoad(
    (signal) => get(`/api/warnings/${id}`, { signal }),
    [id],
    (changes) => changes.warnings.includes(id),
  );
  const [failure, setFailure] = useState(null);
  if (error && !data) return html`<p class="error">${t("error.load", { reason: error.message })}</p>`;
  if (!data) return html`<p class="loading">${t("loading")}</p>`;
  const done = data.elders.length - (data.counts.pending ?? 0);
  async function act(path, body) {
    setFailure(null);
    try {
      await post(`/api/warnings/${id}/${path}`, body);
      reload();
    } catch (e) {
      setFailure(e.message);
    }
  }
  return html`<section class=${`warning level-${data.level}`} data-testid="warning">
    <p><a href="#/warnings">← ${t("nav.warnings")}</a></p>
    <h1>${t(`wlevel.${data.level}`)} · ${t(`wkind.${data.kind}`)} · ${data.title}</h1>
    <p>${data.body}</p>
    <p class="progress"><b data-testid="accounted">${t("warnings.accounted", { done, all: data.elders.length })}</b>
      ${Object.entries(data.counts).map(([s, n]) => html` · ${t(`wstatus.${s}`)} ${n}`)}</p>
    ${account.role !== "visitor" && !data.closed_at &&
    html`<button type="button" onClick=${() => act("close", {})}>${t("warnings.close")}</button>`}
    ${failure && html`<p class="error" role="alert">${t("alerts.failed", { reason: failure })}</p>`}
    <table class="grid">
      <tbody>
        ${data.elders.map(
          (e) => html`<tr class=${`w-${e.status} ${e.no_visitor ? "no-visitor" : ""}`} data-household=${e.household_id}>
            <td>${e.number}</td>
            <td><a href=${`#/household/${encodeURIComponent(e.household_id)}`}>${e.name}</a></td>
            <td>${e.village} ${e.address_detail}</td>
            <td>${e.visitors.map((v) => v.name).join("，") || "—"}</td>
            <td>${t(`wstatus.${e.status}`)}${e.updated_by ? ` · ${e.updated_by}` : ""}</td>
            <td>${!data.closed_at &&
            MARKS.map(
              (m) => html`<button type="button" class="small" disabled=${e.status === m}
                onClick=${() => act("checks", { household_id: e.household_id, status: m })}>${t(`wstatus.${m}`)}</button>`,
            )}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}
