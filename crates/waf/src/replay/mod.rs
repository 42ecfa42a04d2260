//! Running one raw request through every phase, with the backend the CRS regression tests
//! run against emulated ([`albedo`]) — what `bulkhead waf test`, the conformance runner and
//! the differential test do.

pub mod albedo;

pub use albedo::Response;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::http1::RawRequest;
use crate::{RuleSet, Transaction};

/// Runs `req` through phases 1–5 from 127.0.0.1, with `response` as the upstream answer
/// (skipped when a request phase stopped the transaction).
pub fn run(rules: &Arc<RuleSet>, req: &RawRequest, response: &Response) -> Transaction {
    let mut tx = Transaction::new(Arc::clone(rules));
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    tx.process_connection(local, 40_000, local, 80);
    tx.process_uri(&req.uri, &req.method, &req.version);
    for (name, value) in &req.headers {
        tx.add_request_header(name, value);
    }
    if tx.process_request_headers().is_none() {
        tx.append_request_body(&req.body);
        if tx.process_request_body().is_none() {
            for (name, value) in &response.headers {
                tx.add_response_header(name.as_bytes(), value.as_bytes());
            }
            if tx
                .process_response_headers(response.status, b"1.1")
                .is_none()
            {
                tx.append_response_body(&response.body);
                tx.process_response_body();
            }
        }
    }
    tx.process_logging();
    tx
}
