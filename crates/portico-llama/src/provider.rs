//! The embedded model provider: one GGUF model loaded once, owned by one worker thread that runs
//! the requests one after another (a model turn is CPU-bound: async callers wait on a channel).
//!
//! A turn: the conversation is rendered with the model's chat template, the system message
//! followed by every offered tool (so the prompt prefix is the same from turn to turn, and the
//! tokens already in the KV cache are reused up to the first difference); the model then writes
//! one JSON object under a grammar (see [`crate::grammar`]): a call of one of the top-k tools
//! ranked against the question, or an answer, streamed as it is written. After a tool result the
//! model can only answer: the embedded model handles one-tool requests.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc as std_mpsc};
use std::thread;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use portico_assistant::model::{
    ChatRequest, ChatResponse, Deltas, FinishReason, Message, ModelConfig, ModelError, ModelFuture,
    ModelProvider, Role, ToolCall, ToolDef, ToolFieldOrder, Usage,
};
use portico_assistant::retrieval::{self, ToolDoc};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::LlamaError;
use crate::grammar::{self, Choice, Output};
use crate::stream::AnswerStream;

/// Tokens of context the model is given (capped at what it was trained with).
const CONTEXT_TOKENS: u32 = 8192;
/// Tokens decoded per batch while reading the prompt.
const BATCH_TOKENS: usize = 512;
/// A tool result longer than this (in characters) is cut in the prompt.
const TOOL_RESULT_CHARS: usize = 6000;
/// Most tokens of a tool call: a small model sometimes keeps adding keys to a free-form object
/// argument, and a call that long is never the one asked for.
const CALL_TOKENS: u64 = 256;

/// How the embedded model runs.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedSettings {
    /// The GGUF file.
    pub path: PathBuf,
    /// Inference threads.
    pub threads: u32,
    /// Field order of a tool call.
    pub field_order: ToolFieldOrder,
    /// Tools the model may choose from, ranked against the question; 0 for all.
    pub rank_top_k: usize,
    /// Whether the model may answer in text instead of calling a tool.
    pub allow_answer: bool,
    /// Most tokens per answer.
    pub max_tokens: u32,
    /// Sampling temperature; greedy when absent or 0.
    pub temperature: Option<f64>,
}

impl EmbeddedSettings {
    /// The settings of `config` for the model at `path`.
    pub fn from_config(config: &ModelConfig, path: PathBuf) -> Result<Self, LlamaError> {
        let threads = match config.threads {
            Some(0) => {
                return Err(LlamaError::Config(
                    "assistant.model.threads must be at least 1".into(),
                ));
            }
            Some(n) => n,
            None => default_threads(),
        };
        if config.max_tokens == 0 {
            return Err(LlamaError::Config(
                "assistant.model.maxTokens must be at least 1".into(),
            ));
        }
        if let Some(t) = config.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(LlamaError::Config(
                "assistant.model.temperature must be between 0 and 2 for the embedded model".into(),
            ));
        }
        if !path.is_file() {
            return Err(LlamaError::Config(format!(
                "assistant.model.path: {} is not a file (run `portico model install`, or point \
                 the key at a GGUF model)",
                path.display()
            )));
        }
        Ok(Self {
            path,
            threads,
            field_order: config.tool_field_order,
            rank_top_k: config.rank_top_k,
            allow_answer: true,
            max_tokens: config.max_tokens,
            temperature: config.temperature,
        })
    }
}

/// The machine's cores.
pub fn default_threads() -> u32 {
    thread::available_parallelism().map_or(4, |n| u32::try_from(n.get()).unwrap_or(4))
}

/// One request for the worker.
struct Job {
    request: ChatRequest,
    deltas: Option<Deltas>,
    cancel: Arc<AtomicBool>,
    reply: oneshot::Sender<Result<ChatResponse, ModelError>>,
}

/// The embedded model as a [`ModelProvider`].
pub struct EmbeddedProvider {
    jobs: std_mpsc::Sender<Job>,
    name: String,
}

