// The alert queue: critical and oldest first; acknowledge, resolve with a note, see the trail.
import { useState } from "preact/hooks";
import { get, post, query } from "../api.js";
import { ago, when } from "../format.js";
import { html } from "../html.js";
import { eventName, messageWord, ruleName, t } from "../i18n.js";
import { useLoad, useTick } from "../hooks.js";

export function AlertQueue({ household = null, active = true, compact = false }) {
  const now = useTick();
  const { data, error, reload } = useLoad(
    (signal) =>
      get(`/api/alerts${query({ active, order: active ? "queue" : null, household, limit: 200 })}`, {
        signal,
      }),
    [household, active],
    (changes) => changes.alerts.some((a) => !household || a.household_id === household),
  );
  if (error && !data) return html`<p class="error">${t("error.load", { reason: error.message })}</p>`;
  if (!data) return html`<p class="loading">${t("loading")}</p>`;
  const alerts = Array.isArray(data) ? data : data.items;
  if (!alerts.length) {
    return html`<p class="empty" data-testid="no-alerts">
      ${household ? t("household.no_alerts") : t("alerts.empty")}</p>`;
  }
  return html`<ol class=${`queue ${compact ? "compact" : ""}`} data-testid="alert-queue">
    ${alerts.map((a) => html`<${AlertItem} key=${a.id} alert=${a} now=${now} onChanged=${reload}
      showHousehold=${!household} />`)}
  </ol>`;
}

function AlertItem({ alert: a, now, onChanged, showHousehold }) {
  const [trail, setTrail] = useState(false);
  const [resolving, setResolving] = useState(false);
  const [note, setNote] = useState("");
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);

  async function act(path, body) {
    setBusy(true);
    setFailure(null);
    try {
      await post(`/api/alerts/${a.id}/${path}`, body);
      setResolving(false);
      onChanged();
    } catch (e) {
      setFailure(e.message);
    } finally {
      setBusy(false);
    }
  }

  return html`<li class=${`alert sev-${a.severity} st-${a.status}`} data-alert=${a.id}
    data-rule=${a.rule} data-status=${a.status}>
    <div class="alert-head">
      <span class=${`sev sev-${a.severity}`}>${t(`severity.${a.severity}`)}</span>
      <strong class="what">${ruleName(a.rule)}</strong>
      ${showHousehold &&
      html`<a class="who" href=${`#/household/${encodeURIComponent(a.household_id)}`}>
        ${a.elder_name ? `${a.elder_name} · ` : ""}${a.village ? `${a.village} · ` : ""}${a.household_id}</a>`}
      <span class="since" title=${when(a.opened_at)}>${t("alerts.opened", { time: ago(a.opened_at, now) })}</span>
      <span class="status">${t(`astatus.${a.status}`)}</span>
    </div>
    <p class="summary">${a.summary}</p>
    ${a.acknowledged_by && html`<p class="meta">${t("alerts.acknowledged_by", { who: a.acknowledged_by, time: when(a.acknowledged_at) })}</p>`}
    ${a.arrived_by && html`<p class="meta">${t("alerts.arrived_by", { who: a.arrived_by, time: when(a.arrived_at) })}</p>`}
    ${a.flagged_at && a.status !== "resolved" && html`<p class="flag">${t("alerts.flagged", { reason: a.flag_reason })}</p>`}
    ${a.resolution_note && html`<p class="meta">${a.resolved_by}：${a.resolution_note}</p>`}
    <div class="actions">
      ${!["acknowledged", "resolved"].includes(a.status) &&
      html`<button type="button" class="primary" disabled=${busy} data-action="ack"
        onClick=${() => act("ack", {})}>${t("alerts.ack")}</button>`}
      ${a.status !== "resolved" &&
      !resolving &&
      html`<button type="button" disabled=${busy} data-action="resolve"
        onClick=${() => setResolving(true)}>${t("alerts.resolve")}</button>`}
      <button type="button" class="link" data-action="trail" aria-expanded=${trail}
        onClick=${() => setTrail(!trail)}>${trail ? t("alerts.hide_trail") : t("alerts.trail")}</button>
    </div>
    ${resolving &&
    html`<form class="resolve" onSubmit=${(e) => {
      e.preventDefault();
      act("resolve", { note: note.trim() });
    }}>
      <label>${t("alerts.note")}
        <textarea required maxlength="1000" rows="2" placeholder=${t("alerts.note_placeholder")}
          value=${note} onInput=${(e) => setNote(e.target.value)} data-testid="resolve-note" /></label>
      <button type="submit" class="primary" disabled=${busy || !note.trim()}>${t("alerts.confirm_resolve")}</button>
      <button type="button" onClick=${() => setResolving(false)}>${t("alerts.cancel")}</button>
    </form>`}
    ${failure && html`<p class="error" role="alert">${t("alerts.failed", { reason: failure })}</p>`}
    ${trail && html`<${Trail} id=${a.id} />`}
  </li>`;
}

function Trail({ id }) {
  const { data, error } = useLoad(
    (signal) => get(`/api/alerts/${id}`, { signal }),
    [id],
    (changes) => changes.alerts.some((a) => a.id === id),
  );
  if (error && !data) return html`<p class="error">${t("error.load", { reason: error.message })}</p>`;
  if (!data) return html`<p class="loading">${t("loading")}</p>`;
  const e = data.escalation;
  return html`<div class="trail" data-testid="trail">
    ${e && e.next_at && e.state !== "done" &&
    html`<p class="meta">${t("alerts.escalation", { step: e.next_step, time: when(e.next_at) })}</p>`}
    <h4>${t("alerts.history")}</h4>
    <ol class="history">
      ${data.history.map(
        (h) => html`<li data-event=${h.event}><time>${when(h.at)}</time> <b>${eventName(h.event)}</b>
          ${h.actor ? ` · ${h.actor}` : ""}${h.detail ? ` · ${h.detail}` : ""}</li>`,
      )}
    </ol>
    ${data.notifications.length > 0 &&
    html`<h4>${t("alerts.messages")}</h4>
      <ol class="messages">
        ${data.notifications.map(
          (n) => html`<li><time>${when(n.sent_at ?? n.created_at)}</time>
            ${n.step ? `#${n.step} ` : ""}${messageWord(n.channel)} → ${n.recipient_name}
            (${messageWord(n.recipient_role)}) · ${messageWord(n.status)}
            ${n.delivery_status ? ` / ${messageWord(n.delivery_status)}` : ""}</li>`,
        )}
      </ol>`}
  </div>`;
}
