// A loopback reverse proxy that adds `Authorization: Bearer $BEARER_PROXY_TOKEN` to every request
// and changes nothing else: any method, the path and query as sent, request and response bodies
// streamed both ways (long-lived SSE included), the client's own Host and Origin headers passed
// through as sent (so the upstream's DNS-rebinding checks judge what the client sent). Only
// hop-by-hop headers (Connection and the headers it names, Keep-Alive, Transfer-Encoding, ...)
// are dropped, as HTTP requires of a proxy. For clients that cannot send headers, such as the
// conformance suite in server mode.
//
//   BEARER_PROXY_TOKEN=... node bearer-proxy.mjs http://127.0.0.1:PORT [LISTEN_PORT]
//
// The target must be a loopback http:// URL; only its origin is used. The proxy listens on
// 127.0.0.1:LISTEN_PORT (default $BEARER_PROXY_PORT, else 0: a free port) and prints one line,
// `bearer-proxy listening on http://127.0.0.1:N`, when it is ready. It never prints the token.
import http from 'node:http';

const [targetArg, portArg] = process.argv.slice(2);
const token = process.env.BEARER_PROXY_TOKEN;
if (!targetArg || !token) {
  console.error('usage: BEARER_PROXY_TOKEN=... node bearer-proxy.mjs TARGET_URL [LISTEN_PORT]');
  process.exit(2);
}
const target = new URL(targetArg);
const loopback = ['127.0.0.1', 'localhost', '[::1]'];
if (target.protocol !== 'http:' || !loopback.includes(target.hostname)) {
  console.error(`bearer-proxy: the target must be http:// on a loopback host, not ${target.origin}`);
  process.exit(2);
}
const listenPort = Number(portArg ?? process.env.BEARER_PROXY_PORT ?? 0);

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

// Copies raw header pairs (keeping their order, case and repeats) minus hop-by-hop ones.
function endToEnd(rawHeaders, drop = new Set()) {
  const named = new Set();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() === 'connection') {
      for (const n of rawHeaders[i + 1].split(',')) named.add(n.trim().toLowerCase());
    }
  }
  const out = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    if (HOP_BY_HOP.has(name) || named.has(name) || drop.has(name)) continue;
    out.push(rawHeaders[i], rawHeaders[i + 1]);
  }
  return out;
}

const agent = new http.Agent({ keepAlive: true });

const server = http.createServer((req, res) => {
  const headers = endToEnd(req.rawHeaders, new Set(['authorization']));
  headers.push('Authorization', `Bearer ${token}`);
  // Host stays as the client sent it (it is among the copied headers); Node adds its own only
  // when a request has none, which HTTP/1.1 clients never do.
  const upstream = http.request({
    agent,
    host: target.hostname.replace(/^\[|\]$/g, ''),
    port: target.port || 80,
    method: req.method,
    path: req.url,
    headers,
    setHost: false,
  });
  upstream.on('response', (up) => {
    res.writeHead(up.statusCode, up.statusMessage, endToEnd(up.rawHeaders));
    res.flushHeaders();
    up.pipe(res);
    up.on('error', () => res.destroy());
  });
  upstream.on('error', (err) => {
    if (res.headersSent) {
      res.destroy();
    } else if (!res.destroyed) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`bearer-proxy: upstream ${target.origin} failed: ${err.code || err.message}\n`);
    }
  });
  // The client went away (or cancelled an SSE stream): drop the upstream exchange too.
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
});
server.requestTimeout = 0;
server.headersTimeout = 60_000;
server.on('clientError', (_err, socket) => socket.destroy());

server.listen(listenPort, '127.0.0.1', () => {
  console.log(`bearer-proxy listening on http://127.0.0.1:${server.address().port}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
