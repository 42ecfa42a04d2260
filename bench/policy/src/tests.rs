//! End-to-end checks of the generator: deterministic, loadable by the strict loader,
//! compilable, every query resolves, and the baseline agrees with the engine's network
//! layer.

use bulkhead_policy::query::Query;
use bulkhead_policy::{Engine, Layer, Options};
use bulkhead_resources::load::{Format, Loader};

use crate::baseline::Baseline;
use crate::cluster::{Shape, generate};
use crate::queries::{self, Kind};

const SMALL: Shape = Shape {
    namespaces: 6,
    replicas: 2,
};

#[test]
fn generation_is_deterministic() {
    let a = generate(SMALL, 9, true);
    let b = generate(SMALL, 9, true);
    let c = generate(SMALL, 10, true);
    let texts = |g: &crate::cluster::Generated| -> Vec<String> {
        g.files.iter().map(|f| f.text.clone()).collect()
    };
    assert_eq!(texts(&a), texts(&b));
    assert_ne!(texts(&a), texts(&c));
    let qa = queries::generate(&a.cluster, 9, Kind::L7, 200);
    let qb = queries::generate(&b.cluster, 9, Kind::L7, 200);
    assert!(qa.iter().zip(&qb).all(|(x, y)| x.value == y.value));
}

#[test]
fn loads_compiles_and_agrees_with_baseline() {
    let g = generate(SMALL, 3, true);
    let mut loader = Loader::new();
    for f in &g.files {
        loader
            .add_str(&f.text, f.name, Format::Yaml)
            .unwrap_or_else(|e| panic!("{}: {e}", f.name));
    }
    let rs = loader.finish().expect("batch is valid");
    assert_eq!(rs.pods.len(), g.counts.pods);
    assert_eq!(rs.network_policies.len(), g.counts.network_policies);
    assert_eq!(
        rs.authorization_policies.len(),
        g.counts.authorization_policies
    );
    let engine = Engine::compile(&rs, Options::default()).expect("compiles");
    let baseline = Baseline::new(&rs);
    for kind in [Kind::L4, Kind::L7] {
        let parsed: Vec<Query> = queries::generate(&g.cluster, 3, kind, 3000)
            .into_iter()
            .map(|q| Query::from_value(q.value).expect("parses"))
            .collect();
        let (mut allow, mut deny) = (0, 0);
        for q in &parsed {
            let d = engine.evaluate(&q.request(&engine).expect("resolves"));
            if d.allowed {
                allow += 1
            } else {
                deny += 1
            }
            let naive = baseline.resolve(q).expect("baseline resolves");
            let engine_net_deny = !d.allowed && d.layer == Layer::Network;
            assert_eq!(!engine_net_deny, baseline.allows(&naive), "{}", q.id);
        }
        assert!(
            allow > 600 && deny > 600,
            "{kind:?}: {allow} allow, {deny} deny"
        );
    }
}
