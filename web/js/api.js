// Talking to Portico: the signed-in session (a Portico token kept in sessionStorage, renewed
// through the provider's refresh endpoint and the portico-session cookie), JSON calls with
// `Authorization: Bearer`, the popup sign-in flow, and run events read as Server-Sent Events
// over fetch() (EventSource cannot send headers), resumed with Last-Event-ID.

const TOKEN_KEY = 'portico.token';
const PROVIDER_KEY = 'portico.provider';

/** The current session; `token` is null when signed out. */
export const session = {
  token: sessionStorage.getItem(TOKEN_KEY),
  provider: localStorage.getItem(PROVIDER_KEY),
  user: null,
  displayName: null,
};

const listeners = new Set();

/** Calls `fn()` whenever the session signs in or out. */
export function onSessionChange(fn) {
  listeners.add(fn);
}

function changed() {
  for (const fn of listeners) fn(session);
}

/** An error answer from the API, with Backstage's error name and message. */
export class ApiError extends Error {
  constructor(status, name, message) {
    super(message);
    this.status = status;
    this.name = name;
  }
}

async function toError(response) {
  let name = 'Error';
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body?.error?.message) {
      name = body.error.name ?? name;
      message = body.error.message;
    }
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(response.status, name, message);
}

function adopt(provider, body) {
  const identity = body?.backstageIdentity;
  if (!identity?.token) throw new ApiError(500, 'Error', 'the sign-in answer carried no token');
  session.token = identity.token;
  session.provider = provider;
  session.user = identity.identity?.userEntityRef ?? null;
  session.displayName = body.profile?.displayName ?? body.profile?.email ?? session.user;
  sessionStorage.setItem(TOKEN_KEY, session.token);
  localStorage.setItem(PROVIDER_KEY, provider);
  changed();
}

/** Forgets the session in this tab (the server-side cookie is cleared by signOut). */
export function forget() {
  session.token = null;
  session.user = null;
  session.displayName = null;
  sessionStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(PROVIDER_KEY);
  changed();
}

/** The configured sign-in providers: [{id, kind: guest|oauth|proxy, signIn}]. */
export async function providers() {
  const response = await fetch('/api/auth/providers', { cache: 'no-store' });
  if (!response.ok) throw await toError(response);
  return (await response.json()).items ?? [];
}

/** A fresh Portico token for `provider` from the session cookie (or the proxy's header). */
export async function refresh(provider) {
  const response = await fetch(`/api/auth/${encodeURIComponent(provider)}/refresh`, {
    headers: { 'X-Requested-With': 'XMLHttpRequest' },
    credentials: 'same-origin',
    cache: 'no-store',
  });
  if (!response.ok) throw await toError(response);
  adopt(provider, await response.json());
}

/** Signs in with the popup flow at an OAuth provider. */
export async function signInWithPopup(provider) {
  const url = `/api/auth/${encodeURIComponent(provider)}/start?flow=popup&env=development`
    + `&origin=${encodeURIComponent(window.location.origin)}`;
  const message = await openPopup(url);
  adopt(provider, message.response);
}

/** Signs out at the provider (clears the session cookie) and here. */
export async function signOut() {
  const provider = session.provider;
  forget();
  if (provider) {
    await fetch(`/api/auth/${encodeURIComponent(provider)}/logout`, {
      method: 'POST',
      headers: { 'X-Requested-With': 'XMLHttpRequest' },
      credentials: 'same-origin',
    }).catch(() => {});
  }
}

/**
 * Opens `url` (a Portico `/api/auth/{provider}/start` URL) in a popup and resolves with the
 * `authorization_response` message the popup posts back, or rejects with its error, or when
 * the user closes the window first.
 */
