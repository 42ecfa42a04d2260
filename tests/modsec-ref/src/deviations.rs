//! Known one-sided differences between libmodsecurity 3.0.9 and bulkhead-waf, each recognised
//! from the evidence of one stage (libmodsecurity's log lines, our matches), so that the
//! differential test counts only the differences nobody has explained.
//!
//! Every entry is a libmodsecurity 3.0.9 behaviour that later ModSecurity releases, the CRS
//! regression tests or ModSecurity's documented semantics disagree with; bulkhead-waf keeps
//! the documented (or newer) behaviour. Each predicate is as narrow as the evidence allows, so
//! a regression of ours on the same rule elsewhere is still counted.

use std::collections::BTreeSet;

use bulkhead_waf::RuleMatch;

use crate::logline;

/// Which engine logs the rule the other does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Only libmodsecurity logs it.
    Reference,
    /// Only bulkhead-waf logs it.
    Ours,
}

/// What one stage left behind in both engines.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The go-ftw test name, `<rule>-<test>`.
    pub test: &'a str,
    /// libmodsecurity's error-log lines.
    pub reference_lines: &'a [String],
    /// bulkhead-waf's matches.
    pub ours: &'a [RuleMatch],
}

impl Evidence<'_> {
    /// libmodsecurity's lines of rule `id`.
    fn lines_of(&self, id: u32) -> impl Iterator<Item = &String> {
        self.reference_lines
            .iter()
            .filter(move |l| logline::rule_id(l) == Some(id))
    }

    /// Whether libmodsecurity logged `id` and every one of its lines contains `text`.
    fn every_line_of(&self, id: u32, text: &str) -> bool {
        let mut lines = self.lines_of(id).peekable();
        lines.peek().is_some() && lines.all(|l| l.contains(text))
    }

    /// Whether we logged `id` with `text` in its logdata.
    fn our_data_has(&self, id: u32, text: &str) -> bool {
        self.ours
            .iter()
            .any(|m| m.id == id && m.logged && m.data.contains(text))
    }
}

/// One known deviation.
#[derive(Debug, Clone, Copy)]
pub struct Deviation {
    /// The rule id in disagreement.
    pub id: u32,
    /// Which engine alone logs it.
    pub side: Side,
    /// Why, with the reference.
    pub why: &'static str,
    /// Whether a stage's evidence shows this deviation.
    applies: fn(&Evidence<'_>) -> bool,
}

/// What our multipart parser says of a part header name with a byte outside 0x21–0x7e.
const INVALID_HEADER_CHAR: &str = "Invalid part header (contains invalid character)";

/// The known deviations.
pub const DEVIATIONS: &[Deviation] = &[
    Deviation {
        id: 922110,
        side: Side::Reference,
        why: "libmodsecurity 3.0.9 keeps the line's CRLF in MULTIPART_PART_HEADERS, so 922110's \
              `$` fails on legitimate charsets (fixed in 3.0.10 by 514abeb5; ModSecurity 2 strips \
              it too); the CRS tests say no_expect_ids",
        applies: |ev| ev.every_line_of(922110, "\\x0d\\x0a' )"),
    },
    Deviation {
        id: 942131,
        side: Side::Reference,
        why: "libmodsecurity 3 logs the first rule of a multiMatch chain when the chain fails \
              (its line has an empty msg); nginx-overrides.yaml 942131 tests 3, 5, 7: \
              \"v3 log bug, the first part of the chain always produces a log\"",
        applies: |ev| ev.every_line_of(942131, "[msg \"\"]"),
    },
    Deviation {
        id: 922130,
        side: Side::Reference,
        why: "libmodsecurity 3.0.9 accepts part header names with bytes outside 0x21-0x7e; \
              ModSecurity 2.9.8 and 3.0.13 (6388d88f) stop with a multipart parsing error, \
              which we log as 200002 instead; the CRS tests accept either",
        applies: |ev| ev.our_data_has(200002, INVALID_HEADER_CHAR),
    },
    Deviation {
        id: 200002,
        side: Side::Ours,
        why: "the multipart parsing error of ModSecurity 2.9.8 and 3.0.13 for part header \
              names with bytes outside 0x21-0x7e (see 922130)",
        applies: |ev| ev.our_data_has(200002, INVALID_HEADER_CHAR),
    },
    Deviation {
        id: 930130,
        side: Side::Ours,
        why: "ModSecurity's Aho-Corasick (acmp) links a node's failure only one level up, so \
              @pm misses `.env` in `/.a0proj/secrets.env` after the partial `secrets.json`; \
              @pm is documented as matching any phrase, and 930140-13 does not forbid 930130",
        applies: |ev| ev.test == "930140-13",
    },
];

/// The ids among the one-sided ones that a known deviation explains, with its reason.
pub fn explained(
    ev: &Evidence<'_>,
    only_reference: &BTreeSet<u32>,
    only_ours: &BTreeSet<u32>,
) -> Vec<(u32, &'static str)> {
    DEVIATIONS
        .iter()
        .filter(|d| match d.side {
            Side::Reference => only_reference.contains(&d.id),
            Side::Ours => only_ours.contains(&d.id),
        })
        .filter(|d| (d.applies)(ev))
        .map(|d| (d.id, d.why))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn line(id: u32, text: &str) -> String {
        format!("ModSecurity: Warning. {text} [file \"f\"] [line \"1\"] [id \"{id}\"] [msg \"\"]")
    }

    fn matched(id: u32, data: &str) -> RuleMatch {
        RuleMatch {
            id,
            phase: 2,
            logged: true,
            msg: String::new(),
            data: data.to_owned(),
            severity: None,
            tags: Arc::from(Vec::new()),
            matched_var_name: String::new(),
            matched_value: Vec::new(),
            disruptive: false,
        }
    }

    fn set(ids: &[u32]) -> BTreeSet<u32> {
        ids.iter().copied().collect()
    }

    #[test]
    fn crlf_in_part_headers_is_recognised_only_with_the_crlf() {
        let with = [line(
            922110,
            "(Value: `text/plain; charset=utf-8\\x0d\\x0a' )",
        )];
        let without = [line(922110, "(Value: `text/plain; charset=utf-7' )")];
        let ev = |lines| Evidence {
            test: "922110-5",
            reference_lines: lines,
            ours: &[],
        };
        assert_eq!(explained(&ev(&with), &set(&[922110]), &set(&[])).len(), 1);
        assert!(explained(&ev(&without), &set(&[922110]), &set(&[])).is_empty());
        assert!(
            explained(&ev(&with), &set(&[]), &set(&[922110])).is_empty(),
            "only the reference side"
        );
    }

    #[test]
    fn invalid_header_character_explains_both_sides() {
        let ours = [matched(
            200002,
            "Multipart: Invalid part header (contains invalid character).",
        )];
        let ev = Evidence {
            test: "922130-1",
            reference_lines: &[],
            ours: &ours,
        };
        let ids: Vec<u32> = explained(&ev, &set(&[922130]), &set(&[200002]))
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, vec![922130, 200002]);
        let other = [matched(200002, "JSON parsing error")];
        let ev = Evidence { ours: &other, ..ev };
        assert!(explained(&ev, &set(&[922130]), &set(&[200002])).is_empty());
    }

    #[test]
    fn unexplained_ids_stay() {
        let ev = Evidence {
            test: "930140-12",
            reference_lines: &[],
            ours: &[],
        };
        assert!(explained(&ev, &set(&[1, 2]), &set(&[930130])).is_empty());
    }
}
