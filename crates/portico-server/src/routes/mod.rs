//! HTTP routes, one module per area.

pub mod actions;
pub mod assistant;
pub mod auth;
pub mod catalog;
pub mod ops;
pub mod ui;
