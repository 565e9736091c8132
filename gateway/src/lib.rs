//! # gateway — Consentry's HTTP service and the `consentry` binary
//!
//! **One job:** stand between agencies, participants and auditors and the
//! ledger: verify who is asking, ask `policy`, log the decision durably, and
//! only then let data move. Only this crate speaks HTTP.
//!
//! **Layout**
//! - [`app`]: the public `Router` from the parts below (testable without a
//!   socket), `metrics_app` (`/metrics`, on a listener of its own), `run`,
//!   the HTTP limits, `POST /v1/entries`.
//! - [`agency`]: the proxy path: authenticate, decide, forward, filter,
//!   release.
//! - [`deployment`]: the log plus the consent state replayed from it; the
//!   one path by which entries are checked and appended.
//! - `audit` (its own crate, `gateway/audit/`, beside this one): replay,
//!   the read-only whole-log check, the auditor's verify and report;
//!   `ledger` and `policy` only. The binary's `consentry audit` and
//!   `fsck` call it; this crate shares its tile formats and key decoding.
//! - [`config`]: `consentry.toml` and `consentry init`.
//! - [`upstream`]: the sample record systems (demo and tests).
//! - [`httpsig`]: RFC 9421 HTTP Message Signatures (Ed25519) and RFC 9530
//!   `Content-Digest`, with a bounded nonce replay cache.
//! - [`server`]: health and the public auditor read routes.
//! - [`listener`], [`clock`], [`problem`]: bounded connections (in all and
//!   per source address) and idle watch, injected time, RFC 9457 problem
//!   documents.
//! - [`source`]: who a request is from (the peer, or behind a configured
//!   trusted proxy the forwarded client); [`quota`]: rates per source and
//!   stores with a share per owner, expired in O(log n).
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
//! - No record byte reaches an agency before its `access.decided` and
//!   `access.released` entries are durable.
//!
//! **Never:** hold a participant's private key; release record data before
//! a durable decision entry; panic on a request.

#![forbid(unsafe_code)]

pub mod agency;
pub mod app;
pub mod auditor;
pub mod bench;
pub mod client;
pub mod clock;
pub mod config;
pub mod demo;
pub mod deployment;
pub mod httpsig;
pub mod listener;
pub mod logview;
pub mod participant;
pub mod problem;
pub mod quota;
pub mod server;
pub mod source;
pub mod upstream;
pub mod witness;
