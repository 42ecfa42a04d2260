//! The renewal task on paused tokio time: when it renews, how jitter spreads renewals,
//! how it backs off while the CA is down, what happens at expiry, and what it logs.

mod svid_testca;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulkhead_identity::rotation::{
    BoxFuture, RenewalConfig, RotationError, SignError, Signer, SvidSource, SvidState,
};
use rcgen::{CertificateSigningRequestParams, SanType};
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use svid_testca::{LeafSpec, TestCa};
use tokio::time::{Instant, sleep, sleep_until};

const ID: &str = "spiffe://example.test/ns/shop/sa/web";
const MIN: Duration = Duration::from_secs(60);
/// Certificates carry whole seconds, so deadlines derived from them may be up to a second
/// early; allow for that and a little more.
const SLACK: Duration = Duration::from_secs(2);

/// A CA that can be switched off, recording when it was asked and what for.
struct TestSigner {
    ca: TestCa,
    ttl: Duration,
    down: AtomicBool,
    calls: Mutex<Vec<Instant>>,
    requested: Mutex<Vec<Vec<SanType>>>,
}

impl TestSigner {
    fn new(ca: TestCa, ttl: Duration) -> Arc<Self> {
        Arc::new(TestSigner {
            ca,
            ttl,
            down: AtomicBool::new(false),
            calls: Mutex::new(Vec::new()),
            requested: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().clone()
    }
}

impl Signer for TestSigner {
    fn sign(
        &self,
        csr_der: Vec<u8>,
    ) -> BoxFuture<'_, Result<Vec<CertificateDer<'static>>, SignError>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(Instant::now());
            if self.down.load(Ordering::SeqCst) {
                return Err(SignError::Unavailable("connection refused".into()));
            }
            let csr = CertificateSigningRequestParams::from_der(
                &CertificateSigningRequestDer::from(csr_der.as_slice()),
            )
            .expect("CSR with a valid proof of possession");
            assert_eq!(csr.public_key.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
            self.requested
                .lock()
                .unwrap()
                .push(csr.params.subject_alt_names);
            Ok(self.ca.sign_csr(&csr_der, self.ttl))
        })
    }
}

/// A source holding a fresh SVID of `lifetime` from `ca`.
fn source_with(ca: &TestCa, lifetime: Duration) -> Arc<SvidSource> {
    let spec = LeafSpec::svid(ID).valid(time::Duration::ZERO, lifetime.try_into().unwrap());
    let leaf = ca.issue(&spec);
    SvidSource::new(leaf.chain, leaf.key).unwrap()
}

fn no_jitter() -> RenewalConfig {
    RenewalConfig {
        jitter: 0.0,
        ..RenewalConfig::default()
    }
}

fn near(actual: Duration, expected: Duration) -> bool {
    actual + SLACK >= expected && actual <= expected + SLACK
}

