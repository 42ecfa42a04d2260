//! The FFI end to end: load CRS into libmodsecurity, run requests, read the logged ids.
#![cfg(feature = "libmodsecurity")]

use std::net::{IpAddr, Ipv4Addr};

use bulkhead_modsec_ref::crs::{Profile, corpus_dir};
use bulkhead_modsec_ref::{Reference, RulesSet};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn get(reference: &Reference, uri: &str) -> anyhow::Result<(Vec<u32>, Option<u16>)> {
    let mut tx = reference.transaction().map_err(anyhow::Error::msg)?;
    tx.process_connection(LOCAL, 40000, LOCAL, 80);
    tx.process_uri(uri.as_bytes(), b"GET", b"1.1");
    for (n, v) in [
        ("Host", "localhost"),
        ("User-Agent", "OWASP CRS test agent"),
        ("Accept", "*/*"),
    ] {
        tx.add_request_header(n.as_bytes(), v.as_bytes());
    }
    let mut blocked = tx.process_request_headers();
    if blocked.is_none() {
        blocked = tx.process_request_body();
    }
    if blocked.is_none() {
        tx.add_response_header(b"Content-Length", b"0");
        blocked = tx.process_response_headers(200, b"1.1");
    }
    if blocked.is_none() {
        blocked = tx.process_response_body();
    }
    tx.process_logging();
    Ok((tx.logged_ids(), blocked.map(|i| i.status)))
}

#[test]
fn ci_profile_logs_sqli_and_not_a_benign_get() -> anyhow::Result<()> {
    let reference = Reference::load(Profile::Ci, &corpus_dir()).map_err(anyhow::Error::msg)?;
    assert!(reference.modsecurity().who_am_i().contains("3.0"));
    let (ids, blocked) = get(&reference, "/?id=1%27%20OR%201%3D1--")?;
    assert!(ids.contains(&942100), "libinjection SQLi rule, got {ids:?}");
    assert_eq!(blocked, None, "DetectionOnly never blocks");
    let (ids, _) = get(&reference, "/index.html?page=2")?;
    assert_eq!(ids, Vec::<u32>::new());
    Ok(())
}

#[test]
fn pl1_on_blocks_with_949110() -> anyhow::Result<()> {
    let reference = Reference::load(Profile::Pl1On, &corpus_dir()).map_err(anyhow::Error::msg)?;
    let (ids, blocked) = get(&reference, "/?id=1%27%20OR%201%3D1--")?;
    assert_eq!(blocked, Some(403));
    assert!(
        ids.contains(&942100) && ids.contains(&949110),
        "got {ids:?}"
    );
    Ok(())
}

#[test]
fn errors_carry_modsecurity_text() {
    let err = RulesSet::from_text("SecRule ARGS \"@rx x\" \"id:1,pass,nosuchaction\"")
        .err()
        .unwrap_or_default();
    assert!(
        err.contains("Rules error") && err.contains("nosuchaction"),
        "{err}"
    );
    assert!(RulesSet::from_text("SecRule ARGS \"@rx x\" \"id:1,pass,log\"").is_ok());
}
