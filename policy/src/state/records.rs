//! The compact records the state is made of: interned codes, agencies,
//! participants, keys and fixed-size consents whose lists live in one
//! shared pool. Nothing here is seen outside the crate; readers get the
//! shapes in `views`.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::ops::Range;

use crate::event::Role;
use crate::vocab::parent_code;
use crate::words::Language;

use super::ApplyError;

/// "No such item" in the u32 links below.
pub(super) const NONE: u32 = u32::MAX;
/// Tags a (participant, class) key apart from a (participant, agency) key.
pub(super) const CLASS_KEY_BIT: u64 = 1 << 31;

/// Interns codes to u32 ids, keeping each code's parent so that "covers" is
/// a walk up a short chain of integers.
#[derive(Clone, Debug, Default)]
pub(super) struct Codes {
    pub(super) ids: HashMap<Box<str>, u32>,
    pub(super) entries: Vec<(Box<str>, u32)>,
}

impl Codes {
    pub(super) fn get(&self, code: &str) -> Option<u32> {
        self.ids.get(code).copied()
    }

    pub(super) fn intern(&mut self, code: &str) -> Result<u32, ApplyError> {
        if let Some(id) = self.get(code) {
            return Ok(id);
        }
        let parent = match parent_code(code) {
            Some(p) => self.intern(p)?,
            None => NONE,
        };
        let id = u32::try_from(self.entries.len()).map_err(|_| ApplyError::Capacity)?;
        self.entries.push((code.into(), parent));
        self.ids.insert(code.into(), id);
        Ok(id)
    }

    pub(super) fn name(&self, id: u32) -> &str {
        self.entries.get(id as usize).map(|e| &*e.0).unwrap_or("")
    }

    /// True if `granted` is `requested` or one of its ancestors.
    pub(super) fn covers(&self, granted: u32, requested: u32) -> bool {
        let mut at = requested;
        // Depth is bounded by the code length; the guard keeps a corrupt
        // chain from looping.
        for _ in 0..64 {
            if at == granted {
                return true;
            }
            match self.entries.get(at as usize) {
                Some(&(_, parent)) if parent != NONE => at = parent,
                _ => return false,
            }
        }
        false
    }
}

#[derive(Clone, Debug)]
pub(crate) struct AgencyRec {
    pub(super) id: Box<str>,
    pub(super) name: Box<str>,
    /// The key it enrolled with; `key_id` is the current one.
    pub(super) enrolled_key_id: Box<str>,
    pub(super) key_id: Box<str>,
    pub(super) upstream: Box<str>,
    pub(super) upstream_client_certificate: bool,
    pub(crate) classes: Vec<u32>,
    pub(super) roles: Vec<Role>,
    pub(super) enrolled_at: i64,
    pub(crate) retired: bool,
}

impl AgencyRec {
    pub(crate) fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Clone, Debug)]
pub(super) struct ParticipantRec {
    pub(super) id: Box<str>,
    pub(super) key_id: Box<str>,
    pub(super) consents: Vec<u32>,
    /// The agency whose intake enrolled them.
    pub(super) enrolled_by: u32,
    /// Indexes into `ConsentState::grievances`.
    pub(super) grievances: Vec<u32>,
    pub(super) pending: Option<PendingRec>,
}

/// A requested move to a new key, waiting for its activation.
#[derive(Clone, Debug)]
pub(super) struct PendingRec {
    pub(super) key_id: Box<str>,
    /// Ledger index of the `participant.key_rotated` entry.
    pub(super) index: u64,
    pub(super) requested_at: i64,
    /// The first instant the gateway may activate it: `requested_at` plus
    /// the wait of the rules in force at the request.
    pub(super) ready_at: i64,
    pub(super) assisted_by: Box<str>,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum OwnerRec {
    Governance,
    Gateway,
    Agency(u32),
    Participant(u32),
}

#[derive(Clone, Debug)]
pub(super) struct KeyRec {
    pub(super) public_key: Box<str>,
    pub(super) owner: OwnerRec,
    pub(super) current: bool,
}

/// The slots of a consent's lists in the shared pool, in order.
pub(super) const HOLDER_AGENCIES: usize = 0;
pub(super) const HOLDER_CLASSES: usize = 1;
pub(super) const RECIPIENT_AGENCIES: usize = 2;
pub(super) const RECIPIENT_CLASSES: usize = 3;
pub(super) const CATEGORIES: usize = 4;
pub(super) const PURPOSES: usize = 5;

/// One consent, fixed size; its lists are ranges of `ConsentState::pool`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConsentRec {
    pub(crate) participant: u32,
    pub(super) id_start: u32,
    pub(super) pool_start: u32,
    pub(super) id_len: u16,
    pub(super) lens: [u8; 6],
    pub(super) language: Language,
    pub(crate) revoked: bool,
    /// Signed without an expiry; `ends_at` is then the rules' bound.
    pub(super) until_revoked: bool,
    pub(crate) effective_at: i64,
    /// The first instant it is no longer active: see `ConsentView::ends_at`.
    pub(crate) ends_at: i64,
    pub(super) signed_at: i64,
    pub(super) granted_index: u64,
}

impl ConsentRec {
    pub(super) fn range(&self, slot: usize) -> Range<usize> {
        let start = self.pool_start as usize
            + self
                .lens
                .get(..slot)
                .map(|l| l.iter().map(|&n| n as usize).sum::<usize>())
                .unwrap_or(0);
        let len = self.lens.get(slot).map(|&n| n as usize).unwrap_or(0);
        start..start + len
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Posting {
    pub(super) consent: u32,
    pub(super) next: u32,
}

pub(super) fn id_hash(id: &str) -> u64 {
    // A fixed-key hasher: the map stays the same across processes, which
    // keeps the state's behaviour reproducible.
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

pub(super) fn agency_key(participant: u32, agency: u32) -> u64 {
    (u64::from(participant) << 32) | u64::from(agency)
}

pub(super) fn class_key(participant: u32, class: u32) -> u64 {
    (u64::from(participant) << 32) | CLASS_KEY_BIT | u64::from(class)
}
