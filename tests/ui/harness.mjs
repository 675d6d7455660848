// What the UI tests run against, all real and on loopback: `portico serve` (target/debug/portico,
// a fresh data directory and config), server-everything from tests/mcp-servers, the OIDC provider
// started by scripts/lib/oidc-provider.sh (PORTICO_TEST_OIDC_*), the scripted model, and Debian's
// chromium driven by playwright-core.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, writeFileSync, createWriteStream, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PORT_BASE = Number(process.env.UI_TEST_PORT_BASE ?? 39300);
let nextPort = PORT_BASE;

/** A free loopback port from UI_TEST_PORT_BASE (39300) on. */
export async function freePort() {
  for (; nextPort < PORT_BASE + 200; nextPort += 1) {
    const port = nextPort;
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) {
      nextPort += 1;
      return port;
    }
  }
  throw new Error(`no free port in ${PORT_BASE}..${PORT_BASE + 199}`);
}

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

async function waitFor(url, what, child, logFile) {
  for (let i = 0; i < 150; i += 1) {
    if (child && child.exitCode !== null) break;
    try {
      const r = await fetch(url);
      if (r.status < 500) return;
    } catch {
      // Not yet.
    }
    await sleep(200);
  }
  const log = logFile && existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
  throw new Error(`${what} did not start at ${url}\n${log}`);
}

function track(child, name) {
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal === null) console.error(`${name} exited with ${code}`);
  });
  return child;
}

/** The environment without PORTICO_* (configuration overrides for portico). */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PORTICO_')) env[k] = v;
  }
  return { ...env, ...extra };
}

/** The OIDC provider's coordinates; it must be running (scripts/test.sh starts it). */
export function oidcPeer() {
  const issuer = process.env.PORTICO_TEST_OIDC_ISSUER;
  const clientId = process.env.PORTICO_TEST_OIDC_CLIENT_ID;
  const clientSecret = process.env.PORTICO_TEST_OIDC_CLIENT_SECRET;
  if (!issuer || !clientId || !clientSecret) {
    throw new Error('PORTICO_TEST_OIDC_* is not set: run ./scripts/test.sh, or start the provider with '
      + "bash -c 'source scripts/lib/oidc-provider.sh; start_oidc_provider; npm test --prefix tests/ui'");
  }
  const clientIdPost = process.env.PORTICO_TEST_OIDC_CLIENT_ID_POST ?? 'portico-post';
  return { issuer, clientId, clientIdPost, clientSecret };
}

