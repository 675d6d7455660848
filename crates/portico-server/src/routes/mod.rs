//! HTTP routes, one module per area.

pub mod catalog;
pub mod ops;
