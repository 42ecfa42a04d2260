//! The web application firewall's metrics (`bulkhead_waf_*`): requests by mode and
//! action, logged rule matches by CRS rule family, and time spent in the engine. Every
//! label value comes from a fixed set, resolved once here.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::waf::WafAction;
use crate::waf::event::FAMILIES;

/// Engine time per request: 50 µs to 250 ms (a benign GET at PL1 is well under a
/// millisecond; large bodies at high paranoia levels take longer).
const INSPECTION_BUCKETS: [f64; 12] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
];
/// The `mode` label values, by [`mode_index`].
const MODES: [&str; 2] = ["detection_only", "blocking"];
/// The `action` label values, in [`action_index`] order.
const ACTIONS: [WafAction; 3] = [WafAction::Pass, WafAction::Detect, WafAction::Block];

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];

/// Resolved handles of the firewall metrics.
#[derive(Debug)]
pub(super) struct WafHandles {
    /// `[mode][action]`.
    requests: [[Counter; 3]; 2],
    /// By [`FAMILIES`].
    matches: [Counter; FAMILIES.len()],
    inspection: Histogram,
}

/// Registers the families under `r` (the `bulkhead_waf` prefix).
pub(super) fn register(r: &mut Registry) -> WafHandles {
    let requests: Family<Labels2, Counter> = Family::default();
    r.register(
        "requests",
        "Requests inspected by the web application firewall, by mode and action \
         (pass, detect: would have been blocked, block)",
        requests.clone(),
    );
    let matches: Family<Labels1, Counter> = Family::default();
    r.register(
        "rule_matches",
        "Logged rule matches, by CRS rule family (the rule file's number, e.g. 942 for SQL \
         injection; 200 for ModSecurity's recommended rules)",
        matches.clone(),
    );
    let inspection = Histogram::new(INSPECTION_BUCKETS);
    r.register_with_unit(
        "inspection",
        "Time spent in the firewall engine per request (all phases)",
        Unit::Seconds,
        inspection.clone(),
    );
    WafHandles {
        requests: MODES.map(|mode| {
            ACTIONS.map(|action| {
                let labels = [("mode", mode), ("action", action.as_str())];
                requests.get_or_create(&labels).clone()
            })
        }),
        matches: FAMILIES.map(|f| matches.get_or_create(&[("family", f)]).clone()),
        inspection,
    }
}

impl WafHandles {
    /// Counts one inspected request and the engine time it took.
    pub(super) fn request(&self, blocking: bool, action: WafAction, engine_seconds: f64) {
        let a = ACTIONS.iter().position(|x| *x == action).unwrap_or(0);
        self.requests[usize::from(blocking)][a].inc();
        self.inspection.observe(engine_seconds);
    }

    /// Counts one logged match of a rule of `family` (a value of [`FAMILIES`]).
    pub(super) fn rule_match(&self, family: &str) {
        let i = FAMILIES
            .iter()
            .position(|f| *f == family)
            .unwrap_or(FAMILIES.len() - 1);
        self.matches[i].inc();
    }
}
