//! The binary's commands, one file each, each entered by one function that
//! `main` calls (`run`). Binary modules, not the library's: only here is
//! anyhow used. Order, lowest first (a module imports only those before
//! it, and no command imports another): `args` (the flags), `common`
//! (clock, keys, JSON printing), then the commands.

pub mod args;
pub mod common;

pub mod audit;
pub mod bench;
pub mod demo;
pub mod fsck;
pub mod init;
pub mod intake;
pub mod log;
pub mod participant;
pub mod request;
pub mod revoke;
pub mod serve;
pub mod witness;
