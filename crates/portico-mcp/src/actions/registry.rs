//! The actions registry: actions with an id `pluginId:name`, a title, a description, JSON Schemas
//! for input and output and behaviour attributes. The registry checks the caller may see an
//! action, validates the input (an error names the field), runs it and validates its output.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

/// Who runs an action: the authenticated caller of the HTTP or MCP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `user:default/jane`, `plugin:portico`, `external:ci` …
    pub subject: String,
    /// Refs that count as this caller for ownership.
    pub ownership_refs: Vec<String>,
}

impl Caller {
    /// Whether the caller is a user (directly, or a plugin acting for one).
    pub fn is_user(&self) -> bool {
        self.subject.starts_with("user:")
    }
}

/// How an action behaves, as MCP tool annotations and the actions API report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// It changes or deletes things that cannot be brought back.
    pub destructive: bool,
    /// Running it twice has the effect of running it once.
    pub idempotent: bool,
    /// It changes nothing.
    pub read_only: bool,
}

/// What an action is.
#[derive(Debug, Clone)]
pub struct ActionSpec {
    /// The plugin that owns it (`catalog`, `auth`).
    pub plugin_id: String,
    /// Its name within the plugin (`get-catalog-entity`).
    pub name: String,
    /// A short human title.
    pub title: String,
    /// What it does, for people and models.
    pub description: String,
    /// JSON Schema of the input (an object).
    pub input_schema: Value,
    /// JSON Schema of the output (an object).
    pub output_schema: Value,
    /// How it behaves.
    pub attributes: Attributes,
}

impl ActionSpec {
    /// `pluginId:name`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.plugin_id, self.name)
    }
}

/// The MCP tool name of an action: `pluginId.name`, every run of characters outside
/// `[a-zA-Z0-9_]` replaced by `_`, lowercased (`catalog:get-catalog-entity` →
/// `catalog_get_catalog_entity`).
pub fn tool_name(plugin_id: &str, name: &str) -> String {
    let mut out = String::with_capacity(plugin_id.len() + name.len() + 1);
    let mut in_run = false;
    for c in format!("{plugin_id}.{name}").chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c.to_ascii_lowercase());
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

/// A known failure of an action, in Backstage's error vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct ActionError {
    /// `InputError`, `NotFoundError`, `ConflictError`, `NotAllowedError`, or `Error` for an
    /// unexpected failure.
    pub name: &'static str,
    /// What went wrong, safe to show.
    pub message: String,
}

impl ActionError {
    /// The input is wrong.
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            name: "InputError",
            message: message.into(),
        }
    }
    /// Something named does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            name: "NotFoundError",
            message: message.into(),
        }
    }
    /// The request conflicts with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            name: "ConflictError",
            message: message.into(),
        }
    }
    /// The caller may not do this.
    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self {
            name: "NotAllowedError",
            message: message.into(),
        }
    }
    /// An unexpected failure (storage, a bug): not the caller's doing.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            name: "Error",
            message: message.into(),
        }
    }
    /// Whether this is an unexpected failure rather than a known error.
    pub fn is_internal(&self) -> bool {
        self.name == "Error"
    }
}

/// A boxed action result.
pub type ActionFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, ActionError>> + Send + 'a>>;

/// One action, implemented by the crate that owns its domain.
pub trait Action: Send + Sync {
    /// What it is.
    fn spec(&self) -> &ActionSpec;
    /// Whether `caller` may see and run it.
    fn visible(&self, caller: &Caller) -> bool {
        let _ = caller;
        true
    }
    /// Runs it for `caller` with input already validated against the input schema.
    fn run<'a>(&'a self, caller: &'a Caller, input: Value) -> ActionFuture<'a>;
}

/// An action made of closures, for crates that register several small actions.
pub struct FnAction {
    spec: ActionSpec,
    visible: Box<dyn Fn(&Caller) -> bool + Send + Sync>,
    run: Box<dyn Fn(Caller, Value) -> ActionFuture<'static> + Send + Sync>,
}

