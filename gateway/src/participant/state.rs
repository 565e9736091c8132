//! What the participant's routes share, and nothing the agency path
//! holds: a handler extracts it from the server's state (axum's
//! `FromRef`), so this room never reaches the agency path's keys, nonces
//! or upstreams.

use std::sync::{Arc, RwLock};

use crate::clock::Clock;
use crate::deployment::Deployment;
use crate::origin::Origin;

use super::intake::{IntakeLimits, Intakes};
use super::session::{SessionLimits, Sessions};

pub struct Participants {
    pub dep: Arc<Deployment>,
    pub clock: Arc<dyn Clock>,
    /// `scheme://authority` participants sign against: the configured
    /// one, never the client's `Host` header.
    origin: Origin,
    /// Sign-in challenges and sessions.
    pub sessions: Sessions,
    /// Enrolments waiting for the agency's co-signature.
    pub intakes: Intakes,
    /// The witnesses and quorum this deployment publishes for its portal's
    /// "verified" mark (the text form of `ledger::WitnessPolicy`).
    witness_policy: RwLock<Option<ledger::WitnessPolicy>>,
}

impl Participants {
    pub fn new(
        dep: Arc<Deployment>,
        clock: Arc<dyn Clock>,
        origin: Origin,
        sessions: SessionLimits,
        intakes: IntakeLimits,
        witness_policy: Option<ledger::WitnessPolicy>,
    ) -> Self {
        Self {
            dep,
            clock,
            origin,
            sessions: Sessions::new(sessions),
            intakes: Intakes::new(intakes),
            witness_policy: RwLock::new(witness_policy),
        }
    }

    /// `scheme://authority`, as participants sign it.
    pub fn origin(&self) -> String {
        self.origin.to_string()
    }

    /// Sets the witness policy the portal checks checkpoints against.
    pub fn set_witness_policy(&self, policy: Option<ledger::WitnessPolicy>) {
        // The policy is replaced whole, never half-written: a poisoned
        // lock still holds a complete value.
        *self
            .witness_policy
            .write()
            .unwrap_or_else(|p| p.into_inner()) = policy;
    }

    pub fn witness_policy(&self) -> Option<ledger::WitnessPolicy> {
        self.witness_policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
