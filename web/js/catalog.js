// The MCP catalog page: every MCP server entity with its availability, transport, auth method
// and validation errors, and a link to the entity's JSON.

import { api } from './api.js';
import { h, replace } from './dom.js';
import { authMethod } from './servers.js';

function entityJsonUrl(ref) {
  const match = /^([^:]+):([^/]+)\/(.+)$/.exec(ref);
  if (!match) return null;
  const [, kind, namespace, name] = match;
  return `/api/catalog/entities/by-name/${[kind, namespace, name].map(encodeURIComponent).join('/')}`;
}

function refOf(entity) {
  const m = entity.metadata ?? {};
  return `${String(entity.kind).toLowerCase()}:${(m.namespace ?? 'default').toLowerCase()}/${String(m.name).toLowerCase()}`;
}

export function catalogView(main) {
  const body = h('div', { class: 'catalog-body' }, h('p', {}, 'Loading…'));
  replace(main, h('section', { class: 'catalog', 'aria-labelledby': 'catalog-title' },
    h('h1', { id: 'catalog-title' }, 'MCP servers in the catalog'),
    h('p', { class: 'hint' }, 'Every API entity of type mcp-server, as Portico reads it.'),
    body));
  document.title = 'MCP catalog · Portico';
  load(body);
  return { destroy() {} };
}

async function load(body) {
  let servers;
  let errorsByRef = new Map();
  try {
    const [registry, entities] = await Promise.all([
      api('/api/catalog/mcp-servers'),
      api('/api/catalog/entities?filter=kind=api,spec.type=mcp-server&fields=kind,metadata.namespace,metadata.name,status'),
    ]);
    servers = registry.items ?? [];
    errorsByRef = new Map((entities ?? []).map((e) => [refOf(e),
      (e.status?.items ?? []).filter((i) => i.level === 'error')
        .map((i) => i.error?.message ?? i.message ?? 'error')]));
  } catch (e) {
    replace(body, h('p', { class: 'error', role: 'alert' }, `Cannot read the catalog: ${e.message}`));
    return;
  }
  if (servers.length === 0) {
    replace(body, h('p', {}, 'The catalog has no MCP server entities.'));
    return;
  }
  replace(body, h('ul', { class: 'entity-list' }, servers.map((s) => {
    const errors = errorsByRef.get(s.entityRef) ?? [];
    const url = entityJsonUrl(s.entityRef);
    return h('li', { class: `entity${s.available ? '' : ' unavailable'}`, dataset: { ref: s.entityRef } },
      h('h2', {}, s.title, ' ', h('span', { class: `badge ${s.available ? 'ok' : 'no'}` }, s.available ? 'Available' : 'Unavailable')),
      h('p', { class: 'meta' }, s.entityRef),
      s.description ? h('p', {}, s.description) : null,
      h('dl', { class: 'facts' },
        h('dt', {}, 'Owner'), h('dd', {}, s.owner ?? '—'),
        h('dt', {}, 'Transport'), h('dd', { class: 'transport' }, s.transport ? `${s.transport.type} ${s.transport.url}` : 'none'),
        h('dt', {}, 'Auth'), h('dd', {}, authMethod(s.auth)),
        s.available ? null : [h('dt', {}, 'Why not available'), h('dd', { class: 'reason' }, s.reason ?? '—')]),
      errors.length ? h('div', { class: 'validation' },
        h('h3', {}, 'Validation errors'),
        h('ul', { class: 'errors' }, errors.map((m) => h('li', {}, m)))) : null,
      url ? jsonLink(url, s.entityRef) : null);
  })));
}

/** A link to the entity's JSON; following it shows the JSON here, fetched with the token. */
function jsonLink(url, ref) {
  const pre = h('pre', { class: 'entity-json', tabindex: 0, hidden: true });
  const link = h('a', {
    href: url,
    class: 'json-link',
    'aria-expanded': 'false',
    onclick: async (event) => {
      event.preventDefault();
      if (!pre.hidden) {
        pre.hidden = true;
        link.setAttribute('aria-expanded', 'false');
        return;
      }
      try {
        pre.textContent = JSON.stringify(await api(url), null, 2);
      } catch (e) {
        pre.textContent = `Cannot read ${url}: ${e.message}`;
      }
      pre.hidden = false;
      link.setAttribute('aria-expanded', 'true');
    },
  }, `Entity JSON (${ref})`);
  return h('div', { class: 'json' }, link, pre);
}
