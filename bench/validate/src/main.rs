//! `bench/validate`: how fast Portico validates catalog entities compared with Backstage's own
//! `@backstage/catalog-model` in Node, on the same generated corpus in the same run, and whether
//! the two agree on every entity.
//!
//! ```text
//! cargo run --release -p bench-validate -- [--entities N] [--portico-only]
//! ```
//!
//! Generates the corpus (written to `bench/validate/out/`), times Portico on one thread, then runs
//! `node bench/validate/node/bench.js` alone, compares verdicts and prints a table.

mod corpus;
mod emit;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use portico_catalog::{
    ValidateOptions, validate_backstage, validate_documents, validate_entity, yaml,
};
use serde_json::Value;

/// Entities generated when `--entities` is not given.
const DEFAULT_ENTITIES: usize = 100_000;
/// Seed of the corpus generator; fixed so that every run measures the same corpus.
const SEED: u64 = 0x5eed_cafe_f00d_b3c4;
/// Timed runs of each measurement, after one warm-up run.
const RUNS: usize = 5;
/// The speed-up over Backstage that Portico aims for on the like-for-like lines.
const GOAL: f64 = 20.0;
/// Full-rule timings are shown separately when they differ from the Backstage-only ones by more
/// than this fraction (run-to-run noise is well below it).
const NOTABLE_DIFFERENCE: f64 = 0.05;

/// Command-line settings.
struct Args {
    /// Size of the corpus.
    entities: usize,
    /// Time Portico only (no Node, no comparison): for profiling.
    portico_only: bool,
}

/// What the Node half prints: medians of entities per second, and one verdict per entity.
struct NodeResult {
    /// Already-parsed entities validated per second.
    parsed_per_sec: f64,
    /// YAML documents parsed and validated per second.
    yaml_per_sec: f64,
    /// How many entities Backstage accepts.
    valid: usize,
    /// Backstage's verdict for each entity, in corpus order.
    verdicts: Vec<bool>,
}

/// Generates the corpus, times Portico, then Backstage, and prints the table and the agreement.
/// The same allocator as the `portico` binary, so the figures are Portico's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let Args {
        entities,
        portico_only,
    } = parse_args();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = here.join("out");
    let node_dir = here.join("node");

    let corpus = corpus::generate(entities, SEED);
    let jsonl_path = out_dir.join("corpus.jsonl");
    let yaml_path = out_dir.join("corpus.yaml");
    let yaml_text = emit::yaml(&corpus.entities);
    std::fs::create_dir_all(&out_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", out_dir.display()));
    std::fs::write(&jsonl_path, emit::jsonl(&corpus.entities))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", jsonl_path.display()));
    std::fs::write(&yaml_path, &yaml_text)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", yaml_path.display()));
    check_yaml_round_trip(&corpus.entities, yaml_text.as_bytes());

    // Portico's verdicts and messages, outside any timing.
    let portico_errors: Vec<Vec<String>> = corpus
        .entities
        .iter()
        .map(|e| {
            validate_backstage(e)
                .into_iter()
                .map(|err| err.message)
                .collect()
        })
        .collect();
    let invalid = portico_errors
        .iter()
        .filter(|errors| !errors.is_empty())
        .count();
    let options = ValidateOptions::default();
    let full_invalid = corpus
        .entities
        .iter()
        .filter(|e| !validate_entity(e, &options).is_valid())
        .count();

    eprintln!("measuring Portico ({entities} entities, {RUNS} runs after a warm-up)...");
    let bytes = yaml_text.as_bytes();
    let n = corpus.entities.len();
    let parsed_backstage = measure(n, || {
        corpus
            .entities
            .iter()
            .filter(|e| validate_backstage(e).is_empty())
            .count()
    });
    let parsed_full = measure(n, || {
        corpus
            .entities
            .iter()
            .filter(|e| validate_entity(e, &options).is_valid())
            .count()
    });
    let yaml_backstage = measure(n, || {
        yaml::parse_documents(bytes)
            .into_iter()
            .filter(|doc| matches!(&doc.content, Ok(Some(value)) if validate_backstage(value).is_empty()))
            .count()
    });
    let yaml_full = measure(n, || {
        validate_documents(bytes, &options)
            .iter()
            .filter(|r| r.errors.is_empty())
            .count()
    });

    if portico_only {
        println!(
            "bench/validate: {n} entities ({invalid} invalid, {} MCP servers), Portico only",
            corpus.mcp_servers
        );
        for (label, rate) in [
            ("parsed entities", parsed_backstage),
            ("YAML parse + validate", yaml_backstage),
            ("parsed, full Portico rules", parsed_full),
            ("YAML, full Portico rules", yaml_full),
        ] {
            println!("{label:<38}{:>14}", format!("{}/s", thousands(rate)));
        }
        return;
    }
    eprintln!("measuring Backstage in Node (alone, after Portico)...");
    let node = run_node(&node_dir, &jsonl_path, &yaml_path);
    assert_eq!(
        node.verdicts.len(),
        n,
        "Node returned {} verdicts for {n} entities",
        node.verdicts.len()
    );

    println!();
    println!(
        "bench/validate: {n} entities ({invalid} invalid, {} MCP servers), one thread each",
        corpus.mcp_servers
    );
    println!(
        "{:<34}{:>14}{:>20}{:>9}{:>9}",
        "", "Portico", "Backstage (Node)", "ratio", "goal"
    );
    let goal = format!(">= {GOAL:.0}x");
    row(
        "parsed entities",
        parsed_backstage,
        node.parsed_per_sec,
        &goal,
    );
    row(
        "YAML parse + validate",
        yaml_backstage,
        node.yaml_per_sec,
        &goal,
    );
    let differs = |full: f64, stock: f64| ((full - stock) / stock).abs() > NOTABLE_DIFFERENCE;
    if differs(parsed_full, parsed_backstage) || differs(yaml_full, yaml_backstage) {
        row(
            "parsed, full Portico rules",
            parsed_full,
            node.parsed_per_sec,
            "",
        );
        row("YAML, full Portico rules", yaml_full, node.yaml_per_sec, "");
    }
    println!();
    println!(
        "Full Portico rules cover MCP server definitions, auth annotations and remotes as well; \
         they reject {} entities ({} more than the stock rules).",
        full_invalid,
        full_invalid.saturating_sub(invalid)
    );
    report_unexpected(&corpus, &portico_errors);
    report_agreement(&corpus, &portico_errors, &node);
}

