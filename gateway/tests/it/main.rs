//! The `consentry` binary's commands, run as a user runs them: one test
//! binary, one module per area (as ripgrep's `tests/tests.rs`), so that
//! each links the crate once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod audit_cli;
mod demo_walkthrough;
mod fsck_cli;
mod init_serve;
mod participant_cli;
mod tls_cli;
mod witness_crash;
