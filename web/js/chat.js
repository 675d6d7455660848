// The chat: the conversation list, the messages, and one run at a time streamed as it happens —
// a card per tool call (running → finished, with its duration and result), approval cards,
// "Connect <provider>" cards, and the answer as it is written.

import { api, runEvents, openPopup } from './api.js';
import { h, replace, announce, duration } from './dom.js';
import { serverTitles, openServersDialog } from './servers.js';

export function chatView(main) {
  const state = {
    conversation: null,
    conversations: [],
    running: null, // {runId, abort}
    titles: new Map(),
    shown: 0, // which select() is current, so an older one stops adding to the page
  };
  const list = h('ul', { class: 'conversation-list' });
  const newButton = h('button', { type: 'button', class: 'primary', id: 'new-conversation', onclick: () => select(null) }, 'New conversation');
  const heading = h('h1', { id: 'chat-title' }, 'New conversation');
  const serversButton = h('button', { type: 'button', id: 'open-servers', onclick: () => openServersDialog(serversButton, () => refreshTitles()) }, 'MCP Servers');
  const model = h('p', { class: 'model-line', id: 'model' });
  const messages = h('ol', { class: 'messages', 'aria-labelledby': 'chat-title' });
  const input = h('textarea', { id: 'question', name: 'question', rows: 2, required: true, placeholder: 'Ask about your catalog…' });
  const send = h('button', { type: 'submit', class: 'primary', id: 'send' }, 'Send');
  const stop = h('button', { type: 'button', id: 'stop', hidden: true, onclick: () => cancel() }, 'Stop');
  const form = h('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); ask(); } },
    h('label', { for: 'question', class: 'visually-hidden' }, 'Your question'), input, send, stop);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  const empty = h('li', { class: 'empty' }, 'Ask a question in plain English. Open "MCP Servers" to choose which servers the assistant may use.');

  replace(main,
    h('div', { class: 'chat-layout' },
      h('nav', { class: 'conversations', 'aria-label': 'Conversations' },
        newButton,
        h('h2', { class: 'visually-hidden' }, 'Your conversations'),
        list),
      h('section', { class: 'chat' },
        h('div', { class: 'chat-head' }, heading, serversButton),
        model,
        messages,
        form)));
  document.title = 'Chat · Portico';

  // Which model answers (the embedded one, a remote one), or how to set one up.
  async function showModel() {
    try {
      const answer = await api('/api/assistant/model');
      if (answer.model) {
        replace(model, 'Model: ', h('code', {}, answer.model));
        model.classList.remove('notice');
      } else {
        replace(model, answer.hint ?? 'No model is configured.');
        model.classList.add('notice');
      }
    } catch {
      model.hidden = true;
    }
  }
  showModel();

  async function refreshTitles() {
    try {
      state.titles = await serverTitles();
    } catch {
      // Refs stand in for titles.
    }
  }

  function titleOf(ref) {
    return state.titles.get(ref) ?? ref;
  }

  async function loadConversations() {
    try {
      state.conversations = (await api('/api/assistant/conversations')).items ?? [];
    } catch (e) {
      replace(list, h('li', { class: 'error' }, `Cannot load conversations: ${e.message}`));
      return;
    }
    replace(list, state.conversations.map((c) => h('li', {},
      h('button', {
        type: 'button',
        class: 'conversation',
        'aria-current': state.conversation?.id === c.id ? 'true' : false,
        onclick: () => select(c),
      }, c.title || 'Untitled'))));
  }

  async function select(conversation) {
    if (state.running) cancelStream();
    state.conversation = conversation;
    heading.textContent = conversation?.title || 'New conversation';
    replace(messages, conversation ? [] : [empty]);
    loadConversations();
    if (!conversation) {
      input.focus();
      return;
    }
    const shown = ++state.shown;
    try {
      const body = await api(`/api/assistant/conversations/${encodeURIComponent(conversation.id)}`);
      const questions = (body.messages ?? []).filter((m) => m.role === 'user' && m.content);
      const runs = body.runs ?? [];
      if (runs.length === questions.length) {
        // Each question started one run: its stored events show the tool calls and the answer
        // again, and a run still going (after a reload, say) is followed live.
        for (const [i, question] of questions.entries()) {
          if (shown !== state.shown) return;
          messages.append(messageItem('user', question.content));
          const run = runs[i];
          if (run.status === 'running' || run.status === 'waiting') {
            resume(run.id);
          } else {
            await replay(run.id, shown);
          }
        }
      } else {
        for (const m of body.messages ?? []) {
          if ((m.role === 'user' || m.role === 'assistant') && m.content) {
            messages.append(messageItem(m.role, m.content));
          }
        }
      }
    } catch (e) {
      messages.append(h('li', { class: 'error' }, `Cannot load the conversation: ${e.message}`));
    }
    if (shown === state.shown) input.focus();
  }

  /** Shows a finished run from its stored events. */
  async function replay(runId, shown) {
    await refreshTitles();
    const view = new RunView(runId, titleOf, { replay: true });
    messages.append(view.el);
    for await (const event of runEvents(runId)) {
      if (shown !== state.shown) return;
      view.apply(event);
    }
    view.finish();
  }

  /** Follows a run that is still going, as if it had just been asked. */
  async function resume(runId) {
    busy(true);
    try {
      await follow(runId);
    } catch (e) {
      messages.append(h('li', { class: 'message error', role: 'alert' }, e.message));
    } finally {
      state.running = null;
      busy(false);
    }
  }

  function messageItem(role, text) {
    return h('li', { class: `message ${role}` },
      h('span', { class: 'visually-hidden' }, role === 'user' ? 'You: ' : 'Assistant: '),
      h('div', { class: 'text' }, text));
  }

  function busy(on) {
    send.disabled = on;
    stop.hidden = !on;
    messages.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  async function ask() {
    const text = input.value.trim();
    if (!text || state.running) return;
    busy(true);
    try {
      if (!state.conversation) {
        state.conversation = await api('/api/assistant/conversations', { method: 'POST', body: { title: text.slice(0, 80) } });
        heading.textContent = state.conversation.title;
        empty.remove();
        loadConversations();
      }
      messages.append(messageItem('user', text));
      input.value = '';
      const run = await api(`/api/assistant/conversations/${encodeURIComponent(state.conversation.id)}/messages`, { method: 'POST', body: { text } });
      await follow(run.id);
    } catch (e) {
      messages.append(h('li', { class: 'message error', role: 'alert' }, e.message));
    } finally {
      state.running = null;
      busy(false);
    }
  }

  function cancelStream() {
    state.running?.abort.abort();
    state.running = null;
  }

  async function cancel() {
    const run = state.running;
    if (!run) return;
    try {
      await api(`/api/assistant/runs/${encodeURIComponent(run.runId)}/cancel`, { method: 'POST' });
    } catch (e) {
      announce(`Cannot stop the run: ${e.message}`);
    }
  }

  async function follow(runId) {
    await refreshTitles();
    const abort = new AbortController();
    state.running = { runId, abort };
    const view = new RunView(runId, titleOf);
    messages.append(view.el);
    for await (const event of runEvents(runId, { signal: abort.signal })) {
      view.apply(event);
    }
    view.finish();
  }

  refreshTitles();
  select(null);
  return { destroy: () => cancelStream() };
}

/** One run as it streams: its cards and its answer. */
class RunView {
  constructor(runId, titleOf, { replay = false } = {}) {
    this.runId = runId;
    this.titleOf = titleOf;
    this.replay = replay; // shown again from stored events: no focus moves, nothing announced
    this.calls = new Map();
    this.waiting = []; // approval and connect cards not yet answered
    this.cards = h('div', { class: 'cards' });
    this.status = h('p', { class: 'run-status' }, 'Thinking…');
    this.answer = h('div', { class: 'text answer', hidden: true });
    this.el = h('li', { class: 'message assistant run', dataset: { runId } },
      h('span', { class: 'visually-hidden' }, 'Assistant: '),
      this.cards, this.answer, this.status);
  }

  apply({ type, data }) {
    this.settle(type, data);
    switch (type) {
      case 'run.started':
        break;
      case 'tools.selected':
        this.status.textContent = data.tools?.length
          ? `Thinking… (${data.tools.length} tools from ${data.servers?.length ?? 0} servers)`
          : 'Thinking…';
        break;
      case 'auth.required':
        this.cards.append(this.connectCard(data));
        this.status.textContent = `Waiting for you to connect ${data.provider}…`;
        this.say(`${this.titleOf(data.server)} needs you to sign in to ${data.provider}`);
        break;
      case 'approval.required':
        this.cards.append(this.approvalCard(data));
        this.status.textContent = 'Waiting for your approval…';
        this.say(`Approval needed for ${data.tool}`);
        break;
      case 'tool.started':
        this.toolStarted(data);
        this.status.textContent = 'Working…';
        break;
      case 'tool.progress':
        this.toolProgress(data);
        break;
      case 'tool.completed':
        this.toolCompleted(data);
        this.status.textContent = 'Thinking…';
        break;
      case 'message.delta':
        this.answer.hidden = false;
        this.answer.append(data.text ?? '');
        break;
      case 'message.completed':
        this.answer.hidden = false;
        this.answer.textContent = data.text ?? '';
        break;
      case 'run.completed':
        this.status.textContent = '';
        this.status.hidden = true;
        this.el.dataset.state = 'completed';
        this.say('The answer is complete');
        break;
      case 'run.failed':
        this.status.hidden = false;
        this.status.className = 'run-status error';
        this.status.setAttribute('role', 'alert');
        this.status.textContent = `The run failed: ${data.error}`;
        this.el.dataset.state = 'failed';
        break;
      default:
        break;
    }
  }

  /**
   * Marks questions the run has moved past: an approval whose call started was approved, one
   * the run answered past was denied; a sign-in the run went on after was completed. (Live, the
   * click already said so; replayed, only the later events do.)
   */
  settle(type, data) {
    if (type === 'approval.required' || type === 'auth.required') return;
    const answered = ['message.delta', 'message.completed', 'run.completed', 'run.failed'].includes(type);
    this.waiting = this.waiting.filter(({ card, settle }) => {
      if (card.dataset.state !== 'waiting') return false;
      if (card.classList.contains('approval')) {
        if (type === 'tool.started' && data.callId === card.dataset.callId) return !settle(true);
        return answered ? !settle(false) : true;
      }
      return type === 'run.failed' ? true : !settle(true);
    });
  }

  say(text) {
    if (!this.replay) announce(text);
  }

  finish() {
    for (const call of this.calls.values()) window.clearInterval(call.timer);
    if (!this.el.dataset.state) {
      this.status.textContent = 'The run stopped.';
      this.el.dataset.state = 'stopped';
    }
  }

  connectCard({ server, provider, loginUrl }) {
    const message = h('p', { class: 'card-note', role: 'status' });
    const button = h('button', {
      type: 'button',
      class: 'primary',
      onclick: async () => {
        button.disabled = true;
        message.textContent = 'Complete the sign-in in the window that opened…';
        try {
          await openPopup(loginUrl);
          card.dataset.state = 'connected';
          message.textContent = `Connected to ${provider}. The answer continues.`;
          button.hidden = true;
        } catch (e) {
          message.textContent = e.message;
          button.disabled = false;
        }
      },
    }, `Connect ${provider}`);
    const card = h('article', { class: 'card connect', dataset: { state: 'waiting', provider } },
      h('h3', {}, `Sign-in needed for ${this.titleOf(server)}`),
      h('p', {}, `This server uses your ${provider} account. Connect it to let the assistant go on.`),
      button, message);
    this.waiting.push({
      card,
      settle: () => {
        card.dataset.state = 'connected';
        message.textContent = `Connected to ${provider}.`;
        button.hidden = true;
        return true;
      },
    });
    return card;
  }

  approvalCard({ callId, server, tool, arguments: args, reason }) {
    const remember = h('input', { type: 'checkbox', id: `remember-${callId}` });
    const outcome = h('p', { class: 'card-note', role: 'status' });
    const decide = async (approve) => {
      approveButton.disabled = true;
      denyButton.disabled = true;
      try {
        await api(`/api/assistant/runs/${encodeURIComponent(this.runId)}/approvals/${encodeURIComponent(callId)}`, {
          method: 'POST',
          body: { approve, remember: approve && remember.checked },
        });
        card.dataset.state = approve ? 'approved' : 'denied';
        outcome.textContent = approve ? 'Approved.' : 'Denied: the tool was not run.';
        actions.hidden = true;
      } catch (e) {
        outcome.textContent = e.message;
        approveButton.disabled = false;
        denyButton.disabled = false;
      }
    };
    const approveButton = h('button', { type: 'button', class: 'primary', onclick: () => decide(true) }, 'Approve');
    const denyButton = h('button', { type: 'button', class: 'danger', onclick: () => decide(false) }, 'Deny');
    const actions = h('div', { class: 'card-actions' },
      approveButton, denyButton,
      h('label', { class: 'check' }, remember, 'Always allow this tool'));
    const card = h('article', { class: 'card approval', dataset: { state: 'waiting', callId } },
      h('h3', {}, `Run ${tool}?`),
      h('p', { class: 'meta' }, h('span', {}, 'Server: '), this.titleOf(server)),
      reason ? h('p', {}, reason) : null,
      h('p', { class: 'meta' }, 'Arguments:'),
      h('pre', { class: 'arguments', tabindex: 0 }, JSON.stringify(args ?? {}, null, 2)),
      actions, outcome);
    this.waiting.push({
      card,
      settle: (approved) => {
        card.dataset.state = approved ? 'approved' : 'denied';
        outcome.textContent = approved ? 'Approved.' : 'Denied: the tool was not run.';
        actions.hidden = true;
        return true;
      },
    });
    if (!this.replay) window.setTimeout(() => approveButton.focus(), 0);
    return card;
  }

  toolStarted({ callId, server, tool }) {
    const state = h('span', { class: 'state' }, 'Running');
    const time = h('span', { class: 'time' }, '');
    const progress = h('progress', { hidden: true, 'aria-label': `${tool} progress` });
    const progressText = h('span', { class: 'progress-text' });
    const body = h('div', { class: 'tool-result' });
    const card = h('article', { class: 'card tool', dataset: { state: 'running', callId, tool } },
      h('h3', {}, h('span', { class: 'tool-name' }, tool), ' ', state),
      h('p', { class: 'meta' }, h('span', { class: 'tool-server' }, this.titleOf(server)), ' · ', time),
      progress, progressText, body);
    const started = Date.now();
    const timer = window.setInterval(() => {
      time.textContent = duration(Date.now() - started);
    }, 250);
    this.calls.set(callId, { card, state, time, progress, progressText, body, timer });
    this.cards.append(card);
  }

  toolProgress({ callId, progress, total, message }) {
    const call = this.calls.get(callId);
    if (!call) return;
    call.progress.hidden = false;
    if (total) {
      call.progress.max = total;
      call.progress.value = progress;
    }
    call.progressText.textContent = message ?? (total ? `${progress} of ${total}` : `${progress}`);
  }

  toolCompleted({ callId, ms, isError, summary }) {
    const call = this.calls.get(callId);
    if (!call) return;
    window.clearInterval(call.timer);
    call.card.dataset.state = isError ? 'failed' : 'finished';
    call.state.textContent = isError ? 'Failed' : 'Finished';
    call.time.textContent = duration(ms);
    call.progress.hidden = true;
    call.progressText.textContent = '';
    replace(call.body, h('details', {},
      h('summary', {}, isError ? 'Error' : 'Result'),
      h('pre', { tabindex: 0 }, summary ?? '')));
    this.say(`${call.card.dataset.tool} ${isError ? 'failed' : 'finished'}`);
  }
}
