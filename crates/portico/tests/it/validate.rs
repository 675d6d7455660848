//! `portico validate`: one result per document with file and line, MCP details, JSON output, the
//! exit codes (0 valid, 1 invalid, 2 usage or I/O), and clear errors for hostile input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn portico(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("portico starts");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn the_product_page_examples_are_three_available_servers() {
    let out = portico(&["validate", "examples/catalog"], None);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "examples/catalog/github-mcp.yaml:1 (document 0) api:default/github-mcp: valid"
        ),
        "{text}"
    );
    assert!(
        text.contains("transport: streamable-http https://api.githubcopilot.com/mcp"),
        "{text}"
    );
    assert!(
        text.contains(
            "auth: oauth via github (core.auth.github), scopes repo read:packages read:org"
        ),
        "{text}"
    );
    assert!(
        text.contains("auth: plugin token for mcp-actions"),
        "{text}"
    );
    assert!(text.contains("auth: none"), "{text}");
    assert!(
        text.ends_with("3 document(s): 3 valid, 0 invalid; 3 available MCP server(s)\n"),
        "{text}"
    );
}

#[test]
fn json_output_has_one_object_per_document() {
    let out = portico(
        &[
            "validate",
            "--format",
            "json",
            "examples/catalog/example-mcp.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line["file"], "examples/catalog/example-mcp.yaml");
    assert_eq!(line["doc"], 0);
    assert_eq!(line["ok"], true);
    assert_eq!(line["errors"], serde_json::json!([]));
    assert_eq!(
        line["mcp"],
        serde_json::json!({"available": true,
            "transport": {"type": "streamable-http", "url": "https://example-mcp.spotify.net/mcp"},
            "auth": {"method": "none"}})
    );
}

const MIXED: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: platform-team}
spec: {type: team, children: []}
---
# an empty document is skipped
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: Bad Name
spec: {type: openapi, lifecycle: production, owner: platform-team, definition: x}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: dev-tools
  annotations: {mcp.spotify.com/schema-version: '2025-09-29'}
spec:
  type: mcp-server
  lifecycle: experimental
  owner: platform-team
  definition: '{name: com.example/dev, description: Dev tools, version: 1.0.0, remotes: [{type: sse, url: \"http://127.0.0.1:9/sse\"}]}'
";

#[test]
/// A document that opens with `---` starts on that line.
fn every_document_is_reported_with_its_line_and_invalid_ones_exit_1() {
    let out = portico(
        &["validate", "--format", "json", "-"],
        Some(MIXED.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    let summary: Vec<_> = lines
        .iter()
        .map(|l| (l["doc"].clone(), l["line"].clone(), l["ok"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (0.into(), 1.into(), true.into()),
            (2.into(), 7.into(), false.into()),
            (3.into(), 13.into(), true.into())
        ]
    );
    assert_eq!(lines[0]["file"], "<stdin>");
    assert!(
        lines[1]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("\"metadata.name\" is not valid")
    );
    assert_eq!(lines[2]["mcp"]["available"], false);
    assert_eq!(lines[2]["mcp"]["transport"]["type"], "sse");
    assert!(
        lines[2]["mcp"]["reason"]
            .as_str()
            .unwrap()
            .contains("experimental")
    );
}

#[test]
fn directories_are_searched_recursively_for_yaml_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    let group = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: g}\nspec: {type: team, children: []}\n";
    std::fs::write(dir.path().join("a/one.yaml"), group).unwrap();
    std::fs::write(dir.path().join("a/b/two.yml"), group).unwrap();
    std::fs::write(dir.path().join("a/b/notes.txt"), "not: yaml: at all").unwrap();
    let out = portico(
        &["validate", "--format", "json", dir.path().to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let files: Vec<String> = json_lines(&out)
        .iter()
        .map(|l| {
            l["file"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(files, ["two.yml", "one.yaml"]);
}

#[test]
fn usage_and_io_errors_exit_2() {
    assert_eq!(portico(&["validate"], None).status.code(), Some(2));
    let out = portico(&["validate", "does/not/exist.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does/not/exist.yaml"));
}

fn validate_bytes(bytes: &[u8], extra: &[&str]) -> (Option<i32>, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.yaml");
    std::fs::write(&path, bytes).unwrap();
    let mut args = vec!["validate", "--format", "json"];
    args.extend_from_slice(extra);
    args.push(path.to_str().unwrap());
    let out = portico(&args, None);
    (out.status.code(), json_lines(&out))
}

fn first_error(lines: &[serde_json::Value]) -> String {
    lines[0]["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn hostile_input_gets_a_clear_error() {
    let (code, lines) = validate_bytes(&vec![b'a'; 50 * 1024 * 1024], &[]);
    assert_eq!(code, Some(1));
    assert!(
        first_error(&lines).contains("larger than the limit of 10485760 bytes"),
        "{lines:?}"
    );

    let deep = format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let (code, lines) = validate_bytes(deep.as_bytes(), &[]);
    assert_eq!(code, Some(1));
    assert!(
        first_error(&lines).contains("nesting is too deep"),
        "{lines:?}"
    );

    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        bomb += &format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{prev}"); 9].join(",")
        );
    }
    let (code, lines) = validate_bytes(bomb.as_bytes(), &[]);
    assert_eq!(code, Some(1));
    assert!(first_error(&lines).contains("alias bomb"), "{lines:?}");

    let (code, lines) = validate_bytes(b"apiVersion: backstage.io/v1alpha1\nkind: \xc3\x28\n", &[]);
    assert_eq!(code, Some(1));
    assert!(first_error(&lines).contains("not valid UTF-8"), "{lines:?}");

    let (code, lines) = validate_bytes(b"kind: API\x1b[31m\n", &[]);
    assert_eq!(code, Some(1));
    assert!(
        first_error(&lines).contains("control character U+001B"),
        "{lines:?}"
    );
}

#[test]
fn the_size_limit_can_be_raised() {
    let big = format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: g\n  description: \"{}\"\nspec: {{type: team, children: []}}\n",
        "x".repeat(2000)
    );
    let (code, _) = validate_bytes(big.as_bytes(), &["--max-file-size", "1000"]);
    assert_eq!(code, Some(1));
    let (code, _) = validate_bytes(big.as_bytes(), &["--max-file-size", "100000"]);
    assert_eq!(code, Some(0));
}
