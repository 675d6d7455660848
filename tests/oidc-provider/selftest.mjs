// Smoke check of server.mjs: replays, with fetch, manual redirects and a small cookie jar, the
// hops a Portico test makes (authorization request, devInteractions login and consent forms,
// code exchange, userinfo, refresh with rotation, reuse detection, revocation) and checks the
// /__test endpoints and the secrets file.
//
// Uses the provider that scripts/lib/oidc-provider.sh started (PORTICO_TEST_OIDC_ISSUER,
// PORTICO_TEST_OIDC_CLIENT_SECRET, PORTICO_TEST_OIDC_SECRETS_FILE; its counters are reset), or
// else starts server.mjs itself on PORTICO_OIDC_PORT (default 38119).
// Run with the Node from install_mcp_peers: "$PORTICO_MCP_NODE" tests/oidc-provider/selftest.mjs

import { spawn } from 'node:child_process';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const random = () => b64url(randomBytes(32));
const short = (s) => (typeof s === 'string' && s.length > 24 ? `${s.slice(0, 12)}…(${s.length} chars)` : s);

let failures = 0;
let passes = 0;
function check(cond, what) {
  if (cond) {
    passes += 1;
    console.log(`  ok: ${what}`);
  } else {
    failures += 1;
    console.log(`  FAILED: ${what}`);
  }
}

let issuer = process.env.PORTICO_TEST_OIDC_ISSUER;
let clientSecret = process.env.PORTICO_TEST_OIDC_CLIENT_SECRET;
let secretsFile = process.env.PORTICO_TEST_OIDC_SECRETS_FILE;
let child;
if (!issuer) {
  const port = process.env.PORTICO_OIDC_PORT || '38119';
  const dir = mkdtempSync(join(tmpdir(), 'portico-oidc-selftest.'));
  clientSecret = randomBytes(24).toString('hex');
  secretsFile = join(dir, 'secrets');
  issuer = `http://127.0.0.1:${port}`;
  child = spawn(process.execPath, [new URL('./server.mjs', import.meta.url).pathname], {
    env: { ...process.env, PORT: port, OIDC_CLIENT_SECRET: clientSecret, OIDC_SECRETS_FILE: secretsFile },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  for (let i = 0; ; i += 1) {
    try {
      if ((await fetch(`${issuer}/.well-known/openid-configuration`)).ok) break;
    } catch { /* not up yet */ }
    if (i > 100) throw new Error('server.mjs did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}
process.on('exit', () => child?.kill());

const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
console.log(`discovery: issuer=${discovery.issuer} authorization=${discovery.authorization_endpoint} token=${discovery.token_endpoint} userinfo=${discovery.userinfo_endpoint} revocation=${discovery.revocation_endpoint}`);
check(discovery.issuer === issuer, 'discovery issuer');

// A cookie jar that honours Path and deletion (Max-Age=0 / past Expires).
class Jar {
  cookies = new Map(); // `${name};${path}` -> { name, value, path }

  store(res, url) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = new URL(url).pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = false;
      for (const attr of attrs) {
        const [k, v] = attr.split('=');
        if (k.toLowerCase() === 'path') path = v;
        if (k.toLowerCase() === 'expires' && Date.parse(v) < Date.now()) expired = true;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      }
      const key = `${name};${path}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path });
      console.log(`    set-cookie ${name} path=${path}${expired ? ' (deleted)' : ''} attrs=[${attrs.filter((a) => !/^expires/i.test(a)).join('; ')}]`);
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    return [...this.cookies.values()]
      .filter((c) => pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

async function hop(jar, method, url, body) {
  const headers = { cookie: jar.header(url), accept: 'text/html' };
  if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
  const res = await fetch(url, { method, headers, body, redirect: 'manual' });
  const location = res.headers.get('location');
  console.log(`  ${method} ${url.replace(issuer, '')}${body ? ` body=${body.replace(/password=[^&]*/, 'password=…')}` : ''} -> ${res.status}${location ? ` Location: ${location}` : ''}`);
  jar.store(res, url);
  return { res, location: location && new URL(location, url).href, text: await res.text() };
}

const decodeHtml = (s) => s.replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
  .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
  .replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const attr = (tag, name) => {
  const m = tag.match(new RegExp(`\\s${name}="([^"]*)"`));
  return m ? decodeHtml(m[1]) : undefined;
};

function parseForm(html) {
  const forms = [...html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/g)].map((m) => m[0]);
  check(forms.length === 1, `page has exactly one form (${forms.length})`);
  const form = forms[0];
  const open = form.match(/<form\b[^>]*>/)[0];
  const inputs = [...form.matchAll(/<input\b[^>]*>/g)].map((m) => ({
    type: attr(m[0], 'type'), name: attr(m[0], 'name'), value: attr(m[0], 'value'),
  }));
  const buttons = [...form.matchAll(/<button\b[^>]*>([\s\S]*?)<\/button>/g)].map((m) => ({
    type: attr(m[0], 'type'), name: attr(m[0], 'name'), value: attr(m[0], 'value'), text: m[1].trim(),
  }));
  const parsed = { action: attr(open, 'action'), method: attr(open, 'method'), inputs, buttons };
  console.log(`    form: ${JSON.stringify(parsed)}`);
  return parsed;
}

// The whole browser part of an authorization code flow; returns the code and the PKCE verifier.
async function authorize({ clientId, login, scope, redirectUri }) {
  const jar = new Jar();
  const verifier = random();
  const state = random();
  const nonce = random();
  const auth = new URL(discovery.authorization_endpoint);
  auth.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
  });
  let step = await hop(jar, 'GET', auth.href);
  const prompts = [];
  for (let i = 0; i < 10 && !step.location?.startsWith(redirectUri); i += 1) {
    check([302, 303].includes(step.res.status) && step.location, 'redirect from the authorization endpoint');
    step = await hop(jar, 'GET', step.location);
    check(step.res.status === 200, 'interaction page 200');
    const form = parseForm(step.text);
    const prompt = form.inputs.find((x) => x.name === 'prompt')?.value;
    prompts.push(prompt);
    const fields = new URLSearchParams({ prompt });
    if (prompt === 'login') {
      fields.set('login', login);
      fields.set('password', 'x');
    }
    step = await hop(jar, 'POST', new URL(form.action, step.res.url || issuer).href, fields.toString());
    check([302, 303].includes(step.res.status), `${prompt} form submit redirects`);
    step = await hop(jar, 'GET', step.location);
  }
  check(prompts.join(',') === 'login,consent', `prompts were login then consent (${prompts})`);
  const cb = new URL(step.location);
  check(cb.origin + cb.pathname === redirectUri, `final redirect to redirect_uri (${cb.origin}${cb.pathname})`);
  check(cb.searchParams.get('state') === state, 'state returned');
  check(cb.searchParams.get('iss') === issuer, `iss returned (${cb.searchParams.get('iss')})`);
  const code = cb.searchParams.get('code');
  check(Boolean(code), `code returned (${short(code)})`);
  return { code, verifier, nonce, jar };
}

