//! End-to-end tests over real loopback servers and the deployment's write
//! path: one test binary, one module per area (as ripgrep's
//! `tests/tests.rs`), so that each links the crate once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agency_keys;
mod agency_path;
mod audit_verify;
mod auditor_routes;
mod authority_matrix;
mod bad_input;
mod floods;
mod function_length;
mod idle_connections;
mod key_rotation;
mod metrics_listener;
mod participant_api;
mod portal_browser;
mod portal_pages;
mod refusal_flood;
mod rfc9421_vector;
mod security_review;
mod signed_requests;
mod subject_filter;
mod tls_rotation;
mod tls_server;
mod unknown_signers;
mod upstream_tls;
mod witness;
