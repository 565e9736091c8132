//! The rules from outside: decision tables, the holes a review found, state
//! events, properties: one test binary, one module per area (as ripgrep's
//! `tests/tests.rs`), so that each links the crate once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod board;
mod decide_table;
mod holes;
mod properties;
mod state_events;
