//! Request body processors: URL-encoded forms, cookies, JSON, XML and multipart.
//!
//! Every processor is a pure function over bytes that follows libmodsecurity 3's behaviour
//! (its `transaction.cc` argument extraction and `request_body_processor/*.cc`), quirks
//! included where rules can observe them. The engine turns the results into SecLang
//! variables (`ARGS_GET`, `ARGS_POST`, `REQUEST_COOKIES`, `FILES`, `MULTIPART_*`, `XML`,
//! `REQBODY_ERROR_MSG`, …).

mod cookies;
mod json;
mod json_lex;
mod multipart;
mod urlencoded;
mod xml;

pub use cookies::parse_cookies;
pub use json::{JsonOutcome, parse_json, parse_json_limited};
pub use multipart::{
    FilePart, Multipart, MultipartFlags, MultipartOptions, parse_multipart, parse_multipart_with,
};
pub use urlencoded::{
    UrlEncoded, parse_urlencoded, parse_urlencoded_checked, url_decode_nonstrict,
};
pub use xml::{XmlDoc, XmlOutcome, parse_xml, parse_xml_partial};

/// One name/value pair (decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// Argument name, as the variable key (`ARGS:name`).
    pub name: Vec<u8>,
    /// Argument value.
    pub value: Vec<u8>,
}

impl Arg {
    /// Builds an argument from anything byte-like.
    pub fn new(name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}
