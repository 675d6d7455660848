// A real OAuth 2.0 / OpenID Connect provider (panva's oidc-provider, pinned in package.json) for
// Portico's auth tests, on 127.0.0.1 only. Started by scripts/lib/oidc-provider.sh; configured
// from the environment:
//   PORT                    port to listen on; the issuer is http://127.0.0.1:$PORT (required)
//   OIDC_CLIENT_SECRET      secret of the clients `portico` (client_secret_basic) and
//                           `portico-post` (client_secret_post) (required)
//   OIDC_ACCESS_TOKEN_TTL   access token lifetime in seconds (default 3600)
//   OIDC_EXTRA_SCOPES       more scopes to support, space separated
//   OIDC_SECRETS_FILE       if set, every client secret, authorization code, access token,
//                           refresh token and id token is appended to it, one per line, so a test
//                           can scan captured logs for leaked secrets
//
// Behaviour the tests rely on (checked by selftest.mjs against the pinned version):
// - Login and consent are oidc-provider's devInteractions forms: any login and password are
//   accepted and the account id is the login.
// - PKCE (S256 only; this version rejects any other code_challenge_method) is required for
//   every authorization request.
// - Scopes that are not in the supported list are silently dropped: they are never shown at
//   consent nor granted, and the token response's `scope` leaves them out.
// - offline_access is dropped by oidc-provider unless the request also has prompt=consent
//   (OpenID Connect Core 11); refresh tokens are issued on every authorization_code grant anyway
//   (issueRefreshToken below) and do not end with the provider-side login session.
// - Refresh tokens rotate on every use. Presenting a rotated (consumed) refresh token again
//   gives invalid_grant ("refresh token already used") AND revokes the whole grant: every token
//   of that grant, including the newest refresh token, stops working (reuse detection).
// - Revoking a refresh token or an access token at /token/revocation revokes every token of
//   its grant as well.
//
// Test endpoints on the same port, answered before oidc-provider sees the request:
//   GET  /__test/stats   {"token": {"authorization_code": n, "refresh_token": n, ...},
//                         "tokenErrors": {"invalid_grant": n, ...}, "revocations": n,
//                         "revocationErrors": {...}, "userinfo": n}
//   POST /__test/reset   zeroes the counters
//   POST /__test/revoke-grants?sub=LOGIN[&client_id=ID]
//                        destroys every grant of that account (and all its codes, access and
//                        refresh tokens), as if the user revoked access at the provider;
//                        answers {"grants": n, "tokens": n}

import { appendFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

// Drop the one notice that is the point of this server: it uses the development-only login and
// consent forms. Every other warning is kept.
for (const level of ['warn', 'info']) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    if (typeof args[0] === 'string' && args[0].includes('devInteractions is enabled')) return;
    original(...args);
  };
}

const { default: Provider, errors } = await import('oidc-provider');
const { version } = createRequire(import.meta.url)('oidc-provider/package.json');

const port = Number.parseInt(process.env.PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('PORT must be set to a TCP port');
  process.exit(2);
}
const clientSecret = process.env.OIDC_CLIENT_SECRET;
if (!clientSecret) {
  console.error('OIDC_CLIENT_SECRET must be set');
  process.exit(2);
}
const accessTokenTTL = Number.parseInt(process.env.OIDC_ACCESS_TOKEN_TTL || '3600', 10);
if (!Number.isInteger(accessTokenTTL) || accessTokenTTL <= 0) {
  console.error('OIDC_ACCESS_TOKEN_TTL must be a positive number of seconds');
  process.exit(2);
}
const secretsFile = process.env.OIDC_SECRETS_FILE || undefined;
const issuer = `http://127.0.0.1:${port}`;

const scopes = [...new Set([
  'openid', 'offline_access', 'email', 'profile',
  'mcp:read', 'mcp:write', 'read:user', 'repo', 'okta.users.read',
  ...(process.env.OIDC_EXTRA_SCOPES ?? '').split(/\s+/).filter(Boolean),
])];

function recordSecret(value) {
  if (secretsFile && typeof value === 'string' && value) {
    appendFileSync(secretsFile, `${value}\n`, { mode: 0o600 });
  }
}
recordSecret(clientSecret);

// Storage: an unbounded in-memory adapter. oidc-provider's own memory adapter is an LRU of 1000
// entries, which a long test run could overflow (silently losing grants); this one also lets
// /__test/revoke-grants find an account's grants.
const store = new Map(); // `${model}:${id}` -> { payload, expiresAt }
const grantMembers = new Map(); // grantId -> Set of store keys of codes and tokens of that grant
const epoch = () => Math.floor(Date.now() / 1000);