impl std::fmt::Debug for EmbeddedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedProvider")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The process's llama.cpp backend (it may be initialised once only).
pub(crate) fn backend() -> Result<&'static LlamaBackend, LlamaError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp narrates every load at length; its failures reach us as errors.
            llama_cpp_2::send_logs_to_tracing(
                llama_cpp_2::LogOptions::default().with_logs_enabled(false),
            );
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| LlamaError::Load(format!("llama.cpp could not start: {e}")))
}

impl EmbeddedProvider {
    /// Loads the model (blocking until it is loaded) on its own worker thread.
    pub fn load(settings: EmbeddedSettings) -> Result<Self, LlamaError> {
        let name = format!(
            "embedded:{}",
            settings
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let (jobs, receiver) = std_mpsc::channel::<Job>();
        let (ready, loaded) = std_mpsc::channel::<Result<(), LlamaError>>();
        thread::Builder::new()
            .name("portico-llama".into())
            .spawn(move || worker(settings, receiver, ready))
            .map_err(|e| LlamaError::Load(format!("the model thread could not start: {e}")))?;
        loaded
            .recv()
            .map_err(|_| LlamaError::Load("the model thread stopped while loading".into()))??;
        Ok(Self { jobs, name })
    }
}

/// Sets the flag when the caller stops waiting, so the worker stops generating.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl ModelProvider for EmbeddedProvider {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn complete<'a>(&'a self, request: &'a ChatRequest, deltas: Option<Deltas>) -> ModelFuture<'a> {
        Box::pin(async move {
            let cancel = Arc::new(AtomicBool::new(false));
            let _guard = CancelOnDrop(cancel.clone());
            let (reply, answer) = oneshot::channel();
            self.jobs
                .send(Job {
                    request: request.clone(),
                    deltas,
                    cancel,
                    reply,
                })
                .map_err(|_| ModelError::Protocol("the embedded model has stopped".into()))?;
            answer
                .await
                .map_err(|_| ModelError::Protocol("the embedded model has stopped".into()))?
        })
    }
}

