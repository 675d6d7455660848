//! Every tool schema Portico meets in its tests yields an output grammar for the embedded model
//! that llama.cpp accepts, with the tool's own parameters in it (not the "any object" fallback):
//! the built-in actions' schemas, and the tools server-everything and the code server publish,
//! listed live through Portico's MCP client. Each tool alone and all of them together, in both
//! field orders. The grammars are parsed by llama.cpp's sampler with the vocabulary of the model
//! in `PORTICO_TEST_MODEL` (the test script sets it); without it only the conversion is checked.

use std::time::Duration;

use portico_assistant::model::ToolFieldOrder;
use portico_catalog::service::{Catalog, CatalogOptions};
use portico_llama::grammar::{Choice, GrammarCheck, output_grammar};
use portico_mcp::actions::Caller;
use portico_mcp::{CancellationToken, Connector, Limits, Remote, TransportKind, UrlPolicy};
use serde_json::Value;

/// (name, input schema) of each built-in action.
async fn actions() -> Vec<(String, Value)> {
    let (store, _db) = portico_store::testing::stores()
        .await
        .into_iter()
        .next()
        .unwrap();
    let catalog = Catalog::new(store, CatalogOptions::default());
    let registry = portico_server::actions::registry(&catalog).unwrap();
    let caller = Caller {
        subject: "user:default/alice".into(),
        ownership_refs: vec!["user:default/alice".into()],
    };
    registry
        .list(&caller)
        .into_iter()
        .map(|spec| (spec.id(), spec.input_schema.clone()))
        .collect()
}

/// (name, input schema) of each tool the MCP server at the URL in `var` lists.
async fn listed(var: &str) -> Vec<(String, Value)> {
    let url = match std::env::var(var) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("{var} is not set: run ./scripts/test.sh (it starts the MCP peers)"),
    };
    let connector = Connector::new(UrlPolicy::loopback_allowed(), Limits::default()).unwrap();
    let cancel = CancellationToken::new();
    let session = connector
        .connect(
            &Remote {
                transport: TransportKind::StreamableHttp,
                url,
            },
            None,
            &cancel,
        )
        .await
        .unwrap();
    let tools = tokio::time::timeout(Duration::from_secs(30), session.list_tools(&cancel))
        .await
        .unwrap()
        .unwrap();
    session.close().await;
    tools
        .into_iter()
        .map(|t| (t.name, t.input_schema))
        .collect()
}

/// The grammar for `tools` in `order`, checked by llama.cpp when `check` is given.
fn grammar(
    tools: &[(String, Value)],
    order: ToolFieldOrder,
    check: Option<&GrammarCheck>,
) -> String {
    let choices: Vec<Choice<'_>> = tools
        .iter()
        .map(|(name, parameters)| Choice { name, parameters })
        .collect();
    let names: Vec<&str> = tools.iter().map(|(n, _)| n.as_str()).collect();
    let text = output_grammar(&choices, order, true)
        .unwrap_or_else(|e| panic!("no grammar for {names:?}: {e}"));
    if let Some(check) = check {
        check
            .check(&text)
            .unwrap_or_else(|e| panic!("{names:?}: {e}\n{text}"));
    }
    text
}

#[tokio::test]
async fn the_tests_tool_schemas_give_grammars_llama_cpp_accepts() {
    let check = std::env::var_os("PORTICO_TEST_MODEL").map(|path| {
        GrammarCheck::load(std::path::Path::new(&path))
            .expect("PORTICO_TEST_MODEL names a model whose vocabulary loads")
    });
    if let Some(check) = &check {
        // The checker does refuse what llama.cpp cannot parse.
        assert!(check.check("root ::= (\"a\"").is_err());
    } else {
        eprintln!(
            "PORTICO_TEST_MODEL is not set: the grammars are converted but not parsed by llama.cpp"
        );
    }
    let sets = [
        ("actions", actions().await),
        (
            "server-everything",
            listed("PORTICO_TEST_MCP_EVERYTHING_HTTP").await,
        ),
        ("code server", listed("PORTICO_TEST_MCP_CODE_HTTP").await),
    ];
    for (set, tools) in &sets {
        assert!(tools.len() >= 5, "{set}: {tools:?}");
        for order in [ToolFieldOrder::ArgumentsFirst, ToolFieldOrder::ToolFirst] {
            grammar(tools, order, check.as_ref());
            for tool in tools {
                let text = grammar(std::slice::from_ref(tool), order, check.as_ref());
                // The tool's own properties are in the grammar: its schema was not replaced.
                let properties = tool.1.get("properties").and_then(Value::as_object);
                for property in properties.into_iter().flat_map(|p| p.keys()) {
                    assert!(
                        text.contains(&format!("\\\"{property}\\\"")),
                        "{set}: {} lost its property {property}:\n{text}",
                        tool.0
                    );
                }
            }
        }
    }
}
