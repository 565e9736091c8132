//! The tests that run this binary again as a child and kill it: in a
//! binary of their own, so that a child forked while another test holds a
//! store's lock cannot inherit that lock (a fork copies every open file).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod crash_deployment;