impl FnAction {
    /// An action visible to every caller.
    pub fn new(
        spec: ActionSpec,
        run: impl Fn(Caller, Value) -> ActionFuture<'static> + Send + Sync + 'static,
    ) -> Self {
        Self {
            spec,
            visible: Box::new(|_| true),
            run: Box::new(run),
        }
    }

    /// Limits who may see and run it.
    pub fn visible_to(mut self, check: impl Fn(&Caller) -> bool + Send + Sync + 'static) -> Self {
        self.visible = Box::new(check);
        self
    }
}

impl Action for FnAction {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }
    fn visible(&self, caller: &Caller) -> bool {
        (self.visible)(caller)
    }
    fn run<'a>(&'a self, caller: &'a Caller, input: Value) -> ActionFuture<'a> {
        (self.run)(caller.clone(), input)
    }
}

/// Why an action could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Two actions with one id.
    #[error("the action {0} is registered twice")]
    Duplicate(String),
    /// A schema that does not compile.
    #[error("the {which} schema of {id} is not a valid JSON Schema: {message}")]
    Schema {
        /// The action id.
        id: String,
        /// `input` or `output`.
        which: &'static str,
        /// Why.
        message: String,
    },
}

struct Entry {
    action: Arc<dyn Action>,
    id: String,
    tool: String,
    input: jsonschema::Validator,
    output: jsonschema::Validator,
}

/// Every registered action.
#[derive(Default)]
pub struct ActionsRegistry {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for ActionsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.id))
            .finish()
    }
}

fn compile(
    id: &str,
    which: &'static str,
    schema: &Value,
) -> Result<jsonschema::Validator, RegistryError> {
    jsonschema::validator_for(schema).map_err(|e| RegistryError::Schema {
        id: id.to_string(),
        which,
        message: e.to_string(),
    })
}

/// `/filter/0/kind` as `filter[0].kind`, for messages.
fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        if segment.chars().all(|c| c.is_ascii_digit()) && !segment.is_empty() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment.replace("~1", "/").replace("~0", "~"));
        }
    }
    out
}

fn describe_errors(validator: &jsonschema::Validator, value: &Value) -> Option<String> {
    if validator.is_valid(value) {
        return None;
    }
    let messages: Vec<String> = validator
        .iter_errors(value)
        .map(|e| {
            let path = field_path(e.instance_path().as_str());
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{path}: {e}")
            }
        })
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}

