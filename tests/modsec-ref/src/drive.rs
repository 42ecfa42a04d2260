//! Feeding one HTTP exchange through an engine's transaction stages, the same way for both
//! engines (and the way libmodsecurity's nginx connector does): connection, request line,
//! headers, phase 1, body, phase 2, response headers, phase 3, response body, phase 4,
//! logging. A disruptive intervention ends the exchange early, as the connector would.

use std::net::{IpAddr, Ipv4Addr};

/// A transaction of either engine, seen through the stages both share.
pub trait Stages {
    /// Connection addresses.
    fn connection(&mut self, client: IpAddr, client_port: u16, server: IpAddr, server_port: u16);
    /// Request line: raw uri, method, version without `HTTP/`.
    fn uri(&mut self, uri: &[u8], method: &[u8], version: &[u8]);
    /// One request header.
    fn request_header(&mut self, name: &[u8], value: &[u8]);
    /// Phase 1.
    fn request_headers_done(&mut self) -> Option<Blocked>;
    /// Request body bytes.
    fn request_body(&mut self, data: &[u8]);
    /// Phase 2.
    fn request_body_done(&mut self) -> Option<Blocked>;
    /// One response header.
    fn response_header(&mut self, name: &[u8], value: &[u8]);
    /// Phase 3.
    fn response_headers_done(&mut self, status: u16, version: &[u8]) -> Option<Blocked>;
    /// Response body bytes.
    fn response_body(&mut self, data: &[u8]);
    /// Phase 4.
    fn response_body_done(&mut self) -> Option<Blocked>;
    /// Phase 5.
    fn logging(&mut self);
    /// Logged rule ids, deduplicated, in firing order.
    fn logged(&self) -> Vec<u32>;
}

/// A disruptive intervention, reduced to what both engines report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    /// HTTP status.
    pub status: u16,
    /// The rule that blocked (0 when unknown).
    pub rule_id: u32,
}

/// One request and, optionally, the response the backend gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Client address and port.
    pub client: (IpAddr, u16),
    /// Server address and port.
    pub server: (IpAddr, u16),
    /// Method token.
    pub method: Vec<u8>,
    /// Request target, raw.
    pub uri: Vec<u8>,
    /// Version without `HTTP/`.
    pub version: Vec<u8>,
    /// Request headers in wire order.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Request body (de-chunked).
    pub body: Vec<u8>,
    /// The response; None stops after the request phases.
    pub response: Option<Response>,
}

/// A backend response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Version without `HTTP/`.
    pub version: Vec<u8>,
    /// Headers in order.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

/// What an engine made of an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Logged rule ids in firing order.
    pub logged: Vec<u32>,
    /// The intervention that ended the exchange, if any.
    pub blocked: Option<Blocked>,
}