/// Reads `--entities N` and `--portico-only`; anything else prints usage.
fn parse_args() -> Args {
    let usage = "usage: bench-validate [--entities N] [--portico-only]   (default 100000 entities)";
    let mut args = std::env::args().skip(1);
    let mut entities = DEFAULT_ENTITIES;
    let mut portico_only = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--entities" => {
                entities = args
                    .next()
                    .and_then(|v| v.replace('_', "").parse().ok())
                    .filter(|&n: &usize| n > 0)
                    .unwrap_or_else(|| {
                        eprintln!("--entities needs a positive number\n{usage}");
                        std::process::exit(2);
                    });
            }
            "--portico-only" => portico_only = true,
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other:?}\n{usage}");
                std::process::exit(2);
            }
        }
    }
    Args {
        entities,
        portico_only,
    }
}

/// Portico must read the YAML corpus back as exactly the entities it was written from; otherwise
/// the two halves of the benchmark would not measure the same input.
fn check_yaml_round_trip(entities: &[Value], bytes: &[u8]) {
    let documents = yaml::parse_documents(bytes);
    assert_eq!(
        documents.len(),
        entities.len(),
        "the YAML corpus has the wrong number of documents"
    );
    for (doc, entity) in documents.iter().zip(entities) {
        match &doc.content {
            Ok(Some(value)) if value == entity => {}
            other => panic!(
                "YAML document {} (line {}) does not read back as its entity: {other:?}",
                doc.index, doc.line
            ),
        }
    }
}