const basic = (id) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
async function tokenRequest(clientId, params, { secret = clientSecret, endpoint = discovery.token_endpoint } = {}) {
  const body = new URLSearchParams(params);
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (clientId === 'portico-post') {
    body.set('client_id', clientId);
    body.set('client_secret', secret);
  } else {
    headers.authorization = secret === clientSecret
      ? basic(clientId)
      : `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`;
  }
  const res = await fetch(endpoint, { method: 'POST', headers, body });
  const text = await res.text();
  const json = text ? JSON.parse(text) : {};
  const shown = Object.fromEntries(Object.entries(json).map(([k, v]) => [k, short(v)]));
  console.log(`  POST ${endpoint.replace(issuer, '')} ${params.grant_type ?? `token=${short(params.token)}`} -> ${res.status} ${JSON.stringify(shown)}`);
  return { status: res.status, json };
}

const issued = [];
function remember(...values) {
  issued.push(...values.filter(Boolean));
}

async function checkIdToken(idToken, nonce, sub, clientId) {
  const [h, p, s] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const payload = JSON.parse(Buffer.from(p, 'base64url'));
  const jwks = await (await fetch(discovery.jwks_uri)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  const ok = Boolean(jwk) && verify('sha256', Buffer.from(`${h}.${p}`), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
  console.log(`    id_token header=${JSON.stringify(header)} payload=${JSON.stringify(payload)}`);
  check(header.alg === 'RS256' && ok, 'id_token RS256 signature verifies with the jwks');
  check(payload.iss === issuer && payload.aud === clientId && payload.sub === sub && payload.nonce === nonce, 'id_token iss, aud, sub, nonce');
}

async function userinfo(accessToken) {
  const res = await fetch(discovery.userinfo_endpoint, { headers: { authorization: `Bearer ${accessToken}` } });
  const text = await res.text();
  console.log(`  GET /me -> ${res.status} ${text}${res.headers.get('www-authenticate') ? ` WWW-Authenticate: ${res.headers.get('www-authenticate')}` : ''}`);
  return { status: res.status, json: text ? JSON.parse(text) : {} };
}

const post = (path) => fetch(`${issuer}${path}`, { method: 'POST' }).then((r) => r.json());
await post('/__test/reset');

// 1. alice, client_secret_basic: code flow, userinfo, refresh rotation, reuse detection.
console.log('\n1. alice via `portico` (client_secret_basic), redirect_uri http://127.0.0.1:9/cb');
{
  const redirectUri = 'http://127.0.0.1:9/cb';
  const { code, verifier, nonce } = await authorize({
    clientId: 'portico', login: 'alice', scope: 'openid email profile offline_access mcp:read', redirectUri,
  });
  const t = await tokenRequest('portico', { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier });
  remember(code, t.json.access_token, t.json.refresh_token, t.json.id_token);
  check(t.status === 200 && t.json.token_type === 'Bearer', 'code exchange 200, Bearer');
  check(t.json.access_token && t.json.refresh_token && t.json.id_token, 'access_token, refresh_token, id_token present');
  check(t.json.scope === 'openid email profile mcp:read', `scope "${t.json.scope}" (offline_access dropped without prompt=consent)`);
  check(t.json.expires_in > 0 && t.json.expires_in <= 3600, `expires_in ${t.json.expires_in}`);
  await checkIdToken(t.json.id_token, nonce, 'alice', 'portico');
  const u = await userinfo(t.json.access_token);
  check(u.status === 200 && u.json.sub === 'alice' && u.json.email === 'alice@example.com' && u.json.email_verified === true
    && u.json.name === 'Alice Test' && u.json.preferred_username === 'alice' && u.json.picture, 'userinfo claims');

  const r1 = await tokenRequest('portico', { grant_type: 'refresh_token', refresh_token: t.json.refresh_token });
  remember(r1.json.access_token, r1.json.refresh_token, r1.json.id_token);
  check(r1.status === 200 && r1.json.refresh_token && r1.json.refresh_token !== t.json.refresh_token, 'refresh 200, rotated refresh token');
  check(r1.json.access_token !== t.json.access_token && r1.json.scope === t.json.scope, 'new access token, same scope');
  check((await userinfo(r1.json.access_token)).status === 200, 'new access token works at userinfo');

  const reuse = await tokenRequest('portico', { grant_type: 'refresh_token', refresh_token: t.json.refresh_token });
  check(reuse.status === 400 && reuse.json.error === 'invalid_grant', 'reusing the rotated refresh token: 400 invalid_grant');
  const after = await tokenRequest('portico', { grant_type: 'refresh_token', refresh_token: r1.json.refresh_token });
  check(after.status === 400 && after.json.error === 'invalid_grant', 'reuse detection revoked the grant: the newest refresh token is invalid_grant too');
  check((await userinfo(r1.json.access_token)).status === 401, 'and its access token is rejected at userinfo (401)');
}

// 2. bob, client_secret_post, localhost redirect: an unknown scope, then a provider-side revocation.
console.log('\n2. bob via `portico-post` (client_secret_post), redirect_uri http://localhost:4567/auth/callback');
{
  const redirectUri = 'http://localhost:4567/auth/callback';
  const { code, verifier, nonce } = await authorize({
    clientId: 'portico-post', login: 'bob', scope: 'openid mcp:write no.such.scope', redirectUri,
  });
  const t = await tokenRequest('portico-post', { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier });
  remember(code, t.json.access_token, t.json.refresh_token, t.json.id_token);
  check(t.status === 200 && t.json.refresh_token, 'code exchange 200 with a refresh token without offline_access');
  check(t.json.scope === 'openid mcp:write', `unknown scope not granted (scope "${t.json.scope}")`);
  await checkIdToken(t.json.id_token, nonce, 'bob', 'portico-post');
  const u = await userinfo(t.json.access_token);
  check(u.status === 200 && u.json.sub === 'bob' && u.json.email === undefined, 'userinfo: only sub without email/profile scopes');
  const r1 = await tokenRequest('portico-post', { grant_type: 'refresh_token', refresh_token: t.json.refresh_token });
  remember(r1.json.access_token, r1.json.refresh_token, r1.json.id_token);
  check(r1.status === 200, 'refresh 200');
  const revoked = await post('/__test/revoke-grants?sub=bob');
  console.log(`  POST /__test/revoke-grants?sub=bob -> ${JSON.stringify(revoked)}`);
  check(revoked.grants === 1, 'one grant revoked');
  const r2 = await tokenRequest('portico-post', { grant_type: 'refresh_token', refresh_token: r1.json.refresh_token });
  check(r2.status === 400 && r2.json.error === 'invalid_grant', 'refresh after provider-side revocation: 400 invalid_grant');
  check((await userinfo(r1.json.access_token)).status === 401, 'access token rejected at userinfo after revocation (401)');
}

// 3. carol: wrong secret, RFC 7009 revocation, code reuse; rejected requests at /auth.
console.log('\n3. carol via `portico`: wrong client secret, revocation endpoint, code reuse');
{
  const redirectUri = 'http://127.0.0.1:38999/oauth/callback';
  const { code, verifier } = await authorize({ clientId: 'portico', login: 'carol', scope: 'openid repo read:user okta.users.read', redirectUri });
  const bad = await tokenRequest('portico', { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }, { secret: 'wrong' });
  check(bad.status === 401 && bad.json.error === 'invalid_client', 'wrong client secret: 401 invalid_client');
  const t = await tokenRequest('portico', { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier });
  remember(code, t.json.access_token, t.json.refresh_token, t.json.id_token);
  check(t.status === 200 && t.json.scope === 'openid repo read:user okta.users.read', `custom scopes granted ("${t.json.scope}")`);
  const rev = await tokenRequest('portico', { token: t.json.refresh_token, token_type_hint: 'refresh_token' }, { endpoint: discovery.revocation_endpoint });
  check(rev.status === 200, 'revocation endpoint 200');
  const r = await tokenRequest('portico', { grant_type: 'refresh_token', refresh_token: t.json.refresh_token });
  check(r.status === 400 && r.json.error === 'invalid_grant', 'revoked refresh token: 400 invalid_grant');
  const again = await tokenRequest('portico', { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier });
  check(again.status === 400 && again.json.error === 'invalid_grant', 'reused code: 400 invalid_grant');

  const base = {
    response_type: 'code', client_id: 'portico', scope: 'openid', state: 's',
    code_challenge: b64url(createHash('sha256').update('v'.repeat(43)).digest()), code_challenge_method: 'S256',
  };
  const jar = new Jar();
  const evil = await hop(jar, 'GET', `${discovery.authorization_endpoint}?${new URLSearchParams({ ...base, redirect_uri: 'http://example.com:8080/cb' })}`);
  check(evil.res.status === 400 && evil.text.includes('invalid_redirect_uri'), 'non-loopback redirect_uri: 400 invalid_redirect_uri, no redirect');
  const noPort = await hop(jar, 'GET', `${discovery.authorization_endpoint}?${new URLSearchParams({ ...base, redirect_uri: 'http://127.0.0.1/cb' })}`);
  check(noPort.res.status === 400, 'loopback redirect_uri without a port: 400');
  const { code_challenge: _c, code_challenge_method: _m, ...noPkce } = base;
  const np = await hop(jar, 'GET', `${discovery.authorization_endpoint}?${new URLSearchParams({ ...noPkce, redirect_uri: 'http://127.0.0.1:9/cb' })}`);
  check(np.res.status === 303 && new URL(np.location).searchParams.get('error') === 'invalid_request', 'no PKCE: redirected back with error=invalid_request');
  const plain = await hop(jar, 'GET', `${discovery.authorization_endpoint}?${new URLSearchParams({ ...base, code_challenge_method: 'plain', redirect_uri: 'http://127.0.0.1:9/cb' })}`);
  check(new URL(plain.location).searchParams.get('error') === 'invalid_request', 'code_challenge_method=plain: error=invalid_request');
}

console.log('\nstats');
const stats = await (await fetch(`${issuer}/__test/stats`)).json();
console.log(`  GET /__test/stats -> ${JSON.stringify(stats)}`);
check(stats.token.authorization_code === 5, 'authorization_code requests: 3 good, 1 wrong secret, 1 reused code');
check(stats.token.refresh_token === 6, 'refresh_token requests: 6 (2 good, 4 rejected), each counted once');
check(stats.tokenErrors.invalid_grant === 5 && stats.tokenErrors.invalid_client === 1, 'tokenErrors: 5 invalid_grant, 1 invalid_client');
check(stats.revocations === 1, 'revocations: 1');
const reset = await post('/__test/reset');
check(reset.token.refresh_token === 0 && reset.revocations === 0, 'reset zeroes the counters');

console.log('\nsecrets file');
if (secretsFile) {
  const recorded = new Set(readFileSync(secretsFile, 'utf8').split('\n').filter(Boolean));
  console.log(`  ${secretsFile}: ${recorded.size} distinct values; ${issued.length} issued in this run`);
  check(recorded.has(clientSecret), 'client secret recorded');
  const missing = issued.filter((v) => !recorded.has(v));
  check(missing.length === 0, `every code, access, refresh and id token recorded verbatim (${missing.length} missing)`);
} else {
  check(false, 'no secrets file');
}

console.log(`\n${passes} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