function storeGet(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    storeDelete(key);
    return undefined;
  }
  return entry.payload;
}

function storeDelete(key) {
  const entry = store.get(key);
  store.delete(key);
  const grantId = entry?.payload?.grantId;
  if (grantId && !key.startsWith('Grant:') && grantMembers.has(grantId)) {
    grantMembers.get(grantId).delete(key);
    if (grantMembers.get(grantId).size === 0) grantMembers.delete(grantId);
  }
}

function revokeGrant(grantId) {
  let tokens = 0;
  for (const key of grantMembers.get(grantId) ?? []) {
    if (store.delete(key)) tokens += 1;
  }
  grantMembers.delete(grantId);
  store.delete(`Grant:${grantId}`);
  return tokens;
}

setInterval(() => {
  for (const key of [...store.keys()]) storeGet(key);
}, 60_000).unref();

class TestAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    // Keep entries a little past their expiry: oidc-provider checks expiry itself (with clock
    // tolerance), this is only garbage collection.
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + (expiresIn + 60) * 1000 : undefined;
    store.set(key, { payload, expiresAt });
    if (payload.grantId && this.model !== 'Grant') {
      if (!grantMembers.has(payload.grantId)) grantMembers.set(payload.grantId, new Set());
      grantMembers.get(payload.grantId).add(key);
    }
  }

  async find(id) {
    return storeGet(this.key(id));
  }

  async findByUid(uid) {
    for (const key of store.keys()) {
      if (key.startsWith(`${this.model}:`) && storeGet(key)?.uid === uid) return storeGet(key);
    }
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const key of store.keys()) {
      if (key.startsWith(`${this.model}:`) && storeGet(key)?.userCode === userCode) return storeGet(key);
    }
    return undefined;
  }

  async consume(id) {
    const payload = storeGet(this.key(id));
    if (payload) payload.consumed = epoch();
  }

  async destroy(id) {
    storeDelete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of [...(grantMembers.get(grantId) ?? [])]) {
      if (key.startsWith(`${this.model}:`)) storeDelete(key);
    }
  }
}

// One RS256 signing key per run (instead of oidc-provider's development keys).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };

const htmlEscape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const capitalized = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

const clientDefaults = {
  client_secret: clientSecret,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  // Placeholders: any loopback redirect URI is accepted, see redirectUriAllowed below.
  redirect_uris: ['http://127.0.0.1/callback'],
  post_logout_redirect_uris: ['http://127.0.0.1/logged-out'],
  id_token_signed_response_alg: 'RS256',
};
const testClients = new Set(['portico', 'portico-post']);