#[tokio::test(start_paused = true)]
async fn renews_at_half_life_then_again_at_half_of_the_new_life() {
    let ca = TestCa::root("example.test");
    let source = source_with(&ca, 100 * MIN);
    let signer = TestSigner::new(TestCa::root("example.test"), 60 * MIN);
    let first_serial = source.info().serial.clone();
    let start = Instant::now();
    let task = source.spawn_renewal(signer.clone(), no_jitter());

    sleep(49 * MIN).await;
    assert!(signer.calls().is_empty(), "renewed before half-life");
    sleep(2 * MIN).await;
    let calls = signer.calls();
    assert_eq!(calls.len(), 1);
    assert!(near(calls[0] - start, 50 * MIN), "{:?}", calls[0] - start);
    assert_ne!(source.info().serial, first_serial);
    assert_eq!(
        signer.requested.lock().unwrap()[0],
        vec![svid_testca::uri_san(ID)],
        "the CSR asks for exactly this workload's ID"
    );

    // The new SVID lives 60 minutes from its issuance at ~50: renewal again at ~80.
    sleep_until(start + 79 * MIN).await;
    assert_eq!(signer.calls().len(), 1);
    sleep_until(start + 81 * MIN).await;
    let calls = signer.calls();
    assert_eq!(calls.len(), 2);
    assert!(near(calls[1] - start, 80 * MIN), "{:?}", calls[1] - start);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_renewals_within_bounds() {
    let ca = TestCa::root("example.test");
    let signer = TestSigner::new(TestCa::root("example.test"), 100 * MIN);
    let start = Instant::now();
    let config = RenewalConfig::default(); // 50 % ± 10 %
    let tasks: Vec<_> = (0..20)
        .map(|_| source_with(&ca, 100 * MIN).spawn_renewal(signer.clone(), config.clone()))
        .collect();
    // A second renewal cannot come before 40 + 40 minutes, so each source calls once.
    sleep(61 * MIN).await;
    let offsets: Vec<Duration> = signer.calls().iter().map(|c| *c - start).collect();
    assert_eq!(offsets.len(), 20);
    for o in &offsets {
        assert!(*o + SLACK >= 40 * MIN && *o <= 60 * MIN + SLACK, "{o:?}");
    }
    let (min, max) = (offsets.iter().min().unwrap(), offsets.iter().max().unwrap());
    assert!(*max - *min > MIN, "renewals not spread: {offsets:?}");
    tasks.iter().for_each(|t| t.abort());
}

#[test]
fn renewal_point_and_backoff_arithmetic() {
    let config = RenewalConfig::default();
    let life = 100 * MIN;
    assert_eq!(config.renewal_delay(life, 0.0), 40 * MIN);
    assert_eq!(config.renewal_delay(life, 0.5), 50 * MIN);
    assert!(config.renewal_delay(life, 0.999_999) <= 60 * MIN);
    let late = RenewalConfig {
        renew_at: 0.95,
        ..config.clone()
    };
    assert_eq!(
        late.renewal_delay(life, 1.0),
        life,
        "never beyond the lifetime"
    );
    let secs: Vec<u64> = (0..10).map(|i| config.backoff(i).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
    assert_eq!(config.backoff(u32::MAX), 60 * Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn backs_off_exponentially_while_the_ca_is_down() {
    let ca = TestCa::root("example.test");
    let source = source_with(&ca, 100 * MIN);
    let signer = TestSigner::new(TestCa::root("example.test"), 100 * MIN);
    signer.down.store(true, Ordering::SeqCst);
    let config = no_jitter();
    let task = source.spawn_renewal(signer.clone(), config.clone());
    sleep(50 * MIN + Duration::from_secs(300)).await;
    let calls = signer.calls();
    let gaps: Vec<u64> = calls.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert!(gaps.len() >= 9, "{gaps:?}");
    for (i, gap) in gaps.iter().enumerate() {
        assert_eq!(
            *gap,
            config.backoff(i as u32).as_secs(),
            "gap {i} of {gaps:?}"
        );
    }
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn serves_until_expiry_then_reports_not_ready_and_recovers() {
    let ca = TestCa::root("example.test");
    let source = source_with(&ca, 10 * MIN);
    let signer = TestSigner::new(TestCa::root("example.test"), 10 * MIN);
    signer.down.store(true, Ordering::SeqCst);
    let config = no_jitter();
    let key = source.certified_key();
    let expiry = source.expiry();
    let serial = source.info().serial.clone();
    let start = Instant::now();
    let mut changes = source.subscribe();
    let task = source.spawn_renewal(signer.clone(), config.clone());

    sleep_until(start + 7 * MIN).await;
    assert_eq!(source.state(&config), SvidState::Valid);
    sleep_until(start + 8 * MIN + SLACK).await;
    assert_eq!(source.state(&config), SvidState::ExpiringSoon);
    sleep_until(start + 10 * MIN - SLACK).await;
    assert!(source.is_ready());
    assert!(
        Arc::ptr_eq(&key, &source.certified_key()),
        "still serving the current SVID"
    );
    sleep_until(start + 10 * MIN + SLACK).await;
    assert!(!source.is_ready());
    assert_eq!(source.state(&config), SvidState::Expired);
    assert!(Arc::ptr_eq(&key, &source.certified_key()));
    assert_eq!(source.expiry(), expiry);
    assert!(!changes.has_changed().unwrap());

    // The CA comes back: the next retry (at most max_backoff away) renews.
    signer.down.store(false, Ordering::SeqCst);
    sleep(config.max_backoff + SLACK).await;
    assert!(source.is_ready());
    assert!(changes.has_changed().unwrap());
    // (Its dates come from the wall clock, which paused time does not move.)
    assert_ne!(changes.borrow_and_update().serial, serial);
    assert!(!Arc::ptr_eq(&key, &source.certified_key()));
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn an_svid_installed_meanwhile_restarts_the_schedule() {
    let ca = TestCa::root("example.test");
    let source = source_with(&ca, 100 * MIN);
    let signer = TestSigner::new(TestCa::root("example.test"), 100 * MIN);
    let start = Instant::now();
    let task = source.spawn_renewal(signer.clone(), no_jitter());
    sleep_until(start + 30 * MIN).await;
    let leaf =
        ca.issue(&LeafSpec::svid(ID).valid(time::Duration::ZERO, time::Duration::minutes(100)));
    // The certificate's dates come from the wall clock, which paused tokio time does not
    // move: seen from the source it was issued "now", at 30 minutes.
    source.install(leaf.chain, leaf.key).unwrap();
    sleep_until(start + 79 * MIN).await;
    assert!(
        signer.calls().is_empty(),
        "renewed on the replaced certificate's schedule"
    );
    sleep_until(start + 81 * MIN).await;
    assert_eq!(signer.calls().len(), 1);
    task.abort();
}

#[tokio::test]
async fn install_refuses_another_identity_an_expired_svid_and_a_foreign_key() {
    let ca = TestCa::root("example.test");
    let source = source_with(&ca, 100 * MIN);
    let other = ca.svid("/ns/shop/sa/api");
    let err = source.install(other.chain, other.key).unwrap_err();
    assert!(matches!(err, RotationError::WrongId { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "the certificate is for spiffe://example.test/ns/shop/sa/api, but this source serves spiffe://example.test/ns/shop/sa/web"
    );

    let expired =
        ca.issue(&LeafSpec::svid(ID).valid(time::Duration::hours(-2), time::Duration::hours(-1)));
    let err = source.install(expired.chain, expired.key).unwrap_err();
    assert!(matches!(err, RotationError::Expired(_)), "{err}");

    let a = ca.issue(&LeafSpec::svid(ID));
    let b = ca.issue(&LeafSpec::svid(ID));
    let err = source.install(a.chain, b.key).unwrap_err();
    assert!(matches!(err, RotationError::Key(_)), "{err}");

    let dns_only = ca.issue(&LeafSpec {
        sans: vec![SanType::DnsName("web.shop".try_into().unwrap())],
        ..LeafSpec::svid(ID)
    });
    let err = source.install(dns_only.chain, dns_only.key).unwrap_err();
    assert!(matches!(err, RotationError::NotAnSvid(_)), "{err}");
}

mod logs {
    //! What the renewal task logs, captured by a minimal tracing subscriber.

    use super::*;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<(Level, String)>>>);

    struct Message<'a>(&'a mut String);

    impl Visit for Message<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                *self.0 = format!("{value:?}");
            }
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut message = String::new();
            event.record(&mut Message(&mut message));
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), message));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    impl Capture {
        fn take(&self) -> Vec<(Level, String)> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failures_grow_from_info_to_warn_at_20_percent_to_error_at_expiry() {
        let capture = Capture::default();
        let _guard = tracing::subscriber::set_default(capture.clone());
        let ca = TestCa::root("example.test");
        let source = source_with(&ca, 10 * MIN);
        let signer = TestSigner::new(TestCa::root("example.test"), 10 * MIN);
        signer.down.store(true, Ordering::SeqCst);
        let start = Instant::now();
        let task = source.spawn_renewal(signer.clone(), no_jitter());

        sleep_until(start + 7 * MIN).await;
        let early = capture.take();
        assert!(
            early
                .iter()
                .any(|(l, m)| *l == Level::INFO && m.contains("will retry"))
        );
        assert!(early.iter().all(|(l, _)| *l > Level::WARN), "{early:?}");
        sleep_until(start + 9 * MIN).await;
        let late = capture.take();
        assert!(
            late.iter()
                .any(|(l, m)| *l == Level::WARN && m.contains("expires soon")),
            "{late:?}"
        );
        sleep_until(start + 11 * MIN).await;
        let after = capture.take();
        assert!(
            after
                .iter()
                .any(|(l, m)| *l == Level::ERROR && m.contains("has expired")),
            "{after:?}"
        );
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn warns_at_20_percent_even_before_a_late_renewal_starts() {
        let capture = Capture::default();
        let _guard = tracing::subscriber::set_default(capture.clone());
        let ca = TestCa::root("example.test");
        let source = source_with(&ca, 10 * MIN);
        let signer = TestSigner::new(TestCa::root("example.test"), 10 * MIN);
        let config = RenewalConfig {
            renew_at: 0.9,
            ..no_jitter()
        };
        let start = Instant::now();
        let task = source.spawn_renewal(signer.clone(), config);
        sleep_until(start + 8 * MIN + SLACK).await;
        let events = capture.take();
        assert!(
            events
                .iter()
                .any(|(l, m)| *l == Level::WARN && m.contains("renewal has not started yet")),
            "{events:?}"
        );
        assert!(signer.calls().is_empty());
        task.abort();
    }
}
