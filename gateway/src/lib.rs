//! gateway
#![forbid(unsafe_code)]
