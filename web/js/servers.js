// The MCP Servers dialog: the servers you enabled (disable, connect) and "Add server" with
// every catalog server, its description, owner, auth method and risks; unavailable ones say why.

import { api, openPopup } from './api.js';
import { h, replace, announce } from './dom.js';

/** entityRef → title of every server the assistant knows. */
export async function serverTitles() {
  const body = await api('/api/assistant/servers');
  return new Map((body.items ?? []).map((s) => [s.entityRef, s.title || s.entityRef]));
}

/** "OAuth via github (scopes repo)", "Portico plugin token", "None". */
export function authMethod(auth) {
  if (!auth) return 'Invalid auth annotations';
  switch (auth.method) {
    case 'none': return 'None';
    case 'oauth': {
      const scopes = auth.scopes?.length ? `, scopes ${auth.scopes.join(' ')}` : '';
      return `OAuth via ${auth.provider ?? auth.apiId}${scopes}`;
    }
    case 'plugin': return `Portico plugin token (${auth.pluginId})`;
    default: return auth.method;
  }
}

function authStatusText(status) {
  switch (status?.status) {
    case 'connected': return 'Connected';
    case 'loginNeeded': return `Sign-in to ${status.provider} needed`;
    case 'unavailable': return `Cannot sign in: ${status.reason}`;
    default: return null;
  }
}

const encodeRef = (ref) => ref.split('/').map(encodeURIComponent).join('/');

/** Opens the dialog; focus goes back to `opener` when it closes. */
export function openServersDialog(opener, onChange) {
  const enabledList = h('ul', { class: 'server-list', id: 'enabled-servers' });
  const availableList = h('ul', { class: 'server-list', id: 'available-servers' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const availableSection = h('section', { 'aria-labelledby': 'available-title', hidden: true },
    h('h3', { id: 'available-title', tabindex: -1 }, 'Add a server'),
    availableList);
  const addButton = h('button', {
    type: 'button',
    id: 'add-server',
    'aria-expanded': 'false',
    'aria-controls': 'available-servers',
    onclick: () => {
      const show = availableSection.hidden;
      availableSection.hidden = !show;
      addButton.setAttribute('aria-expanded', String(show));
      addButton.textContent = show ? 'Hide available servers' : 'Add server';
      if (show) availableSection.querySelector('h3').focus();
    },
  }, 'Add server');
  const close = h('button', { type: 'button', class: 'icon', 'aria-label': 'Close', onclick: () => dialog.close() }, '×');
  const dialog = h('dialog', { class: 'servers-dialog', 'aria-labelledby': 'servers-title' },
    h('div', { class: 'dialog-head' }, h('h2', { id: 'servers-title' }, 'MCP Servers'), close),
    h('p', { class: 'hint' }, 'The assistant uses the tools of the servers enabled here.'),
    error,
    h('section', { 'aria-labelledby': 'enabled-title' },
      h('h3', { id: 'enabled-title' }, 'Enabled'),
      enabledList),
    addButton,
    availableSection);
  document.body.append(dialog);
  dialog.addEventListener('close', () => {
    dialog.remove();
    opener?.focus();
    onChange?.();
  });
  // A click on the backdrop (outside the dialog's box) closes it, as Escape does.
  dialog.addEventListener('click', (event) => {
    if (event.target !== dialog) return;
    const r = dialog.getBoundingClientRect();
    const inside = event.clientX >= r.left && event.clientX <= r.right
      && event.clientY >= r.top && event.clientY <= r.bottom;
    if (!inside) dialog.close();
  });

  async function setEnabled(server, on) {
    error.hidden = true;
    try {
      await api(`/api/assistant/servers/${encodeRef(server.entityRef)}/enabled`, { method: on ? 'PUT' : 'DELETE' });
      announce(`${server.title} ${on ? 'enabled' : 'disabled'}`);
      await load(on ? server.entityRef : null);
    } catch (e) {
      error.hidden = false;
      error.textContent = e.message;
    }
  }

  async function connect(server, button) {
    const url = server.authStatus.loginUrl;
    try {
      button.disabled = true;
      await openPopup(url);
      await load(server.entityRef);
    } catch (e) {
      error.hidden = false;
      error.textContent = e.message;
      button.disabled = false;
    }
  }

  function enabledItem(s) {
    const status = authStatusText(s.authStatus);
    const connectButton = s.authStatus?.status === 'loginNeeded'
      ? h('button', { type: 'button', onclick: (e) => connect(s, e.currentTarget) }, `Connect ${s.authStatus.provider}`)
      : null;
    return h('li', { class: 'server', dataset: { ref: s.entityRef } },
      h('div', { class: 'server-text' },
        h('strong', { class: 'server-title' }, s.title),
        h('span', { class: 'meta' }, s.entityRef),
        status ? h('span', { class: 'meta auth-status' }, status) : null,
        s.skippedBecause ? h('span', { class: 'warning' }, `Skipped: ${s.skippedBecause}`) : null),
      h('div', { class: 'server-actions' },
        connectButton,
        h('button', { type: 'button', 'aria-label': `Disable ${s.title}`, onclick: () => setEnabled(s, false) }, 'Disable')));
  }

  function availableItem(s) {
    const unavailable = !s.available;
    return h('li', { class: `server${unavailable ? ' unavailable' : ''}`, dataset: { ref: s.entityRef } },
      h('div', { class: 'server-text' },
        h('strong', { class: 'server-title' }, s.title),
        s.description ? h('span', {}, s.description) : null,
        h('dl', { class: 'facts' },
          h('dt', {}, 'Owner'), h('dd', {}, s.owner ?? '—'),
          h('dt', {}, 'Auth'), h('dd', {}, authMethod(s.auth)),
          h('dt', {}, 'Risk'), h('dd', { class: 'risk' }, s.risk?.summary ?? '—')),
        unavailable ? h('span', { class: 'warning unavailable-reason' }, `Unavailable: ${s.reason ?? s.authStatus?.reason ?? 'unknown reason'}`) : null),
      h('div', { class: 'server-actions' },
        h('button', {
          type: 'button',
          class: 'primary',
          disabled: unavailable,
          'aria-label': `Add ${s.title}`,
          onclick: () => setEnabled(s, true),
        }, 'Add')));
  }

  async function load(focusRef) {
    let items;
    try {
      const [mine, catalog] = await Promise.all([
        api('/api/assistant/servers'),
        api('/api/catalog/mcp-servers'),
      ]);
      items = mine.items ?? [];
      // The assistant lists the servers one can enable; the catalog also has the others, with why.
      const known = new Set(items.map((s) => s.entityRef));
      for (const s of catalog.items ?? []) {
        if (!known.has(s.entityRef) && !s.available) items.push({ ...s, enabled: false });
      }
    } catch (e) {
      error.hidden = false;
      error.textContent = `Cannot list the servers: ${e.message}`;
      return;
    }
    const enabled = items.filter((s) => s.enabled);
    const others = items.filter((s) => !s.enabled);
    replace(enabledList, enabled.length ? enabled.map(enabledItem) : h('li', { class: 'empty' }, 'No server is enabled.'));
    replace(availableList, others.length ? others.map(availableItem) : h('li', { class: 'empty' }, 'Every server is enabled.'));
    const target = focusRef && enabledList.querySelector(`li[data-ref="${CSS.escape(focusRef)}"] button`);
    if (target) target.focus();
    else if (focusRef === null) addButton.focus();
  }

  dialog.showModal();
  load();
  return dialog;
}