const provider = new Provider(issuer, {
  adapter: TestAdapter,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  clients: [
    { ...clientDefaults, client_id: 'portico', token_endpoint_auth_method: 'client_secret_basic' },
    { ...clientDefaults, client_id: 'portico-post', token_endpoint_auth_method: 'client_secret_post' },
  ],
  scopes,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'picture'],
  },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: `${sub}@example.com`,
          email_verified: true,
          name: `${capitalized(sub)} Test`,
          preferred_username: sub,
          picture: `https://example.com/avatars/${encodeURIComponent(sub)}.png`,
        };
      },
    };
  },
  // ID tokens carry the scopes' claims (email, name …) as identity-aware proxies' assertions do
  // (Google IAP, Cloudflare Access), so the proxy sign-in tests can present one.
  conformIdTokenClaims: false,
  // Expiry is exact: no 15 s grace for access tokens, codes and refresh tokens.
  clockTolerance: 0,
  responseTypes: ['code'],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  allowOmittingSingleRegisteredRedirectUri: false,
  pkce: { required: () => true },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  expiresWithSession: async () => false,
  clientBasedCORS: () => false,
  ttl: {
    AccessToken: accessTokenTTL,
    AuthorizationCode: 120,
    IdToken: 3600,
    RefreshToken: 24 * 60 * 60,
    Interaction: 60 * 60,
    Session: 7 * 24 * 60 * 60,
    Grant: 7 * 24 * 60 * 60,
  },
  features: {
    devInteractions: { enabled: true },
    dPoP: { enabled: false },
    userinfo: { enabled: true },
    revocation: {
      enabled: true,
      async allowedPolicy(ctx, client, token) {
        if (token.clientId !== client.clientId) {
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
        }
        return true;
      },
    },
    introspection: {
      enabled: true,
      async allowedPolicy() {
        return true;
      },
    },
    rpInitiatedLogout: { enabled: false },
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><head><title>error</title></head><body>${Object.entries(out)
      .map(([key, value]) => `<pre><strong>${htmlEscape(key)}</strong>: ${htmlEscape(value)}</pre>`)
      .join('')}</body></html>`;
  },
});

// Any http://127.0.0.1:PORT/PATH or http://localhost:PORT/PATH redirect URI (Portico's test
// instances listen on random ports), for the test clients. The pinned version decides with
// Client#redirectUriAllowed at the authorization endpoint; the token endpoint then requires the
// same redirect_uri as the authorization request.
function loopbackUri(value) {
  if (typeof value !== 'string') return false;
  const url = URL.parse(value);
  return Boolean(url)
    && url.protocol === 'http:'
    && (url.hostname === '127.0.0.1' || url.hostname === 'localhost')
    && url.port !== ''
    && url.username === '' && url.password === ''
    && url.hash === '' && !value.includes('#')
    && url.href === value;
}
const { redirectUriAllowed, postLogoutRedirectUriAllowed } = provider.Client.prototype;
provider.Client.prototype.redirectUriAllowed = function allowed(value) {
  if (testClients.has(this.clientId)) return loopbackUri(value);
  return redirectUriAllowed.call(this, value);
};
provider.Client.prototype.postLogoutRedirectUriAllowed = function allowed(value) {
  if (testClients.has(this.clientId)) return loopbackUri(value);
  return postLogoutRedirectUriAllowed.call(this, value);
};

// Counters.
function freshStats() {
  return {
    token: { authorization_code: 0, refresh_token: 0 },
    tokenErrors: {},
    revocations: 0,
    revocationErrors: {},
    userinfo: 0,
  };
}
let stats = freshStats();
const bump = (map, key) => { map[key] = (map[key] ?? 0) + 1; };
// Each token endpoint request ends in exactly one of grant.success, grant.error or (for an
// internal error) server_error.
const grantTypeOf = (ctx) => ctx.oidc?.params?.grant_type ?? 'unknown';
provider.on('grant.success', (ctx) => {
  bump(stats.token, grantTypeOf(ctx));
  recordSecret(ctx.body?.id_token);
});
provider.on('grant.error', (ctx, err) => {
  bump(stats.token, grantTypeOf(ctx));
  bump(stats.tokenErrors, err.error ?? 'unknown');
});
provider.on('server_error', (ctx, err) => {
  if (ctx.oidc?.route === 'token') {
    bump(stats.token, grantTypeOf(ctx));
    bump(stats.tokenErrors, 'server_error');
  }
  console.error(`server_error on ${ctx.method} ${ctx.path}: ${err?.message}`);
});
provider.on('revocation.error', (ctx, err) => bump(stats.revocationErrors, err.error ?? 'unknown'));

// Secrets: for opaque tokens and codes the value handed out is the model's jti.
for (const event of ['access_token.saved', 'refresh_token.saved', 'authorization_code.saved']) {
  provider.on(event, (token) => recordSecret(token.jti));
}

provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/__test/')) {
    await next();
    if (ctx.method === 'POST' && ctx.path === '/token/revocation' && ctx.status === 200) {
      stats.revocations += 1;
    }
    if (ctx.path === '/me') stats.userinfo += 1;
    return;
  }
  ctx.set('cache-control', 'no-store');
  if (ctx.method === 'GET' && ctx.path === '/__test/stats') {
    ctx.body = stats;
  } else if (ctx.method === 'POST' && ctx.path === '/__test/reset') {
    stats = freshStats();
    ctx.body = stats;
  } else if (ctx.method === 'POST' && ctx.path === '/__test/revoke-grants') {
    const { sub, client_id: clientId } = ctx.query;
    if (typeof sub !== 'string' || !sub) {
      ctx.status = 400;
      ctx.body = { error: 'sub query parameter required' };
      return;
    }
    let grants = 0;
    let tokens = 0;
    for (const key of [...store.keys()]) {
      if (!key.startsWith('Grant:')) continue;
      const grant = storeGet(key);
      if (grant?.accountId === sub && (clientId === undefined || grant.clientId === clientId)) {
        grants += 1;
        tokens += revokeGrant(key.slice('Grant:'.length));
      }
    }
    ctx.body = { grants, tokens };
  } else {
    ctx.status = 404;
    ctx.body = { error: 'not found' };
  }
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ${version} on ${issuer} (clients portico, portico-post; scopes ${scopes.join(' ')})`);
});