fn worker(
    settings: EmbeddedSettings,
    jobs: std_mpsc::Receiver<Job>,
    ready: std_mpsc::Sender<Result<(), LlamaError>>,
) {
    let loaded = (|| {
        let backend = backend()?;
        let model =
            LlamaModel::load_from_file(backend, &settings.path, &LlamaModelParams::default())
                .map_err(|e| {
                    LlamaError::Load(format!(
                        "assistant.model.path: {} cannot be loaded as a GGUF model: {e}",
                        settings.path.display()
                    ))
                })?;
        Ok::<_, LlamaError>((backend, model))
    })();
    let (backend, model) = match loaded {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let n_ctx = CONTEXT_TOKENS.min(model.n_ctx_train().max(512));
    let threads = i32::try_from(settings.threads).unwrap_or(i32::MAX);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(BATCH_TOKENS as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let ctx = match model.new_context(backend, params) {
        Ok(ctx) => ctx,
        Err(e) => {
            let _ = ready.send(Err(LlamaError::Load(format!(
                "the model's context could not be created: {e}"
            ))));
            return;
        }
    };
    let template = model
        .chat_template(None)
        .or_else(|_| LlamaChatTemplate::new("chatml"))
        .map_err(|e| LlamaError::Load(format!("the model's chat template is unusable: {e}")));
    let template = match template {
        Ok(t) => t,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut session = Session {
        model: &model,
        ctx,
        template,
        cached: Vec::new(),
        n_ctx: n_ctx as usize,
        settings,
    };
    while let Ok(job) = jobs.recv() {
        if job.cancel.load(Ordering::Relaxed) {
            continue;
        }
        let result = session
            .turn(&job.request, job.deltas.as_ref(), &job.cancel)
            .map_err(LlamaError::into_model_error);
        let _ = job.reply.send(result);
    }
}

/// The loaded model, its context and what its KV cache holds.
struct Session<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    template: LlamaChatTemplate,
    /// The tokens whose keys and values are in the cache, in order from position 0.
    cached: Vec<LlamaToken>,
    n_ctx: usize,
    settings: EmbeddedSettings,
}

impl Session<'_> {
    fn turn(
        &mut self,
        request: &ChatRequest,
        deltas: Option<&Deltas>,
        cancel: &AtomicBool,
    ) -> Result<ChatResponse, LlamaError> {
        let after_tool = request
            .messages
            .last()
            .is_some_and(|m| m.role == Role::Tool);
        let question = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.content.as_str());
        let (choices, relevant) = if after_tool {
            (Vec::new(), false)
        } else {
            rank(question, &request.tools, self.settings.rank_top_k)
        };
        // A small model offered "answer" beside tools that fit the question too often answers
        // with a tool's name: when the retriever finds tools sharing words with the question, the
        // model must call one of them; when it finds none, it may answer.
        let allow_answer = self.settings.allow_answer && !relevant;
        let order = self.settings.field_order;
        let grammar_text = grammar::output_grammar(
            &choices
                .iter()
                .map(|t| Choice {
                    name: &t.name,
                    parameters: &t.parameters,
                })
                .collect::<Vec<_>>(),
            order,
            allow_answer,
        )?;

        let budget = self.n_ctx.saturating_sub(self.settings.max_tokens as usize);
        let tokens = self.prompt_tokens(request, budget)?;
        self.read_prompt(&tokens)?;

        let grammar = LlamaSampler::grammar(self.model, &grammar_text, grammar::ROOT)
            .map_err(|e| LlamaError::Grammar(e.to_string()))?;
        let pick = match self.settings.temperature {
            Some(t) if t > 0.0 => {
                vec![LlamaSampler::temp(t as f32), LlamaSampler::dist(now_seed())]
            }
            _ => vec![LlamaSampler::greedy()],
        };
        let mut sampler = LlamaSampler::chain_simple(std::iter::once(grammar).chain(pick));

        let mut bytes: Vec<u8> = Vec::new();
        let mut stream = AnswerStream::default();
        let mut generated = 0u64;
        let mut finish = FinishReason::Stop;
        let vocab = self.model.vocab();
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(LlamaError::Cancelled);
            }
            if generated >= u64::from(self.settings.max_tokens)
                || self.cached.len() + 1 >= self.n_ctx
            {
                finish = FinishReason::Length;
                break;
            }
            if generated >= CALL_TOKENS && !is_answer(&bytes) {
                return Err(LlamaError::Output(format!(
                    "the embedded model's tool call ran past {CALL_TOKENS} tokens"
                )));
            }
            // `sample` also accepts the token into the grammar.
            let token = sampler.sample(&self.ctx, -1);
            if vocab.is_eog(token) {
                break;
            }
            generated += 1;
            bytes.extend_from_slice(&vocab.token_to_piece(token, false, None));
            self.decode(&[token], true)?;
            if let Some(deltas) = deltas {
                let text = valid_prefix(&bytes);
                let delta = stream.next(text);
                if !delta.is_empty() {
                    let _ = deltas.send(delta);
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let usage = Some(Usage {
            input_tokens: tokens.len() as u64,
            output_tokens: generated,
        });
        let output = match grammar::parse_output(&text) {
            Ok(output) => output,
            Err(e) if finish == FinishReason::Length => {
                let mut partial = AnswerStream::default();
                let answer = partial.next(&text);
                if answer.is_empty() {
                    return Err(e);
                }
                Output::Answer(answer)
            }
            Err(e) => return Err(e),
        };
        Ok(match output {
            Output::Answer(text) => ChatResponse {
                text,
                tool_calls: Vec::new(),
                finish,
                usage,
            },
            Output::Call { tool, arguments } => ChatResponse {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: call_id(),
                    name: tool,
                    arguments,
                }],
                finish: FinishReason::ToolCalls,
                usage,
            },
        })
    }

    /// The prompt's tokens, within `budget`: the oldest messages after the system message are
    /// left out until it fits.
    fn prompt_tokens(
        &self,
        request: &ChatRequest,
        budget: usize,
    ) -> Result<Vec<LlamaToken>, LlamaError> {
        let system = request
            .messages
            .iter()
            .find(|m| m.role == Role::System)
            .map_or("", |m| m.content.as_str());
        let system = system_prompt(system, &request.tools, self.settings.field_order);
        let rest: Vec<&Message> = request
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .collect();
        let mut skip = 0;
        loop {
            let mut chat = vec![chat_message("system", &system)?];
            for m in &rest[skip..] {
                chat.push(render(m, self.settings.field_order)?);
            }
            let text = self
                .model
                .apply_chat_template(&self.template, &chat, true)
                .map_err(|e| LlamaError::Prompt(format!("the chat template failed: {e}")))?;
            let tokens = self.model.vocab().tokenize(text.as_bytes(), true, true);
            if tokens.len() <= budget {
                return Ok(tokens);
            }
            if skip + 1 >= rest.len() {
                return Err(LlamaError::Prompt(format!(
                    "the question and the tools' descriptions need {} tokens, more than the \
                     embedded model's {budget}; enable fewer servers",
                    tokens.len()
                )));
            }
            skip += 1;
        }
    }

    /// Puts `tokens` in the KV cache, reusing what it already holds of them.
    fn read_prompt(&mut self, tokens: &[LlamaToken]) -> Result<(), LlamaError> {
        let mut common = self
            .cached
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        // The last prompt token is always decoded again: its logits start the answer.
        if common == tokens.len() {
            common = common.saturating_sub(1);
        }
        if common < self.cached.len() {
            let removed = self
                .ctx
                .clear_kv_cache_seq(Some(0), Some(common as u32), None)
                .unwrap_or(false);
            if !removed {
                self.ctx.clear_kv_cache();
                common = 0;
            }
            self.cached.truncate(common);
        }
        tracing::debug!(
            reused = common,
            new = tokens.len() - common,
            "embedded model prompt"
        );
        let rest = &tokens[common..];
        let chunks = rest.len().div_ceil(BATCH_TOKENS);
        for (i, chunk) in rest.chunks(BATCH_TOKENS).enumerate() {
            self.decode(chunk, i + 1 == chunks)?;
        }
        Ok(())
    }

    /// Decodes `tokens` after the cached ones; logits for the last one when `logits_last`.
    fn decode(&mut self, tokens: &[LlamaToken], logits_last: bool) -> Result<(), LlamaError> {
        let mut batch = LlamaBatch::new(tokens.len().max(1), 1);
        let start = self.cached.len();
        for (i, token) in tokens.iter().enumerate() {
            let last = i + 1 == tokens.len();
            batch
                .add(*token, (start + i) as i32, &[0], last && logits_last)
                .map_err(|e| LlamaError::Decode(e.to_string()))?;
        }
        if let Err(e) = self.ctx.decode(&mut batch) {
            self.ctx.clear_kv_cache();
            self.cached.clear();
            return Err(LlamaError::Decode(e.to_string()));
        }
        self.cached.extend_from_slice(tokens);
        Ok(())
    }
}

