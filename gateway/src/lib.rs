//! # gateway — Consentry's HTTP service and the `consentry` binary
//!
//! **One job:** stand between agencies, participants and auditors and the
//! ledger: verify who is asking, ask `policy`, log the decision durably, and
//! only then let data move. Only this crate speaks HTTP.
//!
//! **Layout**, every room in dependency order (each imports only the rooms
//! above it; `module_order` holds this):
//! - [`words`]: the headers and code systems more than one room speaks;
//!   imports nothing.
//! - [`clock`], [`origin`]: injected time; where the gateway is reached.
//! - [`source`]: who a request is from (the peer, or behind a configured
//!   trusted proxy the forwarded client); [`listener`]: bounded connections
//!   (in all and per source address) and the idle watch.
//! - [`tls`]: rustls for every side: the server's certificate (reloaded
//!   without a restart), the clients' trust, the deployment CA for pilots.
//! - [`httpsig`]: RFC 9421 HTTP Message Signatures (Ed25519) and RFC 9530
//!   `Content-Digest`, with a bounded nonce replay cache.
//! - [`deployment`]: the log plus the consent state replayed from it; the
//!   one path by which entries are checked and appended; its state read
//!   through one accessor that fail-stops on a poisoned lock.
//! - [`problem`]: every error answer as one `Problem` (RFC 9457).
//! - [`quota`]: rates per source and stores with a share per owner.
//! - [`upstream`]: the sample record systems (demo and tests).
//! - [`client`]: the agency's and the auditor's side of the wire.
//! - [`agency`]: the proxy path: authenticate, decide, forward, filter,
//!   release.
//! - [`participant`]: the participant's API, intake and portal, with their
//!   own state (sessions, intakes, the witness policy).
//! - [`auditor`]: tlog-tiles and cosignatures for auditors and witnesses.
//! - [`logview`], [`witness`], [`bench`]: `consentry log tail`, `consentry
//!   witness`, `consentry bench`.
//! - [`server`]: the server's own room: one `AppState` built from its
//!   `Settings`, `app()`, `metrics_app()`, `run`, the HTTP limits,
//!   `POST /v1/entries`, health and the log's read routes.
//! - [`config`]: `consentry.toml` and `consentry init`; [`demo`]: the
//!   ready-made sample deployment.
//! - `audit` (its own crate, `gateway/audit/`, beside this one): replay,
//!   the read-only whole-log check, the auditor's verify and report;
//!   `ledger` and `policy` only.
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

// The dependency order of the rooms is the layout's above, held by
// `module_order::ROOMS`.
pub mod agency;
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
pub mod origin;
pub mod participant;
pub mod problem;
pub mod quota;
pub mod server;
pub mod source;
pub mod tls;
pub mod upstream;
pub mod witness;
pub mod words;

#[cfg(test)]
mod module_order;
