// The control room: sign-in, the header with its live status, and one view per route.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, me, signIn, signOut, token } from "./api.js";
import { html } from "./html.js";
import { language, ruleName, setLanguage, t } from "./i18n.js";
import { connection, onChanges, restoredAt, startLive, stopLive } from "./live.js";
import { chime, enableSound, soundBlocked } from "./sound.js";
import { useRoute } from "./hooks.js";
import { useSignal } from "./state.js";
import { AlertQueue } from "./views/alerts.js";
import { Coverage } from "./views/coverage.js";
import { Household } from "./views/household.js";
import { Overview } from "./views/overview.js";
import { ResponseReport } from "./views/report.js";
import { Warnings } from "./views/warnings.js";

const STAFF = new Set(["admin", "operator"]);

function SignIn() {
  const [value, setValue] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    enableSound().catch(() => {});
    try {
      await signIn(value.trim());
    } catch (e) {
      setError(e instanceof ApiError && e.status === 401 ? "signin.bad" : "signin.unreachable");
    } finally {
      setBusy(false);
    }
  }
  return html`<main class="signin">
    <form onSubmit=${submit} aria-labelledby="signin-title">
      <h1 id="signin-title">${t("signin.title")}</h1>
      <p class="hint">${t("signin.hint")}</p>
      <label for="token">${t("signin.token")}</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required
        value=${value} onInput=${(e) => setValue(e.target.value)} />
      ${error && html`<p class="error" role="alert">${t(error)}</p>`}
      <div class="row">
        <button type="submit" class="primary" disabled=${busy}>${t("signin.submit")}</button>
        <${LanguageSwitch} />
      </div>
    </form>
  </main>`;
}

function LanguageSwitch() {
  const lang = useSignal(language);
  return html`<button type="button" class="link" data-testid="language"
    onClick=${() => setLanguage(lang === "zh" ? "en" : "zh")}>${t("lang.switch")}</button>`;
}

function LiveBadge() {
  const state = useSignal(connection);
  const label = { open: "live.connected", connecting: "live.connecting", closed: "live.connecting" };
  return html`<span class=${`live live-${state}`} data-testid="live-state" data-state=${state}>
    ${t(label[state])}</span>`;
}

function Banner() {
  const state = useSignal(connection);
  const restored = useSignal(restoredAt);
  const [showRestored, setShowRestored] = useState(false);
  useEffect(() => {
    if (!restored) return undefined;
    setShowRestored(true);
    const timer = setTimeout(() => setShowRestored(false), 5000);
    return () => clearTimeout(timer);
  }, [restored]);
  if (state === "closed") {
    return html`<div class="banner banner-down" role="alert" data-testid="disconnected">
      ${t("live.disconnected")}</div>`;
  }
  if (showRestored) {
    return html`<div class="banner banner-up" role="status">${t("live.restored")}</div>`;
  }
  return null;
}

function SoundButton() {
  const blocked = useSignal(soundBlocked);
  if (!blocked) return null;
  return html`<button type="button" class="link" onClick=${() => enableSound()}>
    ${t("sound.enable")}</button>`;
}

function CriticalToasts() {
  const [toasts, setToasts] = useState([]);
  useEffect(
    () =>
      onChanges((changes) => {
        const fresh = changes.alerts.filter((a) => a.change === "opened" && a.severity === "critical");
        if (!fresh.length) return;
        chime();
        setToasts((old) => [...fresh, ...old].slice(0, 4));
        for (const alert of fresh) {
          setTimeout(() => setToasts((old) => old.filter((x) => x !== alert)), 20000);
        }
      }),
    [],
  );
  if (!toasts.length) return null;
  return html`<div class="toasts" role="alert" aria-live="assertive">
    ${toasts.map(
      (a) => html`<a class="toast" href=${`#/household/${encodeURIComponent(a.household_id)}`}
        data-testid="critical-toast">
        ${t("alerts.new_critical", { what: `${ruleName(a.rule)} · ${a.household_id}` })}</a>`,
    )}
  </div>`;
}

function Header({ account, route }) {
  const staff = STAFF.has(account.role);
  const items = [
    ["overview", "nav.overview"],
    ["alerts", "nav.alerts"],
    ...(staff ? [["coverage", "nav.coverage"], ["report", "nav.report"]] : []),
    ["warnings", "nav.warnings"],
  ];
  return html`<header class="top">
    <div class="brand">${t("app.title")}</div>
    <nav aria-label="main">
      ${items.map(
        ([name, key]) => html`<a href=${`#/${name}`} data-nav=${name}
          aria-current=${route[0] === name ? "page" : undefined}>${t(key)}</a>`,
      )}
    </nav>
    <div class="who">
      <${LiveBadge} />
      <${SoundButton} />
      <span class="account">${account.name} · ${t(`role.${account.role}`)}
        ${account.township ? ` · ${account.township}` : ""}</span>
      <${LanguageSwitch} />
      <button type="button" class="link" onClick=${signOut} data-testid="signout">${t("signout")}</button>
    </div>
  </header>`;
}

function View({ route, account }) {
  const [name, id] = route;
  const staff = STAFF.has(account.role);
  switch (name) {
    case "alerts":
      return html`<${AlertQueue} account=${account} />`;
    case "household":
      return html`<${Household} id=${id} account=${account} />`;
    case "coverage":
      return staff ? html`<${Coverage} />` : html`<p class="error">${t("error.forbidden")}</p>`;
    case "report":
      return staff ? html`<${ResponseReport} />` : html`<p class="error">${t("error.forbidden")}</p>`;
    case "warnings":
      return html`<${Warnings} account=${account} id=${id} />`;
    default:
      return html`<${Overview} account=${account} />`;
  }
}

function App() {
  const current = useSignal(token);
  const account = useSignal(me);
  useSignal(language);
  const route = useRoute();
  const [checking, setChecking] = useState(Boolean(current && !account));
  const [attempt, setAttempt] = useState(0);

  // A page reloaded with a saved token checks it; while the gateway is unreachable (restarting),
  // it keeps trying rather than asking the operator to sign in again.
  useEffect(() => {
    if (!current || account) return undefined;
    setChecking(true);
    let retry = null;
    signIn(current)
      .catch((e) => {
        if (e instanceof ApiError && e.status === 401) signOut();
        else retry = setTimeout(() => setAttempt((n) => n + 1), 3000);
      })
      .finally(() => setChecking(false));
    return () => clearTimeout(retry);
  }, [current, attempt]);

  useEffect(() => {
    if (!account) return undefined;
    startLive(current);
    const unauthorized = () => signOut();
    window.addEventListener("care:unauthorized", unauthorized);
    return () => {
      stopLive();
      window.removeEventListener("care:unauthorized", unauthorized);
    };
  }, [account, current]);

  if (!current) return html`<${SignIn} />`;
  if (!account) return html`<p class="loading">${checking ? t("loading") : t("signin.unreachable")}</p>`;
  return html`<div class=${`shell role-${account.role}`}>
    <${Header} account=${account} route=${route} />
    <${Banner} />
    <${CriticalToasts} />
    <main class="content"><${View} route=${route} account=${account} /></main>
  </div>`;
}

document.documentElement.lang = language.get() === "zh" ? "zh-CN" : "en";
const root = document.getElementById("app");
root.replaceChildren();
render(html`<${App} />`, root);
