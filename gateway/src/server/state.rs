//! The server's state: built once, from the settings, and split into the
//! substates the rooms' handlers extract (axum's `FromRef`). A handler
//! names only the part it needs, so the agency path cannot see the
//! participants' sessions and the portal cannot see the gateway's keys.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::agency::{self, Gateway};
use crate::clock::Clock;
use crate::deployment::Deployment;
use crate::origin::Origin;
use crate::participant::intake::IntakeLimits;
use crate::participant::session::SessionLimits;
use crate::participant::state::Participants;

/// Everything a gateway is started with beyond the deployment, its clock
/// and its key. The defaults are the ones `consentry.toml` documents.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `scheme://authority` agencies and participants sign against.
    pub public_url: String,
    pub agency: agency::Limits,
    pub sessions: SessionLimits,
    pub intakes: IntakeLimits,
    /// The witnesses and quorum the portal's "verified" mark asks for.
    pub witness_policy: Option<ledger::WitnessPolicy>,
    /// How record systems' certificates are trusted, and the gateway's
    /// own client certificate for the holders that ask for it.
    pub upstream_tls: agency::UpstreamTls,
}

impl Settings {
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into(),
            agency: agency::Limits::default(),
            sessions: SessionLimits::default(),
            intakes: IntakeLimits::default(),
            witness_policy: None,
            upstream_tls: agency::UpstreamTls::default(),
        }
    }
}

/// Why a gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    NoScheme(#[from] crate::origin::NoScheme),
    #[error(transparent)]
    Agency(#[from] agency::StartError),
}

/// The one state every public route is served from.
#[derive(Clone)]
pub struct AppState {
    pub dep: Arc<Deployment>,
    pub agency: Arc<Gateway>,
    pub participants: Arc<Participants>,
}

impl AppState {
    pub fn new(
        dep: Arc<Deployment>,
        clock: Arc<dyn Clock>,
        key: ed25519_dalek::SigningKey,
        settings: Settings,
    ) -> Result<Self, StateError> {
        let origin = Origin::parse(&settings.public_url)?;
        // One clock for the gateway and its deployment: a rotation's wait
        // is measured on the same time the handlers see.
        dep.set_clock(clock.clone());
        let agency = Gateway::new(
            dep.clone(),
            clock.clone(),
            key,
            origin.clone(),
            settings.agency,
            &settings.upstream_tls,
        )?;
        let participants = Participants::new(
            dep.clone(),
            clock,
            origin,
            settings.sessions,
            settings.intakes,
            settings.witness_policy,
        );
        Ok(Self {
            dep,
            agency: Arc::new(agency),
            participants: Arc::new(participants),
        })
    }
}

impl FromRef<AppState> for Arc<Deployment> {
    fn from_ref(s: &AppState) -> Self {
        s.dep.clone()
    }
}

impl FromRef<AppState> for Arc<Gateway> {
    fn from_ref(s: &AppState) -> Self {
        s.agency.clone()
    }
}

impl FromRef<AppState> for Arc<Participants> {
    fn from_ref(s: &AppState) -> Self {
        s.participants.clone()
    }
}