/// Runs `work` once to warm up and then [`RUNS`] times; the median rate in entities per second.
/// `work` returns the number of valid entities, which keeps the optimizer from skipping it.
fn measure(entities: usize, mut work: impl FnMut() -> usize) -> f64 {
    black_box(work());
    let mut rates: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(work());
            entities as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Installs the Node half if needed, runs it, and reads its one JSON line.
fn run_node(node_dir: &Path, jsonl: &Path, yaml: &Path) -> NodeResult {
    if !node_dir.join("node_modules").is_dir() {
        eprintln!("installing the Node half (npm ci)...");
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(node_dir)
            .stdout(Stdio::null())
            .status()
            .expect("cannot run npm; is Node.js installed?");
        assert!(
            status.success(),
            "npm ci in {} failed: {status}",
            node_dir.display()
        );
    }
    let script: PathBuf = node_dir.join("bench.js");
    let output = Command::new("node")
        // The YAML run holds the whole corpus's document trees at once.
        .arg("--max-old-space-size=8192")
        .arg(&script)
        .arg(jsonl)
        .arg(yaml)
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run node; is Node.js installed?");
    assert!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        output.status
    );
    let stdout = String::from_utf8(output.stdout).expect("bench.js printed text that is not UTF-8");
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .expect("bench.js printed nothing");
    let json: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bench.js printed {line:?}: {e}"));
    let number = |key: &str| {
        json[key]
            .as_f64()
            .unwrap_or_else(|| panic!("bench.js output has no number {key:?}"))
    };
    let verdicts = json["verdicts"]
        .as_str()
        .expect("bench.js output has no verdicts string");
    NodeResult {
        parsed_per_sec: number("parsedPerSec"),
        yaml_per_sec: number("yamlPerSec"),
        valid: number("valid") as usize,
        verdicts: verdicts.bytes().map(|b| b == b'1').collect(),
    }
}

/// One line of the table.
fn row(label: &str, portico: f64, node: f64, goal: &str) {
    let line = format!(
        "{label:<34}{:>14}{:>20}{:>8.1}x{goal:>9}",
        format!("{}/s", thousands(portico)),
        format!("{}/s", thousands(node)),
        portico / node
    );
    println!("{}", line.trim_end());
}

/// A rate rounded to a whole number, with thousands separators.
fn thousands(rate: f64) -> String {
    let digits = format!("{:.0}", rate);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Lists broken entities that Portico accepts and intact ones it rejects, if there are any: the
/// corpus is meant to be broken only where the generator broke it.
fn report_unexpected(corpus: &corpus::Corpus, portico_errors: &[Vec<String>]) {
    let mut accepted: Vec<(&str, usize)> = Vec::new();
    let mut rejected_intact = 0;
    for (damage, errors) in corpus.damage.iter().zip(portico_errors) {
        match (damage, errors.is_empty()) {
            (Some(what), true) => match accepted.iter_mut().find(|(w, _)| w == what) {
                Some((_, count)) => *count += 1,
                None => accepted.push((what, 1)),
            },
            (None, false) => rejected_intact += 1,
            _ => {}
        }
    }
    if accepted.is_empty() && rejected_intact == 0 {
        return;
    }
    println!(
        "Note: the generator broke {} entities; Portico's stock rules reject {} of them and {rejected_intact} intact ones.",
        corpus.damage.iter().filter(|d| d.is_some()).count(),
        corpus
            .damage
            .iter()
            .zip(portico_errors)
            .filter(|(d, e)| d.is_some() && !e.is_empty())
            .count(),
    );
    for (what, count) in accepted {
        println!("  accepted although broken ({what}): {count}");
    }
}

/// Compares Portico's stock-rule verdicts with Backstage's and shows the first disagreements.
fn report_agreement(corpus: &corpus::Corpus, portico_errors: &[Vec<String>], node: &NodeResult) {
    let disagreements: Vec<usize> = (0..portico_errors.len())
        .filter(|&i| portico_errors[i].is_empty() != node.verdicts[i])
        .collect();
    println!();
    println!(
        "Agreement with Backstage: {} disagreements in {} entities (Backstage: {} valid, Portico: {} valid).",
        disagreements.len(),
        portico_errors.len(),
        node.valid,
        portico_errors.iter().filter(|e| e.is_empty()).count()
    );
    for &i in disagreements.iter().take(3) {
        let verdict = |valid: bool| if valid { "valid" } else { "invalid" };
        println!();
        println!(
            "  entity #{i} (generator: {})",
            corpus.damage[i].unwrap_or("not broken")
        );
        println!("    {}", corpus.entities[i]);
        println!("    Portico:   {}", verdict(portico_errors[i].is_empty()));
        for message in &portico_errors[i] {
            println!("               {message}");
        }
        println!("    Backstage: {}", verdict(node.verdicts[i]));
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
    }
}
