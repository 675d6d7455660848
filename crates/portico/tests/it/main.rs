//! Tests of the `portico` command, run as a real process.

mod assistant_replicas;
mod catalog_client;
mod chat;
mod concurrent_writes;
mod durability;
mod serve_support;
mod validate;
