// Portico's web UI in a real browser (Debian's chromium via playwright-core) against a real
// `portico serve`: guest sign-in, the MCP Servers dialog, a question whose tool card goes from
// running to finished, an approved and a denied write, a server behind the real OIDC provider
// whose Connect card resumes the run after the popup sign-in, the catalog page, and the layout
// at 360 px and at 400% zoom, and signing out then in again through the OIDC provider's popup. The tests run in order on one signed-in page; each step saves a
// screenshot under target/ui-screenshots (or $UI_SCREENSHOT_DIR).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, rmSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startModel } from './scripted-model.mjs';
import { ROOT, launchBrowser, oidcPeer, startEverything, startPortico, tempDir } from './harness.mjs';

const SHOTS = process.env.UI_SCREENSHOT_DIR ?? path.join(ROOT, 'target/ui-screenshots');
const Q_SLOW = 'How long does the slow operation take?';
const Q_REGISTER = 'Register the team catalog';
const Q_UNREGISTER = 'Unregister the old catalog';
const Q_CORP = 'What do the corp notes say?';
const SCRIPT = {
  [Q_SLOW]: [
    { tools: [['everything__trigger-long-running-operation', { duration: 3, steps: 3 }]] },
    { text: 'The slow operation took three steps and finished.' },
  ],
  [Q_REGISTER]: [
    { tools: [['mcp-actions__catalog_register_entity', { target: 'http://127.0.0.1:9/ui-test/catalog-info.yaml' }]] },
    { text: 'The team catalog is registered.' },
  ],
  [Q_UNREGISTER]: [
    { tools: [['mcp-actions__catalog_unregister_entity', { target: 'http://127.0.0.1:9/ui-test/old.yaml' }]] },
    { text: 'You denied it, so the old catalog stays registered.' },
  ],
  [Q_CORP]: [
    { text: 'Connected to corp: the notes are ready.' },
  ],
};

let dir;
let model;
let everything;
let portico;
let context;
let page;
let shot = 0;

