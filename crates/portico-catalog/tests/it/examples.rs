//! The product page's three examples, copied verbatim into `examples/catalog/`, are valid MCP
//! servers, available, with the transport and auth method the page describes.

use portico_catalog::{McpAuth, Transport, ValidateOptions, validate_documents};

fn report(file: &str) -> portico_catalog::DocumentReport {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/catalog")
        .join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reports = validate_documents(&bytes, &ValidateOptions::default());
    assert_eq!(reports.len(), 1, "{file} holds one entity");
    reports.remove(0)
}

fn assert_available(file: &str, url: &str, auth: McpAuth) {
    let report = report(file);
    assert!(report.errors.is_empty(), "{file}: {:?}", report.errors);
    let mcp = report.mcp.expect("an MCP server");
    assert!(mcp.available, "{file}: {:?}", mcp.reason);
    let remote = mcp.transport.expect("a transport");
    assert_eq!(
        (remote.transport, remote.url.as_str()),
        (Transport::StreamableHttp, url)
    );
    assert_eq!(mcp.auth, Some(auth));
}

#[test]
fn unauthenticated_example() {
    assert_available(
        "example-mcp.yaml",
        "https://example-mcp.spotify.net/mcp",
        McpAuth::None,
    );
}

#[test]
fn github_oauth_example() {
    let auth = McpAuth::OAuth {
        api_id: "core.auth.github".into(),
        provider: "github".into(),
        scopes: vec!["repo".into(), "read:packages".into(), "read:org".into()],
    };
    assert_available("github-mcp.yaml", "https://api.githubcopilot.com/mcp", auth);
}

#[test]
fn plugin_auth_example() {
    let auth = McpAuth::Plugin {
        plugin_id: "mcp-actions".into(),
    };
    assert_available(
        "mcp-actions.yaml",
        "https://your-portal.spotifyportal.com/api/mcp-actions/v1",
        auth,
    );
}

#[test]
fn examples_pass_the_public_registry_rules_too() {
    for file in ["example-mcp.yaml", "github-mcp.yaml", "mcp-actions.yaml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/catalog")
            .join(file);
        let options = ValidateOptions {
            remote_policy: portico_catalog::RemotePolicy {
                registry_rules: true,
            },
        };
        let reports = validate_documents(&std::fs::read(path).unwrap(), &options);
        assert!(
            reports[0].errors.is_empty(),
            "{file}: {:?}",
            reports[0].errors
        );
    }
}