impl ActionsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an action; its schemas must compile and its id be new.
    pub fn register(&mut self, action: Arc<dyn Action>) -> Result<(), RegistryError> {
        let spec = action.spec();
        let id = spec.id();
        if self.entries.iter().any(|e| e.id == id) {
            return Err(RegistryError::Duplicate(id));
        }
        let input = compile(&id, "input", &spec.input_schema)?;
        let output = compile(&id, "output", &spec.output_schema)?;
        let tool = tool_name(&spec.plugin_id, &spec.name);
        self.entries.push(Entry {
            id,
            tool,
            input,
            output,
            action,
        });
        Ok(())
    }

    /// The actions `caller` may see, in registration order.
    pub fn list<'a>(&'a self, caller: &Caller) -> Vec<&'a ActionSpec> {
        self.entries
            .iter()
            .filter(|e| e.action.visible(caller))
            .map(|e| e.action.spec())
            .collect()
    }

    /// The id of the action a tool name (or the old dotted `pluginId.name`, or the id itself)
    /// stands for; the first registered wins on a clash.
    pub fn resolve_tool(&self, name: &str) -> Option<String> {
        self.entries
            .iter()
            .find(|e| {
                let spec = e.action.spec();
                e.tool == name
                    || e.id == name
                    || (name.len() == spec.plugin_id.len() + 1 + spec.name.len()
                        && name.starts_with(spec.plugin_id.as_str())
                        && name[spec.plugin_id.len()..].starts_with('.')
                        && name.ends_with(spec.name.as_str()))
            })
            .map(|e| e.id.clone())
    }

    /// The tool name of action `id`.
    pub fn tool_of(&self, id: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.tool.as_str())
    }

    /// The spec of action `id` if `caller` may see it.
    pub fn spec_for(&self, caller: &Caller, id: &str) -> Option<&ActionSpec> {
        self.entries
            .iter()
            .find(|e| e.id == id && e.action.visible(caller))
            .map(|e| e.action.spec())
    }

    /// Runs action `id` for `caller`: unknown or invisible → `NotFoundError`; input checked
    /// against the schema (`InputError` naming the field); output checked too.
    pub async fn invoke(
        &self,
        caller: &Caller,
        id: &str,
        input: Value,
    ) -> Result<Value, ActionError> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.id == id && e.action.visible(caller))
            .ok_or_else(|| ActionError::not_found(format!("Action \"{id}\" not found")))?;
        if let Some(problems) = describe_errors(&entry.input, &input) {
            return Err(ActionError::input(format!(
                "Invalid input to {id}: {problems}"
            )));
        }
        let output = entry.action.run(caller, input).await?;
        if let Some(problems) = describe_errors(&entry.output, &output) {
            tracing::error!(action = %id, %problems, "an action's output does not match its schema");
            return Err(ActionError::internal(format!(
                "{id} produced output that does not match its schema"
            )));
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Echo(ActionSpec);
    impl Action for Echo {
        fn spec(&self) -> &ActionSpec {
            &self.0
        }
        fn visible(&self, caller: &Caller) -> bool {
            caller.is_user()
        }
        fn run<'a>(&'a self, _: &'a Caller, input: Value) -> ActionFuture<'a> {
            Box::pin(async move { Ok(json!({"echo": input["text"]})) })
        }
    }

    fn echo() -> Arc<dyn Action> {
        Arc::new(Echo(ActionSpec {
            plugin_id: "test".into(),
            name: "echo-text".into(),
            title: "Echo".into(),
            description: "Echoes".into(),
            input_schema: json!({"type": "object", "properties": {"text": {"type": "string"}, "opts": {"type": "object", "properties": {"n": {"type": "integer"}}}}, "required": ["text"]}),
            output_schema: json!({"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]}),
            attributes: Attributes {
                read_only: true,
                idempotent: true,
                destructive: false,
            },
        }))
    }

    #[tokio::test]
    async fn names_visibility_and_validation() {
        assert_eq!(
            tool_name("catalog", "get-catalog-entity"),
            "catalog_get_catalog_entity"
        );
        assert_eq!(tool_name("My-Plugin", "do..it!"), "my_plugin_do_it_");
        let mut registry = ActionsRegistry::new();
        registry.register(echo()).unwrap();
        assert!(matches!(
            registry.register(echo()),
            Err(RegistryError::Duplicate(_))
        ));
        let user = Caller {
            subject: "user:default/jane".into(),
            ownership_refs: vec![],
        };
        let service = Caller {
            subject: "external:ci".into(),
            ownership_refs: vec![],
        };
        assert_eq!(registry.list(&user).len(), 1);
        assert!(registry.list(&service).is_empty());
        for name in ["test_echo_text", "test.echo-text", "test:echo-text"] {
            assert_eq!(
                registry.resolve_tool(name).as_deref(),
                Some("test:echo-text"),
                "{name}"
            );
        }
        assert!(registry.resolve_tool("test_echo").is_none());
        let out = registry
            .invoke(&user, "test:echo-text", json!({"text": "hi"}))
            .await
            .unwrap();
        assert_eq!(out, json!({"echo": "hi"}));
        let err = registry
            .invoke(
                &user,
                "test:echo-text",
                json!({"text": 1, "opts": {"n": "x"}}),
            )
            .await
            .unwrap_err();
        assert_eq!(err.name, "InputError");
        assert!(
            err.message.contains("text: 1 is not of type \"string\""),
            "{}",
            err.message
        );
        assert!(err.message.contains("opts.n:"), "{}", err.message);
        let err = registry
            .invoke(&user, "test:echo-text", json!({}))
            .await
            .unwrap_err();
        assert!(
            err.message.contains("\"text\" is a required property"),
            "{}",
            err.message
        );
        let err = registry
            .invoke(&service, "test:echo-text", json!({"text": "hi"}))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "NotFoundError: Action \"test:echo-text\" not found"
        );
    }
}