/// The top `k` of `tools` for `question` by the lexical retriever, best first (all of them when
/// `k` is 0 or covers them all, or when no tool shares a word with the question), and whether any
/// tool shares a word with the question.
pub fn rank<'t>(question: &str, tools: &'t [ToolDef], k: usize) -> (Vec<&'t ToolDef>, bool) {
    let docs: Vec<ToolDoc<'_>> = tools
        .iter()
        .map(|t| ToolDoc {
            name: &t.name,
            description: &t.description,
            server: "",
        })
        .collect();
    let relevant = retrieval::scores(question, &docs).iter().any(|s| *s > 0.0);
    if k == 0 || k >= tools.len() || !relevant {
        return (tools.iter().collect(), relevant);
    }
    let top = retrieval::select(question, &docs, k)
        .into_iter()
        .map(|i| &tools[i])
        .collect();
    (top, true)
}

/// The system message: the caller's, then every tool (one line each: name, description,
/// arguments) and how to reply.
///
/// One short line per tool rather than its JSON Schema: the grammar already holds the model to
/// each schema, and a compact list is a third of the tokens, so the first turn (which reads the
/// whole list) is faster and a small model reads the names and descriptions it chooses by.
pub fn system_prompt(system: &str, tools: &[ToolDef], order: ToolFieldOrder) -> String {
    let mut out = String::from(system);
    if tools.is_empty() {
        out.push_str("\n\nReply with one JSON object: {\"answer\": <your answer as text>}.");
        return out;
    }
    out.push_str("\n\n# Tools\n\nYou can call these tools:\n");
    for tool in tools {
        out.push_str("- ");
        out.push_str(&tool.name);
        out.push_str(": ");
        out.push_str(one_line(&tool.description).trim_end_matches('.'));
        out.push('.');
        let arguments = arguments_line(&tool.parameters);
        if !arguments.is_empty() {
            out.push_str(" Arguments: ");
            out.push_str(&arguments);
            out.push('.');
        }
        out.push('\n');
    }
    out.push_str("\nTo call a tool, reply with one JSON object: ");
    out.push_str(match order {
        ToolFieldOrder::ArgumentsFirst => {
            "{\"arguments\": {<argument>: <value>, ...}, \"tool\": <the tool's name>}"
        }
        ToolFieldOrder::ToolFirst => {
            "{\"tool\": <the tool's name>, \"arguments\": {<argument>: <value>, ...}}"
        }
    });
    out.push_str(
        ". Choose the tool whose description matches what the user asks for (to create, \
         search, list, read or write). To answer without a tool, reply {\"answer\": <your \
         answer as text>}. After a tool's result, answer.",
    );
    out
}

