//! Subcommands of `portico`.

mod chat;
mod mcp;
mod model;
mod serve;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Portico: a self-hosted AI assistant for software catalogs.
#[derive(Debug, Parser)]
#[command(name = "portico", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Portico: the catalog API on 127.0.0.1:7007 (no config file needed).
    Serve(serve::Args),
    /// Check catalog YAML files the way a Backstage catalog reads them, and report MCP servers.
    Validate(validate::Args),
    /// Probe MCP servers: list tools, call one, or run as the conformance suite's client.
    Mcp(mcp::Args),
    /// Ask Portico's assistant from the terminal: one question, or a conversation line by line.
    Chat(chat::Args),
    /// The embedded offline model: install a pinned one, list what is installed.
    Model(model::Args),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Serve(args) => serve::run(args),
            Command::Validate(args) => validate::run(args),
            Command::Mcp(args) => mcp::run(args),
            Command::Chat(args) => chat::run(args),
            Command::Model(args) => model::run(args),
        }
    }
}
