//! Tests of the `portico` command, run as a real process.

mod validate;