/** server-everything over streamable HTTP: the test script's, or one started here. */
export async function startEverything(dir) {
  if (process.env.PORTICO_TEST_MCP_EVERYTHING_HTTP) {
    return { url: process.env.PORTICO_TEST_MCP_EVERYTHING_HTTP, stop: async () => {} };
  }
  const peers = path.join(ROOT, 'tests/mcp-servers');
  const entry = path.join(peers, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
  if (!existsSync(entry)) {
    throw new Error('server-everything is not installed: npm ci --prefix tests/mcp-servers (scripts/test.sh does)');
  }
  const nodeBin = process.env.PORTICO_MCP_NODE
    ?? (existsSync(path.join(peers, 'node_modules/.bin/node')) ? path.join(peers, 'node_modules/.bin/node') : process.execPath);
  const port = await freePort();
  const logFile = path.join(dir, 'everything.log');
  const log = createWriteStream(logFile);
  const child = track(spawn(nodeBin, ['-r', './loopback.cjs', entry, 'streamableHttp'], {
    cwd: peers, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'],
  }), 'server-everything');
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const url = `http://127.0.0.1:${port}/mcp`;
  await waitFor(url, 'server-everything', child, logFile);
  return { url, stop: () => stop(child) };
}

async function stop(child) {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await Promise.race([new Promise((r) => { child.once('exit', r); }), sleep(5000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** The catalog the tests use: servers to add, one behind the OIDC provider, one retired, one broken. */
function catalogYaml(everythingUrl) {
  return `apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: everything
  title: Everything
  description: The MCP reference server, with slow operations and sums.
spec:
  type: mcp-server
  lifecycle: production
  owner: team-ui
  remotes: [{type: streamable-http, url: "${everythingUrl}"}]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: corp-notes
  title: Corp notes
  description: Notes behind the corporate sign-in.
  annotations:
    mcp.spotify.com/auth-api-id: corp
    mcp.spotify.com/auth-scopes: '["mcp:read"]'
spec:
  type: mcp-server
  lifecycle: production
  owner: team-ui
  remotes: [{type: streamable-http, url: "http://127.0.0.1:9/mcp"}]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: retired
  title: Retired server
  description: Kept for history only.
spec:
  type: mcp-server
  lifecycle: deprecated
  owner: team-ui
  remotes: [{type: streamable-http, url: "http://127.0.0.1:9/mcp"}]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: broken
  title: Broken server
  annotations:
    mcp.spotify.com/auth-api-id: corp
    mcp.spotify.com/auth-plugin-id: catalog
spec:
  type: mcp-server
  lifecycle: production
  owner: team-ui
  remotes: [{type: streamable-http, url: "http://127.0.0.1:9/mcp"}]
`;
}

/**
 * Starts `portico serve` with guest sign-in, the OIDC provider twice (`corp` only connects accounts,
 * `sso` signs users in), and the model.
 */
export async function startPortico({ dir, modelUrl, everythingUrl, oidc }) {
  const binary = path.join(ROOT, 'target/debug/portico');
  if (!existsSync(binary)) throw new Error(`${binary} is missing: cargo build -p portico`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const catalogDir = path.join(dir, 'catalog');
  mkdirSync(catalogDir, { recursive: true });
  writeFileSync(path.join(catalogDir, 'servers.yaml'), catalogYaml(everythingUrl));
  const config = path.join(dir, 'app-config.yaml');
  writeFileSync(config, `backend:
  baseUrl: ${url}
  listen: {host: 127.0.0.1, port: ${port}}
auth:
  providers:
    guest: {}
    corp:
      type: oidc
      metadataUrl: ${oidc.issuer}/.well-known/openid-configuration
      clientId: ${oidc.clientId}
      clientSecret: \${UI_TEST_OIDC_CLIENT_SECRET}
    sso:
      type: oidc
      metadataUrl: ${oidc.issuer}/.well-known/openid-configuration
      clientId: ${oidc.clientIdPost}
      clientSecret: \${UI_TEST_OIDC_CLIENT_SECRET}
      tokenEndpointAuthMethod: client_secret_post
      signIn:
        resolvers:
          - resolver: userEntityRefPattern
            pattern: 'user:default/{username}'
            dangerouslyAllowSignInWithoutUserInCatalog: true
catalog:
  locations: [{type: file, target: ${catalogDir}}]
assistant:
  model: {provider: openai, baseUrl: '${modelUrl}', model: scripted}
`);
  const logFile = path.join(dir, 'portico.log');
  const log = createWriteStream(logFile);
  const child = track(spawn(binary, ['serve', '--config', config, '--data-dir', path.join(dir, 'data')], {
    cwd: dir,
    env: cleanEnv({ UI_TEST_OIDC_CLIENT_SECRET: oidc.clientSecret, PORTICO_LOG: 'warn' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  }), 'portico serve');
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  await waitFor(`${url}/healthz`, 'portico serve', child, logFile);
  return { url, logFile, stop: () => stop(child) };
}

/** Debian's chromium, headless, with a fresh profile. */
export async function launchBrowser(dir) {
  const userDataDir = mkdtempSync(path.join(dir, 'chromium-'));
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.UI_TEST_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
}

/** A fresh temporary folder. */
export function tempDir() {
  return mkdtempSync(path.join(os.tmpdir(), 'portico-ui-'));
}
