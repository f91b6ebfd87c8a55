use super::*;

const OWNER: Actor = Actor {
    is_owner: true,
    is_manager: false,
    is_admin: false,
};
const OTHER: Actor = Actor {
    is_owner: false,
    is_manager: false,
    is_admin: false,
};
const MANAGER: Actor = Actor {
    is_owner: false,
    is_manager: true,
    is_admin: false,
};
const ADMIN: Actor = Actor {
    is_owner: false,
    is_manager: false,
    is_admin: true,
};

const STEPS: [Transition; 5] = [
    Transition::Submit,
    Transition::Approve,
    Transition::Return,
    Transition::Publish,
    Transition::Close,
];

/// The whole table, written out: every (step, from) pair that succeeds for someone allowed.
fn expected(step: Transition, from: ItemStatus) -> Option<ItemStatus> {
    use ItemStatus::*;
    match (step, from) {
        (Transition::Submit, Draft) => Some(Submitted),
        (Transition::Approve, Submitted) => Some(Approved),
        (Transition::Return, Submitted) => Some(Draft),
        (Transition::Return, Approved) => Some(Draft),
        (Transition::Publish, Approved) => Some(Published),
        (Transition::Close, Published) => Some(Closed),
        _ => None,
    }
}

fn allowed(step: Transition, actor: Actor) -> bool {
    match step {
        Transition::Submit => actor.is_owner || actor.is_admin,
        _ => actor.is_manager || actor.is_admin,
    }
}

#[test]
fn transition_table_is_exhaustive() {
    let mut successes = 0;
    for actor in [OWNER, OTHER, MANAGER, ADMIN] {
        for step in STEPS {
            for from in ItemStatus::ALL {
                let got = transition(from, step, actor);
                let want = if !allowed(step, actor) {
                    Err(Refusal::NotAllowed)
                } else {
                    expected(step, from).ok_or(Refusal::WrongStatus)
                };
                assert_eq!(got, want, "{step:?} from {from:?} by {actor:?}");
                successes += usize::from(got.is_ok());
            }
        }
    }
    // Owners: 1 (submit). Others: 0. Managers: 5 (approve, 2 returns, publish, close).
    // Admins: all 6.
    assert_eq!(successes, 1 + 5 + 6);
}

#[test]
fn an_owner_cannot_approve_or_publish_their_own_item() {
    assert_eq!(
        transition(ItemStatus::Submitted, Transition::Approve, OWNER),
        Err(Refusal::NotAllowed)
    );
    assert_eq!(
        transition(ItemStatus::Approved, Transition::Publish, OWNER),
        Err(Refusal::NotAllowed)
    );
    assert_eq!(
        transition(ItemStatus::Draft, Transition::Submit, MANAGER),
        Err(Refusal::NotAllowed)
    );
}

#[test]
fn edit_rules_for_every_status_and_actor() {
    use ItemStatus::*;
    let owner_admin = Actor {
        is_owner: true,
        is_manager: false,
        is_admin: true,
    };
    let cases: [(ItemStatus, Actor, Result<EditAs, Refusal>); 25] = [
        (Draft, OWNER, Ok(EditAs::Owner)),
        (Submitted, OWNER, Ok(EditAs::Owner)),
        (Approved, OWNER, Err(Refusal::WrongStatus)),
        (Published, OWNER, Err(Refusal::Published)),
        (Closed, OWNER, Err(Refusal::Published)),
        (Draft, OTHER, Err(Refusal::NotAllowed)),
        (Submitted, OTHER, Err(Refusal::NotAllowed)),
        (Approved, OTHER, Err(Refusal::NotAllowed)),
        (Published, OTHER, Err(Refusal::Published)),
        (Closed, OTHER, Err(Refusal::Published)),
        (Draft, MANAGER, Err(Refusal::NotAllowed)),
        (Submitted, MANAGER, Err(Refusal::NotAllowed)),
        (Approved, MANAGER, Err(Refusal::NotAllowed)),
        (Published, MANAGER, Err(Refusal::Published)),
        (Closed, MANAGER, Err(Refusal::Published)),
        (Draft, ADMIN, Ok(EditAs::AdminOverride)),
        (Submitted, ADMIN, Ok(EditAs::AdminOverride)),
        (Approved, ADMIN, Ok(EditAs::AdminOverride)),
        (Published, ADMIN, Err(Refusal::Published)),
        (Closed, ADMIN, Err(Refusal::Published)),
        // An admin editing their own draft is just its donor: no audit entry needed.
        (Draft, owner_admin, Ok(EditAs::Owner)),
        (Submitted, owner_admin, Ok(EditAs::Owner)),
        (Approved, owner_admin, Ok(EditAs::AdminOverride)),
        (Published, owner_admin, Err(Refusal::Published)),
        (Closed, owner_admin, Err(Refusal::Published)),
    ];
    for (status, actor, want) in cases {
        assert_eq!(may_edit(status, actor), want, "{status:?} by {actor:?}");
    }
}

