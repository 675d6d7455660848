// The page: sign-in, the header, and the two views (the chat at `/`, the MCP catalog at
// `/catalog`), switched without reloading.

import {
  session, onSessionChange, providers, refresh, signInWithPopup, signOut, forget,
} from './api.js';
import { h, replace, announce } from './dom.js';
import { chatView } from './chat.js';
import { catalogView } from './catalog.js';

const main = document.getElementById('main');
let current = null;

function providerTitle(p) {
  if (p.kind === 'guest') return 'Continue as guest';
  return `Sign in with ${p.id}`;
}

async function signInView() {
  document.title = 'Sign in · Portico';
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const list = h('div', { class: 'sign-in-options' });
  const card = h('section', { class: 'sign-in', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title' }, 'Sign in to Portico'),
    h('p', {}, 'Ask questions about your software catalog; Portico answers with the MCP servers you enable.'),
    list, error);
  replace(main, card);
  let items = [];
  try {
    items = (await providers()).filter((p) => p.signIn);
  } catch (e) {
    error.hidden = false;
    error.textContent = `Cannot list the sign-in providers: ${e.message}`;
    return;
  }
  if (items.length === 0) {
    replace(list, h('p', {}, 'No sign-in provider is configured. Add one under auth.providers in the configuration.'));
    return;
  }
  // Guest first, then the others by id.
  items.sort((a, b) => (a.kind === 'guest' ? -1 : b.kind === 'guest' ? 1 : a.id.localeCompare(b.id)));
  for (const p of items) {
    const button = h('button', {
      type: 'button',
      class: p.kind === 'guest' ? 'primary' : '',
      dataset: { provider: p.id },
      onclick: async () => {
        error.hidden = true;
        button.disabled = true;
        try {
          if (p.kind === 'oauth') await signInWithPopup(p.id);
          else await refresh(p.id);
        } catch (e) {
          error.hidden = false;
          error.textContent = e.message;
        } finally {
          button.disabled = false;
        }
      },
    }, providerTitle(p));
    list.append(button);
  }
  list.querySelector('button')?.focus();
}

function showAccount() {
  const signedIn = Boolean(session.token);
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('account').hidden = !signedIn;
  document.getElementById('account-name').textContent = signedIn
    ? (session.displayName ?? session.user ?? 'Signed in') : '';
}

function markNav(route) {
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.route === route) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function render() {
  current?.destroy?.();
  current = null;
  showAccount();
  if (!session.token) {
    await signInView();
    return;
  }
  const route = window.location.pathname.replace(/\/+$/, '') === '/catalog' ? 'catalog' : 'chat';
  markNav(route);
  current = route === 'catalog' ? catalogView(main) : chatView(main);
}

export function navigate(path) {
  if (window.location.pathname !== path) window.history.pushState({}, '', path);
  render().then(() => main.focus());
}

document.addEventListener('click', (event) => {
  const link = event.target.closest?.('a[href^="/"]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey
    || event.shiftKey || link.target || link.getAttribute('href').startsWith('/api/')) return;
  event.preventDefault();
  navigate(link.getAttribute('href'));
});
window.addEventListener('popstate', () => { render(); });
document.getElementById('sign-out').addEventListener('click', async () => {
  await signOut();
  announce('Signed out');
});

let signedIn = Boolean(session.token);
onSessionChange(() => {
  const now = Boolean(session.token);
  if (now !== signedIn) {
    signedIn = now;
    if (now) announce(`Signed in as ${session.displayName ?? session.user}`);
    render();
  } else {
    showAccount();
  }
});

async function start() {
  // Stay signed in across reloads: the session cookie gives a fresh token.
  if (session.provider) {
    try {
      await refresh(session.provider);
      signedIn = true;
    } catch {
      signedIn = false;
      forget();
    }
  }
  await render();
}

start();
