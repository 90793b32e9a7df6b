// Calls to the gateway's REST API with the signed-in token; errors carry the gateway's words.
import { signal } from "./state.js";

const KEY = "care.token";
export const token = signal(localStorage.getItem(KEY));
export const me = signal(null);

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function describe(body, status) {
  const detail = body?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg ?? String(d)).join("; ");
  return `HTTP ${status}`;
}

export async function request(method, path, body, { signal: abort } = {}) {
  const headers = { Authorization: `Bearer ${token.get()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: abort,
  });
  if (response.status === 401) {
    signOut();
    throw new ApiError(401, "unauthorized");
  }
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, describe(parsed, response.status));
  const total = response.headers.get("X-Total-Count");
  return total === null ? parsed : { items: parsed, total: Number(total) };
}

export const get = (path, options) => request("GET", path, undefined, options);
export const post = (path, body) => request("POST", path, body ?? {});

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** Signs in with `value`: answers the account, or throws ApiError (401: a bad token). */
export async function signIn(value) {
  const response = await fetch("/api/me", { headers: { Authorization: `Bearer ${value}` } });
  if (!response.ok) throw new ApiError(response.status, `HTTP ${response.status}`);
  const account = await response.json();
  localStorage.setItem(KEY, value);
  token.set(value);
  me.set(account);
  return account;
}

export function signOut() {
  localStorage.removeItem(KEY);
  me.set(null);
  token.set(null);
}
