//! The log from outside: model-based, crash, sync-order, tamper, vector and
//! Go interop tests: one test binary, one module per area (as ripgrep's
//! `tests/tests.rs`), so that each links the crate once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod fail_stop;
mod go_interop;
mod log;
mod tamper;
mod vectors;
