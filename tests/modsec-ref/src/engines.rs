//! Both engines behind [`Stages`]: libmodsecurity (through the FFI) and bulkhead-waf.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use crate::crs::{Profile, Source, sources};
use crate::drive::{Blocked, Stages};
use crate::ffi;

/// bulkhead-waf with `profile` loaded from the corpus, files unchanged.
pub fn bulkhead_rules(
    profile: Profile,
    corpus: &Path,
) -> Result<Arc<bulkhead_waf::RuleSet>, String> {
    bulkhead_rules_with(profile, corpus, &[])
}

/// bulkhead-waf with `profile` loaded from the corpus, files unchanged, then `extra`.
pub fn bulkhead_rules_with(
    profile: Profile,
    corpus: &Path,
    extra: &[Source],
) -> Result<Arc<bulkhead_waf::RuleSet>, String> {
    let mut list = sources(profile, corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    list.extend_from_slice(extra);
    let mut builder = bulkhead_waf::RuleSet::builder();
    for source in list {
        builder = match source {
            Source::File(path) => builder.file(&path),
            Source::Text { label, text } => builder.text(label, text, corpus),
        }
        .map_err(|e| e.to_string())?;
    }
    builder.build().map(Arc::new).map_err(|e| e.to_string())
}

fn blocked(i: Option<ffi::Intervention>) -> Option<Blocked> {
    i.map(|i| Blocked {
        status: i.status,
        rule_id: i.rule_id,
    })
}

fn ours(i: Option<bulkhead_waf::Intervention>) -> Option<Blocked> {
    i.map(|i| Blocked {
        status: i.status,
        rule_id: i.rule_id,
    })
}

/// Both engines have the same stage methods (the libmodsecurity wrapper mirrors
/// bulkhead-waf's API); only their intervention types differ, converted by `$convert`.
macro_rules! impl_stages {
    ($ty:ty, $convert:path) => {
        impl Stages for $ty {
            fn connection(
                &mut self,
                client: IpAddr,
                client_port: u16,
                server: IpAddr,
                server_port: u16,
            ) {
                self.process_connection(client, client_port, server, server_port);
            }
            fn uri(&mut self, uri: &[u8], method: &[u8], version: &[u8]) {
                self.process_uri(uri, method, version);
            }
            fn request_header(&mut self, name: &[u8], value: &[u8]) {
                self.add_request_header(name, value);
            }
            fn request_headers_done(&mut self) -> Option<Blocked> {
                $convert(self.process_request_headers())
            }
            fn request_body(&mut self, data: &[u8]) {
                self.append_request_body(data);
            }
            fn request_body_done(&mut self) -> Option<Blocked> {
                $convert(self.process_request_body())
            }
            fn response_header(&mut self, name: &[u8], value: &[u8]) {
                self.add_response_header(name, value);
            }
            fn response_headers_done(&mut self, status: u16, version: &[u8]) -> Option<Blocked> {
                $convert(self.process_response_headers(status, version))
            }
            fn response_body(&mut self, data: &[u8]) {
                self.append_response_body(data);
            }
            fn response_body_done(&mut self) -> Option<Blocked> {
                $convert(self.process_response_body())
            }
            fn logging(&mut self) {
                self.process_logging();
            }
            fn logged(&self) -> Vec<u32> {
                self.logged_ids()
            }
        }
    };
}

impl_stages!(ffi::Transaction<'_>, blocked);
impl_stages!(bulkhead_waf::Transaction, ours);
