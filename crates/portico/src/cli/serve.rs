//! `portico serve`: runs Portico. With no flags and no config file it uses SQLite in the data
//! directory, reads `examples/catalog/`, and listens on 127.0.0.1:7007.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use portico_server::config::{Config, ConfigSources};
use portico_server::serve::{ServeOptions, Started, serve};

/// Arguments of `portico serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file (app-config.yaml); repeat to layer several, later ones win.
    #[arg(long = "config", value_name = "FILE")]
    configs: Vec<PathBuf>,
    /// Where the SQLite database and the local API token live [env: PORTICO_DATA_DIR; default: the
    /// user data folder, e.g. ~/.local/share/portico].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Runs `portico serve` until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let config = Config::load(&ConfigSources {
        files: args.configs.clone(),
        env,
    })
    .context("loading configuration")?;
    let data_dir = data_dir(args.data_dir);
    let default_locations =
        if args.configs.is_empty() && std::path::Path::new("examples/catalog").is_dir() {
            vec![("file".to_string(), "examples/catalog".to_string())]
        } else {
            Vec::new()
        };
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map(Arc::new)
        .map_err(|e| tracing::warn!(error = %e, "metrics are off"))
        .ok();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let options = ServeOptions {
        config,
        data_dir: data_dir.clone(),
        default_locations,
        guest_by_default: args.configs.is_empty(),
    };
    runtime
        .block_on(serve(options, metrics, announce, shutdown_signal()))
        .context("serving")?;
    eprintln!("Portico stopped.");
    Ok(ExitCode::SUCCESS)
}

fn announce(started: &Started) {
    println!("Portico is listening on http://{}", started.address);
    if let Some((_, path)) = &started.generated_token {
        println!(
            "No backend.auth.externalAccess token is configured; a local API token is kept in {}:",
            path.display()
        );
        println!(
            "  curl -H \"Authorization: Bearer $(cat {})\" http://{}/api/catalog/mcp-servers",
            path.display(),
            started.address
        );
    }
    if started.guest {
        println!(
            "Guest sign-in is on (local use): curl -H 'X-Requested-With: XMLHttpRequest' http://{}/api/auth/guest/refresh",
            started.address
        );
    }
}

/// The data directory: `given`, else `PORTICO_DATA_DIR`, else the user data folder.
pub(crate) fn data_dir(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| std::env::var_os("PORTICO_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(default_data_dir)
}

/// The platform's user data folder for Portico.
fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("portico");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/portico"),
        None => PathBuf::from(".portico"),
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    eprintln!("Stopping: finishing in-flight requests and writes…");
}
