//! The MCP server over the actions registry: tools are the actions the caller may see (and the
//! subset admits), named `pluginId_name`; results carry the output as text and as
//! `structuredContent`; known errors come back as `isError` results, everything else as JSON-RPC
//! errors.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler};
use serde_json::{Map, Value};

use super::filter::SubsetConfig;
use super::registry::{ActionSpec, ActionsRegistry, Caller};

/// One MCP server over the registry: all actions, or a named subset.
#[derive(Clone)]
pub struct ActionsServer {
    registry: Arc<ActionsRegistry>,
    subset: Option<Arc<SubsetConfig>>,
}

impl ActionsServer {
    /// Serves `registry`, limited to `subset` when given.
    pub fn new(registry: Arc<ActionsRegistry>, subset: Option<SubsetConfig>) -> Self {
        Self {
            registry,
            subset: subset.map(Arc::new),
        }
    }

    fn admits(&self, spec: &ActionSpec) -> bool {
        self.subset.as_ref().is_none_or(|s| s.filter.admits(spec))
    }

    fn tool(&self, spec: &ActionSpec) -> Tool {
        let object = |v: &Value| Arc::new(v.as_object().cloned().unwrap_or_else(Map::new));
        let name = self
            .registry
            .tool_of(&spec.id())
            .unwrap_or_default()
            .to_string();
        let mut annotations = ToolAnnotations::default();
        annotations.title = Some(spec.title.clone());
        annotations.read_only_hint = Some(spec.attributes.read_only);
        annotations.destructive_hint = Some(spec.attributes.destructive);
        annotations.idempotent_hint = Some(spec.attributes.idempotent);
        annotations.open_world_hint = Some(false);
        let mut tool = Tool::new(name, spec.description.clone(), object(&spec.input_schema));
        tool.title = Some(spec.title.clone());
        tool.output_schema = Some(object(&spec.output_schema));
        tool.annotations = Some(annotations);
        tool
    }
}

/// The caller the HTTP layer authenticated, carried in the request's extensions.
fn caller(context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
    match context.extensions.get::<http::request::Parts>() {
        Some(parts) => caller_of(parts).cloned(),
        None => Err(not_authenticated()),
    }
}

/// The caller the HTTP layer put in a request's extensions.
pub(super) fn caller_of(parts: &http::request::Parts) -> Result<&Caller, ErrorData> {
    parts
        .extensions
        .get::<Caller>()
        .ok_or_else(not_authenticated)
}

fn not_authenticated() -> ErrorData {
    ErrorData::invalid_request("not authenticated", None)
}

impl ServerHandler for ActionsServer {
    fn get_info(&self) -> ServerConfig {
        let (name, description) = match &self.subset {
            Some(s) => (s.name.clone(), s.description.clone()),
            None => (
                "portico-mcp-actions".to_string(),
                Some("Portico's built-in Portal Actions: the catalog and who you are.".to_string()),
            ),
        };
        let mut info = Implementation::new(name, env!("CARGO_PKG_VERSION"));
        info.description = description;
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(info)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = caller(&context)?;
        let mut tools: Vec<Tool> = Vec::new();
        for spec in self.registry.list(&caller) {
            if !self.admits(spec) {
                continue;
            }
            let tool = self.tool(spec);
            // On a name clash the first action keeps the name.
            if !tools.iter().any(|t| t.name == tool.name) {
                tools.push(tool);
            }
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller(&context)?;
        let arguments = request.arguments.unwrap_or_default();
        self.call(&caller, &request.name, arguments)
            .await
            .map(|outcome| outcome.into_result().into())
    }
}

/// How a tool call went, short of a JSON-RPC error.
pub(super) enum Outcome {
    /// The action's output.
    Output(Value),
    /// A known action error (`InputError: …`), reported as an `isError` result.
    Failed(String),
}

impl Outcome {
    /// The MCP result: the output as text and as `structuredContent`, or the error as text.
    pub(super) fn into_result(self) -> CallToolResult {
        match self {
            Outcome::Output(output) => {
                let mut result =
                    CallToolResult::success(vec![ContentBlock::text(output.to_string())]);
                result.structured_content = Some(output);
                result
            }
            Outcome::Failed(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
        }
    }
}

impl ActionsServer {
    /// Runs tool `name` as `caller`: an action they may not see (or the subset leaves out) is
    /// an unknown tool; an internal failure is a JSON-RPC error.
    pub(super) async fn call(
        &self,
        caller: &Caller,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<Outcome, ErrorData> {
        let unknown = || ErrorData::invalid_params(format!("Unknown tool: {name}"), None);
        let id = self.registry.resolve_tool(name).ok_or_else(unknown)?;
        let spec = self.registry.spec_for(caller, &id).ok_or_else(unknown)?;
        if !self.admits(spec) {
            return Err(unknown());
        }
        match self
            .registry
            .invoke(caller, &id, Value::Object(arguments))
            .await
        {
            Ok(output) => Ok(Outcome::Output(output)),
            Err(e) if e.is_internal() => Err(ErrorData::internal_error(e.message, None)),
            Err(e) => Ok(Outcome::Failed(e.to_string())),
        }
    }
}
