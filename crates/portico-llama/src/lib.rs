//! Portico's embedded model: a GGUF model run in process through llama.cpp (`llama-cpp-2`), with
//! tool calls forced into valid JSON by a grammar built from the offered tools' schemas, and the
//! pinned models `portico model install` fetches. Kept out of `portico-assistant` so that crate's
//! tests never wait for llama.cpp's C++ build.

pub mod grammar;
pub mod install;
pub mod provider;
pub mod stream;

use std::path::Path;

use portico_assistant::model::ModelError;

pub use install::{Installed, PINNED, PinnedModel, installed, pinned};
pub use provider::{EmbeddedProvider, EmbeddedSettings};

/// Why the embedded model could not be installed, loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum LlamaError {
    /// The configuration is wrong; the message names the key.
    #[error("{0}")]
    Config(String),
    /// The model could not be loaded.
    #[error("{0}")]
    Load(String),
    /// The tools' schemas gave no usable grammar.
    #[error("{0}")]
    Grammar(String),
    /// The prompt could not be built.
    #[error("{0}")]
    Prompt(String),
    /// llama.cpp failed while reading the prompt or writing the answer.
    #[error("the embedded model failed: {0}")]
    Decode(String),
    /// The model wrote something the grammar should have prevented.
    #[error("{0}")]
    Output(String),
    /// The caller stopped waiting.
    #[error("cancelled")]
    Cancelled,
    /// Installing a model failed.
    #[error("{0}")]
    Install(String),
    /// The assembled model is not the pinned one.
    #[error("the downloaded model's sha256 is {actual}, not the pinned {expected}; it was deleted")]
    Checksum {
        /// The pinned digest.
        expected: String,
        /// What was downloaded.
        actual: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl LlamaError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        LlamaError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// The error as the assistant reports a model error.
    pub fn into_model_error(self) -> ModelError {
        match self {
            LlamaError::Config(m) | LlamaError::Load(m) => ModelError::Config(m),
            LlamaError::Cancelled => ModelError::Cancelled,
            other => ModelError::Protocol(other.to_string()),
        }
    }
}
