// A scripted OpenAI-compatible model server for the UI tests, on 127.0.0.1: POST
// /v1/chat/completions answers, streamed in OpenAI's chunk format, with the next step of the
// script for the conversation's latest user message. A step is {text} or {tools: [[name, args]]};
// the step is picked by how many assistant turns follow that user message, so each question
// plays its own script whatever ran before. Every request is kept in `requests`.
import http from 'node:http';

function chunk(delta, finish = null) {
  const body = {
    id: 'chatcmpl-ui', object: 'chat.completion.chunk', created: 1, model: 'scripted',
    choices: [{ index: 0, delta, finish_reason: finish }],
  };
  return `data: ${JSON.stringify(body)}\n\n`;
}

function stepFor(script, messages) {
  let lastUser = -1;
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    if (messages[i].role === 'user') {
      lastUser = i;
      break;
    }
  }
  if (lastUser < 0) return { text: '(no question)' };
  const question = String(messages[lastUser].content ?? '');
  const turn = messages.slice(lastUser + 1).filter((m) => m.role === 'assistant').length;
  const steps = script[question];
  if (!steps) return { text: `(no script for "${question}")` };
  return steps[turn] ?? { text: '(the script has no more steps)' };
}

/** Starts the server; resolves with {baseUrl, requests, close()}. */
export function startModel(script) {
  const requests = [];
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
      res.writeHead(404).end();
      return;
    }
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { raw += d; });
    req.on('end', () => {
      let request = {};
      try {
        request = JSON.parse(raw);
      } catch {
        // Keep the empty request.
      }
      requests.push(request);
      const step = stepFor(script, request.messages ?? []);
      let out = chunk({ role: 'assistant', content: '' });
      if (step.tools) {
        step.tools.forEach(([name, args], index) => {
          const text = JSON.stringify(args);
          const mid = Math.floor(text.length / 2);
          out += chunk({ tool_calls: [{ index, id: `call_${requests.length}_${index}`, type: 'function', function: { name, arguments: text.slice(0, mid) } }] });
          out += chunk({ tool_calls: [{ index, function: { arguments: text.slice(mid) } }] });
        });
        out += chunk({}, 'tool_calls');
      } else {
        const text = step.text;
        const mid = Math.floor(text.length / 2);
        out += chunk({ content: text.slice(0, mid) });
        out += chunk({ content: text.slice(mid) });
        out += chunk({}, 'stop');
      }
      out += 'data: [DONE]\n\n';
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(out);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        baseUrl: `http://127.0.0.1:${port}/v1`,
        requests,
        close: () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); }),
      });
    });
  });
}
