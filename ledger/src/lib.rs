//! ledger
#![forbid(unsafe_code)]