impl Exchange {
    /// A request from 127.0.0.1 to 127.0.0.1:80 (go-ftw's set-up), without a response.
    pub fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Self {
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Self {
            client: (local, 45678),
            server: (local, 80),
            method: method.as_bytes().to_vec(),
            uri: uri.as_bytes().to_vec(),
            version: b"1.1".to_vec(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            body: body.to_vec(),
            response: None,
        }
    }
}

/// Runs `ex` through `tx`; the transaction is left for the caller to inspect further.
pub fn drive<T: Stages>(tx: &mut T, ex: &Exchange) -> Outcome {
    let blocked = run_phases(tx, ex);
    tx.logging();
    Outcome {
        logged: tx.logged(),
        blocked,
    }
}

fn run_phases<T: Stages>(tx: &mut T, ex: &Exchange) -> Option<Blocked> {
    tx.connection(ex.client.0, ex.client.1, ex.server.0, ex.server.1);
    tx.uri(&ex.uri, &ex.method, &ex.version);
    for (n, v) in &ex.headers {
        tx.request_header(n, v);
    }
    if let Some(b) = tx.request_headers_done() {
        return Some(b);
    }
    if !ex.body.is_empty() {
        tx.request_body(&ex.body);
    }
    if let Some(b) = tx.request_body_done() {
        return Some(b);
    }
    let resp = ex.response.as_ref()?;
    for (n, v) in &resp.headers {
        tx.response_header(n, v);
    }
    if let Some(b) = tx.response_headers_done(resp.status, &resp.version) {
        return Some(b);
    }
    if !resp.body.is_empty() {
        tx.response_body(&resp.body);
    }
    tx.response_body_done()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the calls, and blocks at a chosen phase.
    #[derive(Default)]
    struct Recorder {
        calls: Vec<String>,
        block_at: u8,
    }

    impl Recorder {
        fn phase(&mut self, n: u8) -> Option<Blocked> {
            self.calls.push(format!("phase{n}"));
            (self.block_at == n).then_some(Blocked {
                status: 403,
                rule_id: u32::from(n),
            })
        }
    }

    impl Stages for Recorder {
        fn connection(&mut self, _: IpAddr, _: u16, _: IpAddr, _: u16) {
            self.calls.push("conn".into());
        }
        fn uri(&mut self, uri: &[u8], _: &[u8], _: &[u8]) {
            self.calls
                .push(format!("uri {}", String::from_utf8_lossy(uri)));
        }
        fn request_header(&mut self, n: &[u8], _: &[u8]) {
            self.calls.push(format!("h {}", String::from_utf8_lossy(n)));
        }
        fn request_headers_done(&mut self) -> Option<Blocked> {
            self.phase(1)
        }
        fn request_body(&mut self, d: &[u8]) {
            self.calls.push(format!("body {}", d.len()));
        }
        fn request_body_done(&mut self) -> Option<Blocked> {
            self.phase(2)
        }
        fn response_header(&mut self, n: &[u8], _: &[u8]) {
            self.calls
                .push(format!("rh {}", String::from_utf8_lossy(n)));
        }
        fn response_headers_done(&mut self, _: u16, _: &[u8]) -> Option<Blocked> {
            self.phase(3)
        }
        fn response_body(&mut self, d: &[u8]) {
            self.calls.push(format!("rbody {}", d.len()));
        }
        fn response_body_done(&mut self) -> Option<Blocked> {
            self.phase(4)
        }
        fn logging(&mut self) {
            self.calls.push("log".into());
        }
        fn logged(&self) -> Vec<u32> {
            vec![]
        }
    }

    fn exchange() -> Exchange {
        let mut ex = Exchange::request("POST", "/a", &[("Host", "x")], b"a=1");
        ex.response = Some(Response {
            status: 200,
            version: b"1.1".to_vec(),
            headers: vec![(b"Content-Type".to_vec(), b"text/html".to_vec())],
            body: b"hi".to_vec(),
        });
        ex
    }

    #[test]
    fn runs_every_stage_in_order() {
        let mut r = Recorder::default();
        let out = drive(&mut r, &exchange());
        assert_eq!(out.blocked, None);
        let want =
            "conn|uri /a|h Host|phase1|body 3|phase2|rh Content-Type|phase3|rbody 2|phase4|log";
        assert_eq!(r.calls.join("|"), want);
    }

    #[test]
    fn an_intervention_skips_to_logging() {
        let mut r = Recorder {
            block_at: 2,
            ..Recorder::default()
        };
        let out = drive(&mut r, &exchange());
        assert_eq!(
            out.blocked,
            Some(Blocked {
                status: 403,
                rule_id: 2
            })
        );
        assert_eq!(
            r.calls.join("|"),
            "conn|uri /a|h Host|phase1|body 3|phase2|log"
        );
    }

    #[test]
    fn without_a_response_stops_after_phase_2() {
        let mut r = Recorder::default();
        let mut ex = exchange();
        ex.response = None;
        drive(&mut r, &ex);
        assert_eq!(r.calls.last().map(String::as_str), Some("log"));
        assert!(!r.calls.iter().any(|c| c == "phase3"));
    }
}
