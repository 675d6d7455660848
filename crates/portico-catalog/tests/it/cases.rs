//! Table-driven rules: every `tests/cases/*.cases` file holds documents with the exact errors (and,
//! for MCP servers, the exact `mcp` report) that validating them must give. The expectations in
//! `backstage.cases` were produced by running the real `@backstage/catalog-model` on each document.
//!
//! Format: a case starts with `### case: <name>`, followed by `### error: <message>` lines (none
//! means valid), an optional `### mcp: <json>` line and an optional `### options: registry-rules`
//! line; the lines after that, up to the next case, are the YAML document.

use std::path::{Path, PathBuf};

use portico_catalog::{RemotePolicy, ValidateOptions, validate_documents};

struct Case {
    file: String,
    name: String,
    errors: Vec<String>,
    mcp: Option<serde_json::Value>,
    registry_rules: bool,
    body: String,
}

fn load(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).expect("case file is readable");
    let file = path.file_name().unwrap().to_string_lossy().to_string();
    let mut cases: Vec<Case> = Vec::new();
    let mut in_header = false;
    for line in text.split_inclusive('\n') {
        let directive = line.trim_end_matches(['\n', '\r']);
        if let Some(name) = directive.strip_prefix("### case: ") {
            cases.push(Case {
                file: file.clone(),
                name: name.to_string(),
                errors: Vec::new(),
                mcp: None,
                registry_rules: false,
                body: String::new(),
            });
            in_header = true;
            continue;
        }
        let case = cases.last_mut().expect("file starts with a case line");
        if in_header {
            if let Some(error) = directive.strip_prefix("### error: ") {
                case.errors.push(error.to_string());
                continue;
            }
            if let Some(mcp) = directive.strip_prefix("### mcp: ") {
                case.mcp = Some(serde_json::from_str(mcp).expect("### mcp: holds JSON"));
                continue;
            }
            if directive == "### options: registry-rules" {
                case.registry_rules = true;
                continue;
            }
            in_header = false;
        }
        case.body.push_str(line);
    }
    cases
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/cases exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cases"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_case_gives_exactly_its_expected_errors() {
    let cases: Vec<Case> = case_files().iter().flat_map(|f| load(f)).collect();
    let mut failures = Vec::new();
    for case in &cases {
        let options = ValidateOptions {
            remote_policy: RemotePolicy {
                registry_rules: case.registry_rules,
            },
        };
        let reports = validate_documents(case.body.as_bytes(), &options);
        let [report] = reports.as_slice() else {
            failures.push(format!(
                "{}/{}: expected one document, found {}",
                case.file,
                case.name,
                reports.len()
            ));
            continue;
        };
        let errors: Vec<&str> = report.errors.iter().map(|e| e.message.as_str()).collect();
        if errors != case.errors {
            failures.push(format!(
                "{}/{}:\n  expected {:#?}\n  found    {:#?}",
                case.file, case.name, case.errors, errors
            ));
        }
        if let Some(expected) = &case.mcp {
            let found = serde_json::to_value(&report.mcp).unwrap();
            if &found != expected {
                failures.push(format!(
                    "{}/{}: mcp\n  expected {expected}\n  found    {found}",
                    case.file, case.name
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        cases.len() >= 120,
        "the table holds only {} cases",
        cases.len()
    );
    let valid = cases.iter().filter(|c| c.errors.is_empty()).count();
    assert!(
        valid >= 20 && cases.len() - valid >= 60,
        "table needs both valid ({valid}) and invalid cases"
    );
}

#[test]
fn case_names_are_unique() {
    let mut names: Vec<String> = case_files()
        .iter()
        .flat_map(|f| load(f))
        .map(|c| format!("{}/{}", c.file, c.name))
        .collect();
    let total = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), total);
}

/// The one-pass shortcut never vouches for an entity the exact path rejects, and it does vouch
/// for the plainly valid ones (otherwise it would be dead weight).
#[test]
fn the_fast_path_agrees_with_the_exact_path() {
    let mut vouched = 0;
    let mut total = 0;
    for case in case_files().iter().flat_map(|f| load(f)) {
        for doc in portico_catalog::yaml::parse_documents(case.body.as_bytes()) {
            let Ok(Some(value)) = doc.content else {
                continue;
            };
            total += 1;
            if portico_catalog::fast_path_accepts(&value) {
                vouched += 1;
                let exact = portico_catalog::validate_backstage_exact(&value);
                assert!(
                    exact.is_empty(),
                    "{}/{}: fast path accepted, exact path says {exact:?}",
                    case.file,
                    case.name
                );
            }
        }
    }
    assert!(
        vouched >= 60,
        "the fast path vouched for only {vouched} of {total} documents"
    );
}