async function screenshot(name) {
  shot += 1;
  const file = path.join(SHOTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${path.relative(ROOT, file)}`);
}

/**
 * Fills oidc-provider's login form (any password; a screenshot of the popup when `name` is given)
 * and, when asked, its consent form.
 */
async function providerLogin(popup, login, name) {
  await popup.locator('input[name="login"]').fill(login);
  await popup.locator('input[name="password"]').fill('any');
  if (name) {
    shot += 1;
    const file = path.join(SHOTS, `${String(shot).padStart(2, '0')}-${name}.png`);
    await popup.screenshot({ path: file });
    console.log(`screenshot: ${path.relative(ROOT, file)}`);
  }
  await popup.locator('form:has(input[name="prompt"][value="login"]) [type="submit"]').click();
  const consent = popup.locator('form:has(input[name="prompt"][value="consent"]) [type="submit"]');
  try {
    await consent.waitFor({ timeout: 10_000 });
    await consent.click();
  } catch {
    // Closed already, or consent was not asked.
  }
}

/** Asks `question` from the keyboard; returns the locator of the run it starts. */
async function ask(question) {
  const before = await page.locator('li.run').count();
  await page.getByLabel('Your question').fill(question);
  await page.keyboard.press('Enter');
  await page.locator('.message.user', { hasText: question }).waitFor();
  const run = page.locator('li.run').nth(before);
  await run.waitFor();
  return run;
}

before(async () => {
  const oidc = oidcPeer();
  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  dir = tempDir();
  model = await startModel(SCRIPT);
  everything = await startEverything(dir);
  portico = await startPortico({ dir, modelUrl: model.baseUrl, everythingUrl: everything.url, oidc });
  context = await launchBrowser(dir);
  context.setDefaultTimeout(20_000);
  page = context.pages()[0] ?? await context.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
});

after(async () => {
  await context?.close();
  await portico?.stop();
  await everything?.stop();
  await model?.close();
  // The test script scans every log for secrets the OIDC provider issued: hand it Portico's.
  if (portico && process.env.PORTICO_TEST_LOG_DIR) {
    copyFileSync(portico.logFile, path.join(process.env.PORTICO_TEST_LOG_DIR, `ui-portico-${process.pid}.log`));
  }
  if (process.exitCode && portico) {
    console.error(`portico log (${portico.logFile}):\n${readFileSync(portico.logFile, 'utf8').slice(-4000)}`);
  }
});

test('the page is served from the binary with a strict Content-Security-Policy', async () => {
  const response = await page.goto(portico.url);
  assert.equal(response.status(), 200);
  const csp = response.headers()['content-security-policy'];
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /https?:|unsafe-inline|\*/);
  const api = await page.request.get(`${portico.url}/api/no-such-route`);
  assert.equal(api.status(), 404);
  assert.equal((await api.json()).error.name, 'NotFoundError');
});

test('signs in as guest from the keyboard', async () => {
  await page.getByRole('heading', { name: 'Sign in to Portico' }).waitFor();
  const guest = page.getByRole('button', { name: 'Continue as guest' });
  await guest.waitFor();
  await page.getByRole('button', { name: 'Sign in with sso' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Sign in with corp' }).count(), 0,
    'corp does not sign users in, so it is not offered');
  await screenshot('sign-in');
  // The first option has focus: Enter signs in.
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Continue as guest');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'New conversation' }).waitFor();
  assert.equal(await page.locator('#account-name').textContent(), 'Guest');
  // A reload stays signed in (the token is renewed through the session cookie).
  await page.reload();
  await page.getByRole('heading', { name: 'New conversation' }).waitFor();
  // The chat says which model answers (here the scripted one, as the OpenAI-compatible provider).
  await page.locator('#model code').waitFor();
  assert.match(await page.locator('#model').textContent(), /^Model: openai:scripted/);
  await screenshot('chat-empty');
});

test('the MCP Servers dialog lists enabled servers and adds one', async () => {
  const open = page.getByRole('button', { name: 'MCP Servers' });
  await open.click();
  const dialog = page.getByRole('dialog', { name: 'MCP Servers' });
  await dialog.waitFor();
  const enabled = dialog.locator('#enabled-servers');
  await enabled.getByText('Portal Actions').waitFor();
  await screenshot('servers-dialog');
  await dialog.getByRole('button', { name: 'Add server' }).click();
  const available = dialog.locator('#available-servers');
  const everythingItem = available.locator('li[data-ref="api:default/everything"]');
  await everythingItem.waitFor();
  assert.match(await everythingItem.textContent(), /The MCP reference server/);
  assert.match(await everythingItem.textContent(), /team-ui/);
  assert.match(await everythingItem.locator('.risk').textContent(), /\w/);
  const corpItem = available.locator('li[data-ref="api:default/corp-notes"]');
  assert.match(await corpItem.textContent(), /OAuth via corp/);
  // Servers that cannot be enabled are listed with the reason, and cannot be added.
  const retired = available.locator('li[data-ref="api:default/retired"]');
  assert.match(await retired.locator('.unavailable-reason').textContent(), /Unavailable: spec\.lifecycle is "deprecated"/);
  assert.ok(await retired.getByRole('button', { name: 'Add Retired server' }).isDisabled());
  await screenshot('servers-available');
  await everythingItem.getByRole('button', { name: 'Add Everything' }).click();
  await enabled.locator('li[data-ref="api:default/everything"]').waitFor();
  await available.locator('li[data-ref="api:default/everything"]').waitFor({ state: 'detached' });
  await screenshot('servers-added');
  // Escape closes it and focus goes back to the button that opened it.
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'open-servers');
});

test('a question shows a tool card going from running to finished, then the answer', async () => {
  const run = await ask(Q_SLOW);
  const card = run.locator('.card.tool');
  await card.and(page.locator('[data-state="running"]')).waitFor();
  assert.match(await card.locator('.state').textContent(), /Running/);
  assert.equal(await card.locator('.tool-name').textContent(), 'trigger-long-running-operation');
  assert.equal(await card.locator('.tool-server').textContent(), 'Everything');
  await screenshot('tool-running');
  await card.and(page.locator('[data-state="finished"]')).waitFor();
  assert.match(await card.locator('.time').textContent(), /\d+(\.\d)? (ms|s)$/);
  await run.locator('.answer', { hasText: 'The slow operation took three steps and finished.' }).waitFor();
  await card.getByText('Result').click();
  assert.ok((await card.locator('details pre').textContent()).length > 0);
  await screenshot('tool-finished');
});

test('a write asks first; Approve runs it', async () => {
  const run = await ask(Q_REGISTER);
  const approval = run.locator('.card.approval');
  await approval.waitFor();
  assert.match(await approval.locator('h3').textContent(), /catalog_register_entity/);
  assert.match(await approval.locator('pre.arguments').textContent(), /ui-test\/catalog-info\.yaml/);
  await screenshot('approval-asked');
  await approval.getByRole('button', { name: 'Approve' }).click();
  await approval.and(page.locator('[data-state="approved"]')).waitFor();
  await run.locator('.card.tool[data-tool="catalog_register_entity"]').and(page.locator('[data-state="finished"], [data-state="failed"]')).waitFor();
  await run.locator('.answer', { hasText: 'The team catalog is registered.' }).waitFor();
  await screenshot('approval-approved');
});

test('Deny keeps the tool from running', async () => {
  const run = await ask(Q_UNREGISTER);
  const approval = run.locator('.card.approval');
  await approval.waitFor();
  assert.match(await approval.locator('h3').textContent(), /catalog_unregister_entity/);
  await approval.getByRole('button', { name: 'Deny' }).click();
  await approval.and(page.locator('[data-state="denied"]')).waitFor();
  await run.locator('.answer', { hasText: 'You denied it' }).waitFor();
  assert.equal(await run.locator('.card.tool').count(), 0, 'a denied call never starts');
  await screenshot('approval-denied');
});

test('a conversation opened again shows its tool cards, approvals and answers from the stored events', async () => {
  const title = await page.locator('#chat-title').textContent();
  await page.reload();
  await page.getByRole('heading', { name: 'New conversation' }).waitFor();
  await page.getByRole('button', { name: title }).click();
  const runs = page.locator('li.run');
  await runs.nth(2).locator('.answer', { hasText: 'You denied it' }).waitFor();
  assert.equal(await runs.count(), 3);
  assert.equal(await page.locator('.message.user').count(), 3);
  const slow = runs.nth(0).locator('.card.tool');
  assert.equal(await slow.getAttribute('data-state'), 'finished');
  assert.equal(await slow.locator('.tool-name').textContent(), 'trigger-long-running-operation');
  assert.match(await runs.nth(0).locator('.answer').textContent(), /three steps/);
  assert.equal(await runs.nth(1).locator('.card.approval').getAttribute('data-state'), 'approved');
  assert.equal(await runs.nth(1).locator('.card.tool[data-tool="catalog_register_entity"]').count(), 1);
  assert.equal(await runs.nth(2).locator('.card.approval').getAttribute('data-state'), 'denied');
  assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0, 'answered questions are not asked again');
  await screenshot('conversation-reopened');
});

test('a server behind the OIDC provider shows Connect, and the run resumes after the popup', async () => {
  await page.getByRole('button', { name: 'MCP Servers' }).click();
  const dialog = page.getByRole('dialog', { name: 'MCP Servers' });
  await dialog.getByRole('button', { name: 'Add server' }).click();
  await dialog.getByRole('button', { name: 'Add Corp notes' }).click();
  const enabledCorp = dialog.locator('#enabled-servers li[data-ref="api:default/corp-notes"]');
  await enabledCorp.waitFor();
  assert.match(await enabledCorp.textContent(), /Sign-in to corp needed/);
  await dialog.getByRole('button', { name: 'Close' }).click();
  await dialog.waitFor({ state: 'detached' });

  const run = await ask(Q_CORP);
  const connect = run.locator('.card.connect');
  await connect.waitFor();
  await screenshot('connect-card');
  const [popup] = await Promise.all([
    page.waitForEvent('popup'),
    connect.getByRole('button', { name: 'Connect corp' }).click(),
  ]);
  // oidc-provider's login form (any login and password), then its consent form.
  await providerLogin(popup, 'guest', 'provider-login');
  await connect.and(page.locator('[data-state="connected"]')).waitFor();
  await run.locator('.answer', { hasText: 'Connected to corp: the notes are ready.' }).waitFor();
  await screenshot('connect-resumed');
});

test('the catalog page shows availability, transport, auth, validation errors and the JSON', async () => {
  await page.getByRole('link', { name: 'MCP catalog' }).click();
  await page.getByRole('heading', { name: 'MCP servers in the catalog' }).waitFor();
  const everythingItem = page.locator('li.entity[data-ref="api:default/everything"]');
  await everythingItem.waitFor();
  assert.match(await everythingItem.textContent(), /Available/);
  assert.match(await everythingItem.locator('.transport').textContent(), /streamable-http http:\/\/127\.0\.0\.1:\d+\/mcp/);
  const retired = page.locator('li.entity[data-ref="api:default/retired"]');
  assert.match(await retired.locator('.reason').textContent(), /lifecycle/);
  const broken = page.locator('li.entity[data-ref="api:default/broken"]');
  assert.match(await broken.textContent(), /Unavailable/);
  assert.ok(await broken.locator('.validation li').count() > 0, 'validation errors are listed');
  await broken.getByRole('link', { name: /Entity JSON/ }).click();
  await broken.locator('pre.entity-json', { hasText: '"apiVersion"' }).waitFor();
  assert.equal(await broken.getByRole('link', { name: /Entity JSON/ }).getAttribute('href'),
    '/api/catalog/entities/by-name/api/default/broken');
  await screenshot('catalog');
});

async function noHorizontalScroll() {
  return page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);
}

test('no layout break at 360 px and readable at 400% zoom', async () => {
  await page.setViewportSize({ width: 360, height: 800 });
  assert.ok(await noHorizontalScroll(), 'the catalog fits 360 px');
  await page.getByRole('link', { name: 'Chat' }).click();
  await page.getByRole('button', { name: 'MCP Servers' }).waitFor();
  assert.ok(await noHorizontalScroll(), 'the chat fits 360 px');
  await screenshot('chat-360px');
  // 400% zoom of a 1280 × 1024 window is a 320 × 256 CSS pixel viewport.
  await page.setViewportSize({ width: 320, height: 256 });
  assert.ok(await noHorizontalScroll(), 'the chat fits at 400% zoom');
  await page.getByRole('button', { name: 'MCP Servers' }).click();
  const dialog = page.getByRole('dialog', { name: 'MCP Servers' });
  await dialog.getByText('Portal Actions').waitFor();
  assert.ok(await noHorizontalScroll(), 'the dialog fits at 400% zoom');
  await screenshot('servers-400pct');
  await page.keyboard.press('Escape');
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('signs out, then signs in through an OAuth provider in a popup and stays signed in', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  // Forget the provider's own login (the corp step signed in there as guest), as a new browser.
  await context.clearCookies();
  const sso = page.getByRole('button', { name: 'Sign in with sso' });
  await sso.waitFor();
  const [popup] = await Promise.all([page.waitForEvent('popup'), sso.click()]);
  await providerLogin(popup, 'dana');
  await page.getByRole('heading', { name: 'New conversation' }).waitFor();
  assert.equal(await page.locator('#account-name').textContent(), 'Dana Test');
  // Dana sees none of the guest's conversations.
  assert.equal(await page.locator('.conversation').count(), 0);
  await page.reload();
  await page.getByRole('heading', { name: 'New conversation' }).waitFor();
  assert.equal(await page.locator('#account-name').textContent(), 'Dana Test');
  await screenshot('signed-in-with-sso');
});

test('run events resume after Last-Event-ID; the SSE parser copes with any chunking', async () => {
  // Dana asks something; then the stream is read again from the middle, as after a dropped
  // connection, through the UI's own reader.
  const run = await ask(Q_SLOW);
  await run.locator('.answer', { hasText: 'The slow operation took three steps and finished.' }).waitFor();
  const runId = await run.getAttribute('data-run-id');
  const result = await page.evaluate(async (id) => {
    const { runEvents, SseParser } = await import('/js/api.js');
    const all = [];
    for await (const e of runEvents(id)) all.push([e.id, e.type]);
    const middle = all[Math.floor(all.length / 2)][0];
    const rest = [];
    for await (const e of runEvents(id, { lastEventId: middle })) rest.push([e.id, e.type]);
    // One text cut at every position, with CRLF line ends, a comment and a two-line data field.
    const text = ': keep-alive\r\nid: 7\r\nevent: message.delta\r\ndata: {"type":"message.delta",\r\ndata: "text":"a\\u00e9"}\r\n\r\nid: 8\ndata: {"type":"run.completed"}\n\n';
    const splits = [];
    for (let cut = 0; cut <= text.length; cut += 1) {
      const p = new SseParser();
      splits.push(JSON.stringify([...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))]));
    }
    return { all, middle, rest, splits: [...new Set(splits)] };
  }, runId);
  const types = result.all.map(([, t]) => t);
  assert.equal(types[0], 'run.started');
  assert.equal(types.at(-1), 'run.completed');
  assert.ok(types.includes('tool.completed'));
  assert.deepEqual(result.rest, result.all.filter(([id]) => id > result.middle),
    'exactly the events after Last-Event-ID, none missed or repeated');
  assert.equal(result.splits.length, 1, 'every chunking gives the same events');
  assert.deepEqual(JSON.parse(result.splits[0]), [
    { id: '7', event: 'message.delta', data: '{"type":"message.delta",\n"text":"a\\u00e9"}' },
    { id: '8', event: 'message', data: '{"type":"run.completed"}' },
  ]);
});