#[test]
fn visibility() {
    for status in ItemStatus::ALL {
        assert!(may_view(status, OWNER));
        assert!(may_view(status, MANAGER));
        assert!(may_view(status, ADMIN));
        assert_eq!(may_view(status, OTHER), status.is_public());
    }
    assert!(ItemStatus::Published.is_public() && ItemStatus::Closed.is_public());
    assert!(!ItemStatus::Approved.is_public());
}

#[test]
fn names_round_trip() {
    for t in ItemType::ALL {
        assert_eq!(ItemType::parse(t.as_str()), Some(t));
        assert_eq!(
            serde_json::to_value(t).unwrap(),
            serde_json::json!(t.as_str())
        );
    }
    for s in ItemStatus::ALL {
        assert_eq!(ItemStatus::parse(s.as_str()), Some(s));
    }
    assert_eq!(ItemType::parse("auction"), None);
}

fn input(item_type: ItemType) -> ItemInput {
    ItemInput {
        item_type: Some(item_type),
        title: "  Handmade Quilt ".into(),
        opening_bid: Cents(50_00),
        quantity_total: 1,
        ..ItemInput::default()
    }
}

#[test]
fn a_valid_item_is_trimmed_and_normalised() {
    let fields = validate_item(ItemInput {
        tags: vec![" Quilt ".into(), "quilt".into(), "Kid   Friendly".into()],
        description: Some("  ".into()),
        bid_increment: Some(Cents(5_00)),
        ..input(ItemType::Competitive)
    })
    .unwrap();
    assert_eq!(fields.title, "Handmade Quilt");
    assert_eq!(fields.tags, vec!["quilt", "kid friendly"]);
    assert_eq!(fields.description, "");
    assert_eq!(fields.bid_increment, Some(Cents(5_00)));
}

#[test]
fn increments_only_for_competitive_items() {
    for t in ItemType::ALL {
        let r = validate_item(ItemInput {
            bid_increment: Some(Cents(1_00)),
            ..input(t)
        });
        if t == ItemType::Competitive {
            assert!(r.is_ok());
        } else {
            assert_eq!(r.unwrap_err().field, "bidIncrement", "{t:?}");
        }
        assert!(validate_item(input(t)).is_ok(), "{t:?} without increment");
    }
    let zero = validate_item(ItemInput {
        bid_increment: Some(Cents(0)),
        ..input(ItemType::Competitive)
    });
    assert_eq!(zero.unwrap_err().field, "bidIncrement");
}

