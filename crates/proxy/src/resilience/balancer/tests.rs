//! Balancer and endpoint-state tests with paused time and a seeded RNG.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_identity::SpiffeId;

use super::*;
use crate::resilience::outlier::Outcome;
use crate::resilience::policy::Outlier;
use crate::resilience::upstream::Upstream;
use crate::snapshot::Endpoint;

fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        identity: SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/api").unwrap(),
    }
}

fn endpoints(n: u16) -> Vec<Endpoint> {
    (1..=n).map(endpoint).collect()
}

/// Simulates `requests` sequential-ish requests (`concurrency` in flight) against mock
/// endpoints with fixed latencies under paused time; returns how many each served.
async fn simulate(algorithm: LoadBalancer, latencies_ms: &[u64], requests: usize) -> Vec<usize> {
    let up = Arc::new(Upstream::new(Rng::seeded(42)));
    let source = Arc::new(());
    let eps: Vec<Endpoint> = (1..=latencies_ms.len() as u16).map(endpoint).collect();
    let set = up.endpoints(&source, &eps);
    let mut served = vec![0; latencies_ms.len()];
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..requests {
        if tasks.len() >= 4 {
            tasks.join_next().await;
        }
        let now = up.now_ns();
        let i = up
            .balancer
            .pick(&set.endpoints, algorithm, None, now)
            .unwrap();
        served[i] += 1;
        let (up, e, latency) = (up.clone(), set.endpoints[i].clone(), latencies_ms[i]);
        let guard = e.start();
        tasks.spawn(async move {
            let start = up.now_ns();
            tokio::time::sleep(Duration::from_millis(latency)).await;
            e.observe(up.now_ns(), Duration::from_nanos(up.now_ns() - start));
            drop(guard);
        });
        // Requests arrive every millisecond.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while tasks.join_next().await.is_some() {}
    served
}

#[tokio::test(start_paused = true)]
async fn peak_ewma_sends_over_90_percent_to_the_fast_endpoint() {
    let served = simulate(LoadBalancer::PeakEwma, &[1, 50], 1000).await;
    assert!(served[0] * 100 > 90 * 1000, "{served:?}");
}

#[tokio::test(start_paused = true)]
async fn round_robin_ignores_latency() {
    let served = simulate(LoadBalancer::RoundRobin, &[1, 50], 1000).await;
    assert_eq!(served, [500, 500]);
}

#[tokio::test(start_paused = true)]
async fn least_request_prefers_the_endpoint_with_fewer_in_flight() {
    let served = simulate(LoadBalancer::LeastRequest, &[1, 50], 1000).await;
    assert!(served[0] > served[1] * 3, "{served:?}");
}

#[test]
fn ejected_and_avoided_endpoints_are_skipped_unless_nothing_else_is_left() {
    let up = Upstream::new(Rng::seeded(1));
    let source = Arc::new(());
    let set = up.endpoints(&source, &endpoints(3));
    let policy = Outlier {
        consecutive_5xx: 1,
        max_ejected_percent: 100,
        ..Outlier::default()
    };
    assert!(up.record(&set, 0, Outcome::Failure, &policy).is_some());
    for _ in 0..100 {
        let i = up
            .balancer
            .pick(&set.endpoints, LoadBalancer::PeakEwma, Some(1), 0)
            .unwrap();
        assert_eq!(i, 2, "0 is ejected, 1 avoided");
    }
    assert!(up.record(&set, 2, Outcome::Failure, &policy).is_some());
    // 0 and 2 ejected, 1 avoided: ejection is ignored rather than refusing.
    let i = up
        .balancer
        .pick(&set.endpoints, LoadBalancer::RoundRobin, Some(1), 0)
        .unwrap();
    assert_ne!(i, 1);
    assert_eq!(
        up.balancer
            .pick(&set.endpoints[..1], LoadBalancer::PeakEwma, Some(0), 0),
        Some(0)
    );
    assert_eq!(up.balancer.pick(&[], LoadBalancer::PeakEwma, None, 0), None);
}

#[test]
fn a_higher_sample_replaces_the_estimate_and_lower_ones_decay_in() {
    let e = EndpointState::new(endpoint(1));
    assert_eq!(
        e.cost(0),
        DEFAULT_RTT.as_nanos() as f64,
        "unmeasured: default RTT"
    );
    e.observe(0, Duration::from_millis(10));
    e.observe(0, Duration::from_millis(100));
    let ms = |e: &EndpointState, at: u64| e.view(at).ewma_ms.unwrap();
    assert!((ms(&e, 0) - 100.0).abs() < 1e-6, "peak taken at once");
    // Ten seconds (one time constant) later the estimate has decayed to 1/e.
    let later = 10_000_000_000;
    assert!((ms(&e, later) - 100.0 / std::f64::consts::E).abs() < 0.5);
    let _busy = e.start();
    assert!(
        e.cost(later) > 2.0 * ms(&e, later) * 1e6 * 0.99,
        "weighted by in-flight + 1"
    );
}

use crate::resilience::endpoint::{DEFAULT_RTT, EndpointState};
