//! Reading locations: a `file` location is a file or a directory searched recursively for
//! `*.yaml`/`*.yml`; a `url` location is fetched over http(s). Each file read comes back with the
//! location reference Backstage would annotate its entities with.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest catalog file Portico reads; larger ones are refused with an error.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

/// One file of a location.
#[derive(Debug)]
pub struct SourceFile {
    /// Key of the file within its location (its path or URL).
    pub key: String,
    /// `file:/abs/path` or `url:https://…`, for the managed-by-location annotations.
    pub location_ref: String,
    /// The bytes, or why they could not be read.
    pub bytes: Result<Vec<u8>, String>,
}

/// Location types Portico reads.
pub const LOCATION_TYPES: &[&str] = &["file", "url"];

/// Reads every file of a location; `Err` when the location as a whole cannot be read.
pub async fn read_location(
    kind: &str,
    target: &str,
    http: &reqwest::Client,
) -> Result<Vec<SourceFile>, String> {
    match kind {
        "file" => read_file_location(Path::new(target)).await,
        "url" => Ok(vec![read_url(target, http).await]),
        other => Err(format!(
            "unsupported location type \"{other}\"; use one of: {}",
            LOCATION_TYPES.join(", ")
        )),
    }
}

async fn read_file_location(target: &Path) -> Result<Vec<SourceFile>, String> {
    let target = target.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let meta = std::fs::metadata(&target)
            .map_err(|e| format!("cannot read {}: {e}", target.display()))?;
        let files = if meta.is_dir() {
            yaml_files(&target)?
        } else {
            vec![target.clone()]
        };
        Ok(files.into_iter().map(read_one_file).collect())
    })
    .await
    .map_err(|e| format!("reading the location failed: {e}"))?
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(_)
                    if matches!(
                        path.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml")
                    ) =>
                {
                    files.push(path)
                }
                _ => {}
            }
        }
    }
    files.sort();
    Ok(files)
}

fn read_one_file(path: PathBuf) -> SourceFile {
    let absolute = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    let bytes = match std::fs::metadata(&path) {
        Ok(meta) if meta.len() > MAX_FILE_BYTES as u64 => Err(format!(
            "the file is larger than the limit of {MAX_FILE_BYTES} bytes ({} bytes)",
            meta.len()
        )),
        _ => std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display())),
    };
    SourceFile {
        key: absolute.display().to_string(),
        location_ref: format!("file:{}", absolute.display()),
        bytes,
    }
}

async fn read_url(target: &str, http: &reqwest::Client) -> SourceFile {
    let bytes = fetch(target, http).await;
    SourceFile {
        key: target.to_string(),
        location_ref: format!("url:{target}"),
        bytes,
    }
}

async fn fetch(target: &str, http: &reqwest::Client) -> Result<Vec<u8>, String> {
    let url = url::Url::parse(target).map_err(|e| format!("\"{target}\" is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("\"{target}\" must be an http or https URL"));
    }
    let mut response = http
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| format!("cannot fetch {target}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("fetching {target} answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading {target} failed: {e}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_FILE_BYTES {
            return Err(format!(
                "{target} is larger than the limit of {MAX_FILE_BYTES} bytes"
            ));
        }
    }
    Ok(body)
}
