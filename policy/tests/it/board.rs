//! A community board instead of one governance key: a governance entry
//! counts distinct current members by public key against the quorum; the
//! same member twice, a non-member, the gateway's key count for nothing;
//! a deployment from before boards is a board of one with quorum 1.

use policy::{
    ApplyError, BoardMember, ConsentState, Event, GovernanceRules, Rules, Trust, Vocabulary, V1,
};

/// Policy does no crypto and never decodes a trust root: a distinct
/// string stands for a distinct public key.
fn key(n: u8) -> String {
    format!("public-key-{n}")
}

/// A board of three (gov, m1, m2), quorum 2.
fn board_of_three() -> Trust {
    Trust {
        board: vec![
            BoardMember {
                key_id: "m1".into(),
                public_key: key(2),
            },
            BoardMember {
                key_id: "m2".into(),
                public_key: key(3),
            },
        ],
        quorum: 2,
        ..Trust::single("gov", key(1), "gateway", key(9))
    }
}

fn rules(version: u32) -> Event {
    Event::GovernanceRules(GovernanceRules {
        v: V1,
        version,
        vocabulary: Vocabulary::default_recovery(),
        rules: Rules::default_recovery(),
        at: 1_700_000_000,
    })
}

/// Who may change the rules, as the signers' key ids say.
#[test]
fn a_governance_entry_needs_a_quorum_of_distinct_members() {
    let state = ConsentState::new(board_of_three());
    let table: [(&[&str], bool); 9] = [
        (&["gov", "m1"], true),
        (&["m1", "m2"], true),
        (&["gov", "m1", "m2"], true),
        (&["gov"], false),
        (&["m2"], false),
        (&["gov", "gov"], false),
        (&["gov", "gateway"], false),
        (&["gov", "stranger"], false),
        (&[], false),
    ];
    for (signers, accepted) in table {
        let got = state.check(&rules(1), signers);
        assert_eq!(got.is_ok(), accepted, "{signers:?}: {got:?}");
        if !accepted {
            assert!(
                matches!(got, Err(ApplyError::BelowQuorum { quorum: 2, .. })),
                "{signers:?}: {got:?}"
            );
        }
    }
}

#[test]
fn a_deployment_from_before_boards_is_a_board_of_one() {
    let state = ConsentState::new(Trust::single("governance", key(1), "gateway", key(9)));
    assert!(state.check(&rules(1), &["governance"]).is_ok());
    assert!(state.check(&rules(1), &["gateway"]).is_err());
}

#[test]
fn trust_roots_that_cannot_work_are_refused() {
    let mut t = board_of_three();
    assert_eq!(t.check(), Ok(()));
    t.quorum = 4;
    assert!(t
        .check()
        .unwrap_err()
        .contains("quorum of 4 for a board of 3"));
    t.quorum = 0;
    assert!(t.check().is_err());
    let mut t = board_of_three();
    t.board[1].public_key = key(1);
    assert!(
        t.check().unwrap_err().contains("listed twice"),
        "one key, two members"
    );
    let mut t = board_of_three();
    t.board[0].key_id = "gateway".into();
    assert!(t.check().is_err());
}

fn change(add: &[(&str, u8)], remove: &[&str], quorum: u32) -> Event {
    Event::BoardChanged(policy::BoardChanged {
        v: V1,
        add: add
            .iter()
            .map(|(id, k)| BoardMember {
                key_id: id.to_string(),
                public_key: base64_key(*k),
            })
            .collect(),
        remove: remove.iter().map(|r| r.to_string()).collect(),
        quorum,
        at: 1_700_000_000,
    })
}

/// A key an event's syntax check accepts (base64 of 32 bytes).
fn base64_key(n: u8) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let c = B64[n as usize % 64] as char;
    format!("{}=", c.to_string().repeat(43))
}

/// A board change needs the board in force before it; a removed member's
/// signature counts for nothing from the next entry on, and a member it
/// removes does not count toward it.
#[test]
fn a_board_change_is_signed_by_the_board_before_it_and_takes_effect_after() {
    let mut state = ConsentState::new(board_of_three());
    // One member alone cannot change the board, nor remove a member with
    // that member's own signature counted.
    assert!(state.check(&change(&[], &["m2"], 1), &["gov"]).is_err());
    assert!(matches!(
        state.check(&change(&[], &["m2"], 1), &["gov", "m2"]),
        Err(ApplyError::BelowQuorum { .. })
    ));
    // gov and m1 remove m2 and add m3, quorum 2.
    state
        .apply(1, &change(&[("m3", 4)], &["m2"], 2), &["gov", "m1"])
        .unwrap();
    assert!(matches!(
        state.check(&rules(1), &["gov", "m2"]),
        Err(ApplyError::BelowQuorum { members: 1, .. })
    ));
    assert!(state.check(&rules(1), &["m1", "m3"]).is_ok());
    // The board that no longer exists cannot change the board back.
    assert!(state
        .check(&change(&[("m2b", 5)], &[], 2), &["m2", "gov"])
        .is_err());
}

#[test]
fn a_board_change_refuses_a_key_held_twice_and_a_board_it_cannot_meet() {
    let state = ConsentState::new(board_of_three());
    let refused = |e: Event| match state.check(&e, &["gov", "m1"]) {
        Err(ApplyError::Board(why)) => why,
        other => panic!("{e:?}: {other:?}"),
    };
    assert!(refused(change(&[("gov", 7)], &[], 2)).contains("taken"));
    assert!(refused(change(&[("a", 7), ("b", 7)], &[], 2)).contains("already registered"));
    assert!(refused(change(&[], &["nobody"], 1)).contains("not a current member"));
    assert!(refused(change(&[], &["m2", "m2"], 1)).contains("named twice"));
    assert!(refused(change(&[], &["m2"], 3)).contains("quorum of 3 for a board of 2"));
}
