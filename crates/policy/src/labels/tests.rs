use std::collections::BTreeMap;

use bulkhead_resources::{LabelSelector, Labels, Operator, Requirement};
use proptest::prelude::*;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn empty_selector_matches_everything() {
    let mut i = Interner::default();
    let sel = Selector::compile(&LabelSelector::default(), &mut i);
    assert!(sel.matches(&i.intern_labels(&labels(&[]))));
    assert!(sel.matches(&i.intern_labels(&labels(&[("a", "b")]))));
}

#[test]
fn raw_labels_with_unknown_strings() {
    let mut i = Interner::default();
    let sel = LabelSelector {
        match_labels: labels(&[("app", "web")]),
        match_expressions: vec![Requirement {
            key: "tier".into(),
            operator: Operator::NotIn,
            values: vec!["db".into()],
        }],
    };
    let sel = Selector::compile(&sel, &mut i);
    assert!(sel.matches(&i.lookup_labels(&labels(&[("app", "web"), ("zzz", "q")]))));
    assert!(sel.matches(&i.lookup_labels(&labels(&[("app", "web"), ("tier", "new")]))));
    assert!(!sel.matches(&i.lookup_labels(&labels(&[("app", "web"), ("tier", "db")]))));
    assert!(!sel.matches(&i.lookup_labels(&labels(&[("app", "other")]))));
}

fn arb_labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[abc]", "[xyz]", 0..4)
}

fn arb_req() -> impl Strategy<Value = Requirement> {
    (
        "[abcd]",
        prop_oneof![
            Just(Operator::In),
            Just(Operator::NotIn),
            Just(Operator::Exists),
            Just(Operator::DoesNotExist)
        ],
        prop::collection::vec("[xyzw]", 1..3),
    )
        .prop_map(|(key, operator, values)| {
            let values = match operator {
                Operator::In | Operator::NotIn => values,
                _ => vec![],
            };
            Requirement {
                key,
                operator,
                values,
            }
        })
}

proptest! {
    /// The compiled selector agrees with the resource model's reference matcher, for
    /// labels known at compile time and for labels seen only at evaluation time.
    #[test]
    fn compiled_selector_agrees_with_reference(
        match_labels in prop::collection::btree_map("[abcd]", "[xyzw]", 0..3),
        match_expressions in prop::collection::vec(arb_req(), 0..3),
        subject in arb_labels(),
    ) {
        let sel = LabelSelector { match_labels, match_expressions };
        let mut i = Interner::default();
        let compiled = Selector::compile(&sel, &mut i);
        let expected = sel.matches(&subject);
        prop_assert_eq!(compiled.matches(&i.lookup_labels(&subject)), expected);
        prop_assert_eq!(compiled.matches(&i.intern_labels(&subject)), expected);
    }
}