export function openPopup(url) {
  return new Promise((resolve, reject) => {
    const popup = window.open(url, 'portico-sign-in', 'popup,width=520,height=700');
    if (!popup) {
      reject(new Error('The browser blocked the sign-in window: allow pop-ups for this page and try again.'));
      return;
    }
    let settled = false;
    const finish = (fn, value) => {
      if (settled) return;
      settled = true;
      window.removeEventListener('message', onMessage);
      window.clearInterval(timer);
      fn(value);
    };
    const onMessage = (event) => {
      if (event.origin !== window.location.origin || event.source !== popup) return;
      const data = event.data;
      if (!data || data.type !== 'authorization_response') return;
      if (data.error) finish(reject, new Error(data.error.message ?? 'The sign-in failed.'));
      else finish(resolve, data);
    };
    window.addEventListener('message', onMessage);
    // The message arrives before the popup closes itself; give it a moment after that.
    const timer = window.setInterval(() => {
      if (popup.closed) {
        window.setTimeout(() => finish(reject, new Error('The sign-in window was closed before it finished.')), 500);
      }
    }, 400);
  });
}

function authHeaders(extra = {}) {
  return session.token ? { ...extra, Authorization: `Bearer ${session.token}` } : extra;
}

/** Sends with the token; on 401 renews the token once through refresh and tries again. */
async function send(path, init) {
  let response = await fetch(path, { ...init, headers: authHeaders(init.headers) });
  if (response.status === 401 && session.provider) {
    try {
      await refresh(session.provider);
      response = await fetch(path, { ...init, headers: authHeaders(init.headers) });
    } catch {
      // Fall through with the 401.
    }
  }
  if (response.status === 401) forget();
  return response;
}

/** A JSON API call: resolves with the body (null for 204), rejects with an ApiError. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await send(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: 'no-store',
  });
  if (!response.ok) throw await toError(response);
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') ?? '';
  return type.includes('json') ? response.json() : response.text();
}

const TERMINAL = new Set(['run.completed', 'run.failed']);

/**
 * Splits Server-Sent Events text into events. Feed it chunks; it returns the complete events
 * seen so far as {id, event, data} and keeps the unfinished rest.
 */
export class SseParser {
  constructor() {
    this.buffer = '';
  }

  push(chunk) {
    this.buffer += chunk;
    const out = [];
    for (;;) {
      const match = /\r\n\r\n|\n\n|\r\r/.exec(this.buffer);
      if (!match) break;
      const block = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = { id: null, event: 'message', data: [] };
      for (const line of block.split(/\r\n|\n|\r/)) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'id') event.id = value;
        else if (field === 'event') event.event = value;
        else if (field === 'data') event.data.push(value);
      }
      if (event.data.length > 0) out.push({ ...event, data: event.data.join('\n') });
    }
    return out;
  }
}

const sleep = (ms) => new Promise((resolve) => { window.setTimeout(resolve, ms); });

/**
 * The events of run `runId`, from after `lastEventId` on, as an async iterator of
 * {id, type, data}; ends after `run.completed` or `run.failed`. A dropped stream is picked up
 * again with Last-Event-ID, so nothing is missed or seen twice.
 */
export async function* runEvents(runId, { signal, lastEventId = 0 } = {}) {
  let last = Number(lastEventId) || 0;
  let failures = 0;
  while (!signal?.aborted) {
    let response;
    try {
      const headers = { Accept: 'text/event-stream' };
      if (last > 0) headers['Last-Event-ID'] = String(last);
      response = await send(`/api/assistant/runs/${encodeURIComponent(runId)}/events`, {
        headers,
        signal,
        cache: 'no-store',
      });
    } catch (error) {
      if (signal?.aborted) return;
      failures += 1;
      if (failures > 20) throw error;
      await sleep(Math.min(5000, 250 * 2 ** failures));
      continue;
    }
    if (!response.ok) throw await toError(response);
    const parser = new SseParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const raw of parser.push(value)) {
          failures = 0;
          if (raw.id !== null) last = Number(raw.id) || last;
          let data;
          try {
            data = JSON.parse(raw.data);
          } catch {
            continue;
          }
          const type = data.type ?? raw.event;
          yield { id: last, type, data };
          if (TERMINAL.has(type)) return;
        }
      }
    } catch (error) {
      if (signal?.aborted) return;
    } finally {
      reader.releaseLock();
    }
    // The stream ended before the run did: reconnect where it left off.
    failures += 1;
    if (failures > 20) throw new Error('The event stream keeps dropping; reload to try again.');
    await sleep(Math.min(5000, 200 * failures));
  }
}
