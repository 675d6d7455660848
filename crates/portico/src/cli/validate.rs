//! `portico validate PATH...`: one result per YAML document, with its file and line, the errors in
//! plain words and, for MCP servers, availability, transport and auth method.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use portico_catalog::{
    DocumentReport, RemotePolicy, ValidateOptions, ValidationError, validate_documents,
};
use serde_json::json;

/// Arguments of `portico validate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when every document is valid, 1 when any is not, 2 on usage or I/O errors."
)]
pub struct Args {
    /// Files, directories (searched recursively for *.yaml and *.yml) or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format: `text` for people, `json` for one JSON object per document.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Apply the public MCP registry's rules to remote URLs (https only, no localhost).
    #[arg(long)]
    registry_rules: bool,
    /// Refuse files larger than this many bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024, value_name = "BYTES")]
    max_file_size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Totals printed at the end of a text run.
#[derive(Default)]
struct Tally {
    documents: usize,
    invalid: usize,
    available_servers: usize,
    io_errors: usize,
}

/// Runs `portico validate`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = ValidateOptions {
        remote_policy: RemotePolicy {
            registry_rules: args.registry_rules,
        },
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut tally = Tally::default();
    for path in &args.paths {
        let files = match collect_files(path) {
            Ok(files) => files,
            Err(e) => {
                eprintln!("error: {}: {e:#}", path.display());
                tally.io_errors += 1;
                continue;
            }
        };
        for file in files {
            let name = if file.as_os_str() == "-" {
                "<stdin>".to_string()
            } else {
                file.display().to_string()
            };
            let reports = match read_limited(&file, args.max_file_size) {
                Ok(Ok(bytes)) => validate_documents(&bytes, &options),
                Ok(Err(too_big)) => vec![too_big],
                Err(e) => {
                    eprintln!("error: {name}: {e:#}");
                    tally.io_errors += 1;
                    continue;
                }
            };
            for report in &reports {
                tally.documents += 1;
                tally.invalid += usize::from(!report.errors.is_empty());
                tally.available_servers +=
                    usize::from(report.mcp.as_ref().is_some_and(|m| m.available));
                match args.format {
                    Format::Json => writeln!(out, "{}", json_line(&name, report))?,
                    Format::Text => write_text(&mut out, &name, report)?,
                }
            }
        }
    }
    if args.format == Format::Text {
        writeln!(
            out,
            "{} document(s): {} valid, {} invalid; {} available MCP server(s)",
            tally.documents,
            tally.documents - tally.invalid,
            tally.invalid,
            tally.available_servers
        )?;
    }
    Ok(if tally.io_errors > 0 {
        ExitCode::from(2)
    } else if tally.invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The files a path stands for: itself, `-`, or the YAML files under a directory, sorted.
fn collect_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.as_os_str() == "-" {
        return Ok(vec![path.to_path_buf()]);
    }
    let meta = std::fs::metadata(path).context("cannot read this path")?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The file's bytes, or a report saying it is over the size limit (checked before reading).
fn read_limited(path: &Path, limit: u64) -> anyhow::Result<Result<Vec<u8>, DocumentReport>> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut bytes)?;
    } else {
        let file = std::fs::File::open(path).context("cannot open file")?;
        let size = file.metadata()?.len();
        if size > limit {
            return Ok(Err(too_big(size, limit)));
        }
        file.take(limit + 1).read_to_end(&mut bytes)?;
    }
    if bytes.len() as u64 > limit {
        return Ok(Err(too_big(bytes.len() as u64, limit)));
    }
    Ok(Ok(bytes))
}

fn too_big(size: u64, limit: u64) -> DocumentReport {
    let message = format!(
        "the file is larger than the limit of {limit} bytes ({}{size} bytes); split it, or raise --max-file-size",
        if size > limit { "" } else { "over " }
    );
    DocumentReport {
        index: 0,
        line: 1,
        entity_ref: None,
        errors: vec![ValidationError::input(message)],
        mcp: None,
        entity: None,
    }
}

fn json_line(file: &str, report: &DocumentReport) -> serde_json::Value {
    let mut line = json!({
        "file": file,
        "doc": report.index,
        "line": report.line,
        "ok": report.errors.is_empty(),
        "errors": report.errors,
    });
    if let Some(entity_ref) = &report.entity_ref {
        line["entityRef"] = json!(entity_ref);
    }
    if let Some(mcp) = &report.mcp {
        line["mcp"] = json!(mcp);
    }
    line
}

fn write_text(out: &mut impl Write, file: &str, report: &DocumentReport) -> std::io::Result<()> {
    let what = report.entity_ref.as_deref().unwrap_or("document");
    let verdict = if report.errors.is_empty() {
        "valid"
    } else {
        "INVALID"
    };
    writeln!(
        out,
        "{file}:{} (document {}) {what}: {verdict}",
        report.line, report.index
    )?;
    for error in &report.errors {
        writeln!(out, "  error: {}", error.message)?;
    }
    if let Some(mcp) = &report.mcp {
        match &mcp.reason {
            None => writeln!(out, "  MCP server: available")?,
            Some(reason) => writeln!(out, "  MCP server: not available: {reason}")?,
        }
        if let Some(remote) = &mcp.transport {
            writeln!(out, "  transport: {} {}", remote.transport, remote.url)?;
        }
        if let Some(auth) = &mcp.auth {
            writeln!(out, "  auth: {auth}")?;
        }
    }
    Ok(())
}
