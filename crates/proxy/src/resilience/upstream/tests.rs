//! Endpoint-set and outlier-ejection tests under paused time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_identity::SpiffeId;
use proptest::prelude::*;

use super::*;
use crate::resilience::outlier::Reason;
use crate::resilience::policy::LoadBalancer;
use crate::resilience::rng::Rng;

fn endpoint(port: u16, sa: &str) -> Endpoint {
    Endpoint {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        identity: SpiffeId::parse(&format!("spiffe://cluster.local/ns/shop/sa/{sa}")).unwrap(),
    }
}

#[test]
fn endpoint_state_survives_a_new_snapshot_with_the_same_endpoint() {
    let up = Upstream::new(Rng::seeded(1));
    let first = Arc::new(());
    let set = up.endpoints(&first, &[endpoint(1, "api"), endpoint(2, "api")]);
    let _busy = set.endpoints[0].start();
    assert!(
        Arc::ptr_eq(&set, &up.endpoints(&first, &[])),
        "same source: cached"
    );
    let second = Arc::new(());
    let next = up.endpoints(
        &second,
        &[endpoint(1, "api"), endpoint(2, "other"), endpoint(3, "api")],
    );
    assert!(
        Arc::ptr_eq(&set.endpoints[0], &next.endpoints[0]),
        "kept with its in-flight count"
    );
    assert_eq!(next.endpoints[0].in_flight(), 1);
    assert!(
        !Arc::ptr_eq(&set.endpoints[1], &next.endpoints[1]),
        "another identity is new"
    );
    assert_eq!(up.views().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failing_endpoint_is_ejected_after_n_failures_and_readmitted_later() {
    let up = Upstream::new(Rng::seeded(9));
    let source = Arc::new(());
    let set = up.endpoints(&source, &[endpoint(1, "api"), endpoint(2, "api")]);
    let policy = Outlier::default();
    for _ in 1..policy.consecutive_5xx {
        assert_eq!(up.record(&set, 0, Outcome::Failure, &policy), None);
    }
    let ejection = up
        .record(&set, 0, Outcome::Failure, &policy)
        .expect("ejected at N");
    assert_eq!(ejection.reason, Reason::Consecutive5xx);
    assert_eq!(ejection.duration, Duration::from_secs(30));
    for _ in 0..50 {
        let i = up
            .balancer
            .pick(&set.endpoints, LoadBalancer::PeakEwma, None, up.now_ns());
        assert_eq!(i, Some(1));
    }
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(set.endpoints[0].is_ejected(up.now_ns()));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(
        !set.endpoints[0].is_ejected(up.now_ns()),
        "re-admitted after 30 s"
    );
    // Failing again soon: the next ejection is twice as long.
    for _ in 1..policy.consecutive_connect_failures {
        assert_eq!(up.record(&set, 0, Outcome::ConnectFailure, &policy), None);
    }
    let again = up
        .record(&set, 0, Outcome::ConnectFailure, &policy)
        .unwrap();
    assert_eq!(
        (again.reason, again.duration),
        (Reason::ConsecutiveConnectFailures, Duration::from_secs(60))
    );
}

#[tokio::test(start_paused = true)]
async fn the_last_endpoint_is_never_ejected() {
    let up = Upstream::new(Rng::seeded(9));
    let source = Arc::new(());
    let set = up.endpoints(&source, &[endpoint(1, "api"), endpoint(2, "api")]);
    let policy = Outlier {
        consecutive_5xx: 1,
        max_ejected_percent: 100,
        ..Outlier::default()
    };
    assert!(up.record(&set, 0, Outcome::Failure, &policy).is_some());
    assert!(up.record(&set, 1, Outcome::Failure, &policy).is_none());
}

proptest! {
    /// Any sequence of failures and successes never ejects more than the maximum
    /// percentage allows, and never every endpoint.
    #[test]
    fn ejections_respect_the_maximum_percentage(
        n in 1usize..12,
        pct in 0u8..=100,
        events in prop::collection::vec((0usize..12, 0u8..3, 0u64..20), 1..200),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async {
            let up = Upstream::new(Rng::seeded(3));
            let source = Arc::new(());
            let eps: Vec<Endpoint> = (1..=n as u16).map(|p| endpoint(p, "api")).collect();
            let set = up.endpoints(&source, &eps);
            let policy = Outlier { consecutive_5xx: 2, consecutive_connect_failures: 1,
                max_ejected_percent: pct, ..Outlier::default() };
            for (i, kind, wait) in events {
                tokio::time::advance(Duration::from_secs(wait)).await;
                let outcome = [Outcome::Success, Outcome::Failure, Outcome::ConnectFailure][usize::from(kind)];
                up.record(&set, i % n, outcome, &policy);
                let now = up.now_ns();
                let ejected = set.endpoints.iter().filter(|e| e.is_ejected(now)).count();
                prop_assert!(ejected <= outlier::max_ejected(n, pct));
                prop_assert!(ejected < n);
            }
            Ok(())
        })?;
    }
}
