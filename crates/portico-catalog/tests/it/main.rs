//! Integration tests of the catalog model, in one binary to keep link time down.

mod cases;
mod examples;
mod properties;
mod query;
mod query_engines;
mod service;
