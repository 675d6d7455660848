//! The embedded model chooses the code-search tool for the product page's example question, among
//! six other tools, and writes a query about Backstage plugins. Runs when `PORTICO_TEST_MODEL`
//! names a GGUF file (the test script installs the 0.5B model and sets it); without it the test
//! says so and passes, but with it set the model must be there.

use std::path::PathBuf;

use portico_assistant::model::{
    ChatRequest, FinishReason, Message, ModelConfig, ModelProvider, Role, ToolDef,
};
use portico_llama::{EmbeddedProvider, EmbeddedSettings};
use serde_json::json;

fn tools() -> Vec<ToolDef> {
    let def = |name: &str, description: &str, parameters: serde_json::Value| ToolDef {
        name: name.into(),
        description: description.into(),
        parameters,
    };
    let string = json!({"type": "string"});
    vec![
        def(
            "github_create_issue",
            "Create a new issue in a GitHub repository",
            json!({"type": "object", "properties": {"owner": string, "repo": string, "title": string, "body": string}, "required": ["owner", "repo", "title"]}),
        ),
        def(
            "github_list_pull_requests",
            "List pull requests in a GitHub repository",
            json!({"type": "object", "properties": {"owner": string, "repo": string, "state": {"type": "string", "enum": ["open", "closed", "all"]}}, "required": ["owner", "repo"]}),
        ),
        def(
            "github_search_code",
            "Search for code across GitHub repositories: files, symbols and text matching a query",
            json!({"type": "object", "properties": {"query": {"type": "string", "description": "Search query using GitHub code search syntax"}, "perPage": {"type": "number"}}, "required": ["query"]}),
        ),
        def(
            "filesystem_read_file",
            "Read the complete contents of a file from the file system",
            json!({"type": "object", "properties": {"path": string}, "required": ["path"]}),
        ),
        def(
            "catalog_get_catalog_entity",
            "Get a single entity from the software catalog by its kind, namespace and name",
            json!({"type": "object", "properties": {"kind": string, "namespace": string, "name": string}, "required": ["name"]}),
        ),
        def(
            "catalog_list_mcp_servers",
            "List the MCP servers registered in the catalog",
            json!({"type": "object", "properties": {}}),
        ),
        def(
            "jira_create_issue",
            "Create a Jira issue in a project",
            json!({"type": "object", "properties": {"project": string, "summary": string, "description": string}, "required": ["project", "summary"]}),
        ),
    ]
}

fn model_path() -> Option<PathBuf> {
    match std::env::var_os("PORTICO_TEST_MODEL") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "PORTICO_TEST_MODEL is {} but there is no model there: run `portico model install --size 0.5b`",
                p.display()
            );
            Some(p)
        }
        None => {
            eprintln!("PORTICO_TEST_MODEL is not set: the embedded model test does not run");
            None
        }
    }
}

#[tokio::test]
async fn the_product_page_question_calls_code_search_about_backstage_plugins() {
    let Some(path) = model_path() else { return };
    let settings = EmbeddedSettings::from_config(&ModelConfig::default(), path).unwrap();
    let provider = EmbeddedProvider::load(settings).unwrap();
    let request = ChatRequest {
        messages: vec![
            Message::text(
                Role::System,
                "You are Portico, an assistant for a software catalog.",
            ),
            Message::text(
                Role::User,
                "Please search for TypeScript files that define Backstage plugins",
            ),
        ],
        tools: tools(),
    };
    let response = provider.complete(&request, None).await.unwrap();
    assert_eq!(response.finish, FinishReason::ToolCalls, "{response:?}");
    let call = &response.tool_calls[0];
    assert_eq!(call.name, "github_search_code", "{response:?}");
    let query = call.arguments["query"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        query.contains("backstage") && query.contains("plugin"),
        "the query is not about Backstage plugins: {query:?}"
    );

    // After the tool's result the model answers in text, streamed as deltas.
    let mut next = request.clone();
    let mut assistant = Message::text(Role::Assistant, "");
    assistant.tool_calls = response.tool_calls.clone();
    next.messages.push(assistant);
    next.messages.push(Message::tool_result(
        call.id.clone(),
        "plugins/catalog/src/plugin.ts: export const catalogPlugin = createPlugin({ id: 'catalog' })",
    ));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let answer = provider.complete(&next, Some(tx)).await.unwrap();
    let mut streamed = String::new();
    while let Ok(delta) = rx.try_recv() {
        streamed.push_str(&delta);
    }
    assert_eq!(answer.finish, FinishReason::Stop, "{answer:?}");
    assert!(
        answer.tool_calls.is_empty() && !answer.text.is_empty(),
        "{answer:?}"
    );
    assert_eq!(streamed, answer.text);
}
