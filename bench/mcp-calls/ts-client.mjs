// The official TypeScript SDK client for bench/mcp-calls: connects over streamable HTTP, warms
// up, then makes CALLS tools/call requests with CONCURRENCY in flight and prints one JSON line:
// {calls, seconds, p50_ms, p99_ms, cpu_ms_per_call}.
//   node ts-client.mjs NODE_MODULES URL TOOL ARGS_JSON CONCURRENCY CALLS
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, url, tool, argsJson, concurrencyText, callsText] = process.argv.slice(2);
const sdk = (p) => import(pathToFileURL(join(modules, '@modelcontextprotocol/sdk/dist/esm', p)).href);
const { Client } = await sdk('client/index.js');
const { StreamableHTTPClientTransport } = await sdk('client/streamableHttp.js');

const client = new Client({ name: 'bench-ts-client', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
const args = JSON.parse(argsJson);
const concurrency = Number(concurrencyText);
const calls = Number(callsText);

for (let i = 0; i < 50; i++) await client.callTool({ name: tool, arguments: args });

const latencies = [];
let next = 0;
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
async function worker() {
  while (next < calls) {
    next++;
    const start = process.hrtime.bigint();
    await client.callTool({ name: tool, arguments: args });
    latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
console.log(JSON.stringify({
  calls: latencies.length,
  seconds,
  p50_ms: pct(0.5),
  p99_ms: pct(0.99),
  cpu_ms_per_call: (cpu.user + cpu.system) / 1000 / latencies.length,
}));
await client.close();