#[test]
fn field_rules() {
    let field = |i: ItemInput| validate_item(i).unwrap_err().field;
    assert_eq!(
        field(ItemInput {
            item_type: None,
            ..input(ItemType::Service)
        }),
        "type"
    );
    assert_eq!(
        field(ItemInput {
            title: "   ".into(),
            ..input(ItemType::Service)
        }),
        "title"
    );
    assert_eq!(
        field(ItemInput {
            title: "t".repeat(201),
            ..input(ItemType::Service)
        }),
        "title"
    );
    assert!(validate_item(ItemInput {
        title: "t".repeat(200),
        ..input(ItemType::Service)
    })
    .is_ok());
    for q in [0, -1, QUANTITY_MAX + 1] {
        assert_eq!(
            field(ItemInput {
                quantity_total: q,
                ..input(ItemType::FixedPriceItem)
            }),
            "quantityTotal"
        );
    }
    assert_eq!(
        field(ItemInput {
            buy_now_price: Some(Cents(10_00)),
            ..input(ItemType::Competitive)
        }),
        "buyNowPrice"
    );
    assert_eq!(
        field(ItemInput {
            donor_notes: Some("n".repeat(NOTES_MAX + 1)),
            ..input(ItemType::Service)
        }),
        "donorNotes"
    );
}

#[test]
fn tags_are_short_lowercase_words() {
    assert_eq!(
        normalize_tags(&["A".into(), "".into(), " b-c ".into()]).unwrap(),
        vec!["a", "b-c"]
    );
    assert!(normalize_tags(&["x".repeat(31)]).is_err());
    assert!(normalize_tags(&["semi;colon".into()]).is_err());
    let many: Vec<String> = (0..13).map(|i| format!("t{i}")).collect();
    assert!(normalize_tags(&many).is_err());
    assert!(normalize_tags(&many[..12]).is_ok());
}

#[test]
fn search_queries_are_sanitised_prefix_conjunctions() {
    assert_eq!(search_query("quil").as_deref(), Some("quil:*"));
    assert_eq!(
        search_query("Handmade  QUILT!").as_deref(),
        Some("handmade:* & quilt:*")
    );
    // Operators and quotes cannot reach to_tsquery.
    assert_eq!(
        search_query("a|b & !c ' :* (d)").as_deref(),
        Some("a:* & b:* & c:* & d:*")
    );
    assert_eq!(search_query("  !!! "), None);
    assert_eq!(search_query(""), None);
}

#[test]
fn reoffer_defaults() {
    // Nothing set: participate, opening bid, everything remaining.
    assert_eq!(
        reoffer_terms(true, None, None, Cents(50_00), 3),
        ReofferTerms {
            participate: true,
            price: Cents(50_00),
            quantity: 3
        }
    );
    // Below the opening bid is allowed.
    assert_eq!(
        reoffer_terms(true, Some(Cents(40_00)), Some(2), Cents(50_00), 3).price,
        Cents(40_00)
    );
    assert_eq!(
        reoffer_terms(true, None, Some(2), Cents(50_00), 3).quantity,
        2
    );
    // Sold since the override was set: never more than remain.
    assert_eq!(
        reoffer_terms(true, None, Some(2), Cents(50_00), 1).quantity,
        1
    );
    assert_eq!(
        reoffer_terms(false, None, None, Cents(50_00), 0).quantity,
        0
    );
}

#[test]
fn quantity_override_bounds() {
    assert_eq!(check_quantity_override(None, 3), Ok(None));
    assert_eq!(check_quantity_override(Some(3), 3), Ok(Some(3)));
    assert_eq!(check_quantity_override(Some(1), 3), Ok(Some(1)));
    for bad in [0, -1, 4, i64::MAX] {
        assert_eq!(
            check_quantity_override(Some(bad), 3).unwrap_err().field,
            "quantityOverride"
        );
    }
    assert!(check_quantity_override(Some(1), 0).is_err());
}

#[test]
fn listing_a_status() {
    for status in ItemStatus::ALL {
        // Staff and a donor's own list see every status; guests only the public ones.
        assert!(status_allowed(status, true, false));
        assert!(status_allowed(status, false, true));
        assert_eq!(status_allowed(status, false, false), status.is_public());
    }
}
