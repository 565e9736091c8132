//! Bounds on the work and the state a stranger can make the gateway take
//! on: how fast one source may ask ([`rate`]), and how much of a store of
//! short-lived items one owner may hold ([`shares`]).
//!
//! Two rules hold throughout:
//! - **Unauthenticated work counts against its source** (the address a
//!   request is from, [`crate::source`]); only authenticated work counts
//!   against an agency or a participant. A stranger therefore cannot use
//!   up anyone's quota but their own address's.
//! - **Nobody's entry makes room for anybody else's.** A full share
//!   refuses its owner only; a full store refuses everyone until items
//!   expire, it never evicts a live item of another owner. (The rate
//!   table may forget a source, but forgetting only ever gives that source
//!   a fresh allowance, so it cannot be used against anyone.)

pub mod rate;
pub mod shares;

use crate::problem::Problem;

/// Why a request was refused before any work was done for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// This source asked faster than its rate allows.
    #[error("too many requests from your address; try again in {retry_after_secs} s")]
    TooFast { retry_after_secs: u64 },
    /// This owner already holds its whole share of the store.
    #[error("too many of yours are waiting; try again in {retry_after_secs} s")]
    ShareFull { retry_after_secs: u64 },
    /// The store is full for everyone: many owners each at their share.
    #[error("the gateway is busy; try again in {retry_after_secs} s")]
    StoreFull { retry_after_secs: u64 },
}

impl Refused {
    pub fn retry_after_secs(&self) -> u64 {
        match *self {
            Refused::TooFast { retry_after_secs }
            | Refused::ShareFull { retry_after_secs }
            | Refused::StoreFull { retry_after_secs } => retry_after_secs,
        }
    }

    /// The answer: 429 for what this source (or owner) did, 503 for a
    /// store full for everyone; both with `Retry-After`. `what` names the
    /// work in plain words ("sign-in challenges").
    pub fn problem(&self, what: &str) -> Problem {
        let retry_after_secs = self.retry_after_secs();
        match self {
            Refused::TooFast { .. } => Problem::RateLimited {
                detail: format!(
                    "too many {what} asked from your address; try again in {retry_after_secs} s"
                ),
                retry_after_secs,
            },
            Refused::ShareFull { .. } => Problem::TooManyWaiting {
                detail: format!(
                    "your address already has as many {what} waiting as it may; try again in {retry_after_secs} s"
                ),
                retry_after_secs,
            },
            Refused::StoreFull { .. } => Problem::Busy {
                detail: format!("too many {what} in progress; try again in {retry_after_secs} s"),
                retry_after_secs,
            },
        }
    }
}

/// Seconds from `now` to `at`, at least one: a `Retry-After` of 0 would
/// invite an immediate retry that is refused again.
pub(crate) fn secs_until(now: i64, at: i64) -> u64 {
    u64::try_from(at.saturating_sub(now)).unwrap_or(0).max(1)
}
