//! HTTP tests of the server, driving the router directly (no sockets), on both databases.

mod catalog_api;
mod support;
