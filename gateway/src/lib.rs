//! # gateway — Consentry's HTTP service and the `consentry` binary
//!
//! **One job:** stand between agencies, participants and auditors and the
//! ledger: verify who is asking, ask `policy`, log the decision durably, and
//! only then let data move. Only this crate speaks HTTP.
//!
//! **Layout**
//! - [`deployment`]: the log plus the consent state replayed from it; the
//!   one path by which state-changing entries are verified and appended.
//! - [`httpsig`]: RFC 9421 HTTP Message Signatures (Ed25519) and RFC 9530
//!   `Content-Digest`, with a bounded nonce replay cache.
//! - [`server`]: axum routes: `/healthz`, `/metrics`, the auditor's
//!   checkpoint and proofs.
//! - [`demo`]: the ready-made sample deployment.
//!
//! **Invariants**
//! - The consent state is always the replay of exactly the log's enqueued
//!   prefix: under one short lock an entry is checked, enqueued (fixing its
//!   index) and applied; nothing is answered before it is durable, and a
//!   failed write stops the deployment until a restart replays the log.
//! - Every key used to verify an entry comes from the ledger's registry or
//!   the deployment's trust roots, never from configuration alone.
//!
//! **Never:** hold a participant's private key; release record data before
//! a durable decision entry; panic on a request.

#![forbid(unsafe_code)]

pub mod agency;
pub mod app;
pub mod audit;
pub mod clock;
pub mod config;
pub mod demo;
pub mod deployment;
pub mod httpsig;
pub mod listener;
pub mod server;
pub mod upstream;