/// `text` with its whitespace runs (newlines included) made single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A tool's arguments as `name (type, required): description; ...`, from its JSON Schema.
fn arguments_line(parameters: &Value) -> String {
    let Some(properties) = parameters.get("properties").and_then(Value::as_object) else {
        return String::new();
    };
    let required: Vec<&str> = parameters
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    properties
        .iter()
        .map(|(name, schema)| {
            let mut facts: Vec<String> = Vec::new();
            if let Some(t) = schema.get("type").and_then(Value::as_str) {
                facts.push(t.to_string());
            }
            if let Some(options) = schema.get("enum").and_then(Value::as_array) {
                let options: Vec<String> = options.iter().map(Value::to_string).collect();
                facts.push(format!("one of {}", options.join(", ")));
            }
            if required.contains(&name.as_str()) {
                facts.push("required".into());
            }
            let mut line = name.clone();
            if !facts.is_empty() {
                line.push_str(&format!(" ({})", facts.join(", ")));
            }
            if let Some(d) = schema.get("description").and_then(Value::as_str) {
                line.push_str(": ");
                line.push_str(one_line(d).trim_end_matches('.'));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn chat_message(role: &str, content: &str) -> Result<LlamaChatMessage, LlamaError> {
    LlamaChatMessage::new(role.to_string(), content.replace('\0', ""))
        .map_err(|e| LlamaError::Prompt(e.to_string()))
}

/// One conversation message as the model saw (or would have written) it.
fn render(message: &Message, order: ToolFieldOrder) -> Result<LlamaChatMessage, LlamaError> {
    match message.role {
        Role::System => chat_message("system", &message.content),
        Role::User => chat_message("user", &message.content),
        Role::Assistant if message.tool_calls.is_empty() => chat_message(
            "assistant",
            &json!({ "answer": message.content }).to_string(),
        ),
        Role::Assistant => {
            let call = &message.tool_calls[0];
            let name = Value::from(call.name.as_str());
            let args = call.arguments.to_string();
            let text = match order {
                ToolFieldOrder::ArgumentsFirst => {
                    format!("{{\"arguments\": {args}, \"tool\": {name}}}")
                }
                ToolFieldOrder::ToolFirst => {
                    format!("{{\"tool\": {name}, \"arguments\": {args}}}")
                }
            };
            chat_message("assistant", &text)
        }
        Role::Tool => {
            let mut content: String = message.content.chars().take(TOOL_RESULT_CHARS).collect();
            if content.len() < message.content.len() {
                content.push_str("\n[cut]");
            }
            chat_message(
                "user",
                &format!("<tool_response>\n{content}\n</tool_response>"),
            )
        }
    }
}

/// Whether the output so far is an answer rather than a tool call.
fn is_answer(bytes: &[u8]) -> bool {
    let text = valid_prefix(bytes);
    text.trim_start()
        .strip_prefix('{')
        .is_some_and(|rest| rest.trim_start().starts_with("\"answer\""))
}

/// The longest prefix of `bytes` that is whole UTF-8 (a token may end inside a character).
fn valid_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    }
}

fn call_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "call_{}_{}",
        portico_assistant::now_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn now_seed() -> u32 {
    (portico_assistant::now_ms() & 0xffff_ffff) as u32
}
