//! A transaction's variables and how targets select from them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::macros::{MacroSource, MacroVar};
use super::vars::{Coll, KeySel, Scalar, Target, Var};
use crate::body::{Arg, XmlDoc};

/// The TX collection: looked up by name hundreds of times per request, so hashed with a
/// cheap word-wise hash. Most names come from the rules; the few built from client data
/// (CRS stores each request header name) are bounded by the proxy's header limits, so
/// colliding names cannot make lookups grow without bound.
pub(crate) type TxMap = HashMap<String, Vec<u8>, BuildHasherDefault<NameHasher>>;

/// A multiply-xor hash over the name, a word at a time.
pub(crate) struct NameHasher(u64);

impl NameHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x0100_0000_01b3);
    }
}

impl Default for NameHasher {
    fn default() -> Self {
        NameHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Eight bytes at a time, then the tail: names are 10-40 bytes long.
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.mix(u64::from_le_bytes(word));
        }
        for b in chunks.remainder() {
            self.mix(u64::from(*b));
        }
    }
}

/// A file part of a multipart body, as the FILES collections see it.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileVar {
    pub(crate) name: Vec<u8>,
    pub(crate) filename: Vec<u8>,
    pub(crate) size: usize,
}

/// Everything rules can read about one transaction.
#[derive(Debug, Default)]
pub(crate) struct Data {
    pub(crate) scalars: Vec<Option<Vec<u8>>>,
    pub(crate) args_get: Vec<Arg>,
    pub(crate) args_post: Vec<Arg>,
    /// Arguments in ARGS but neither ARGS_GET nor ARGS_POST (JSON bodies, as libmodsecurity).
    pub(crate) args_other: Vec<Arg>,
    pub(crate) request_headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) cookies: Vec<Arg>,
    pub(crate) response_headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// TX, keyed by lower-cased name.
    pub(crate) tx: TxMap,
    pub(crate) files: Vec<FileVar>,
    pub(crate) part_headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) xml: Option<XmlDoc>,
    /// MATCHED_VARS of the rule being evaluated: (full name, value).
    pub(crate) matched_vars: Vec<(Vec<u8>, Vec<u8>)>,
    /// The id of the rule being evaluated, for `%{rule.id}`.
    pub(crate) rule_id: u32,
}

/// One value a target produced: its display name parts and the value.
pub(crate) struct Value<'a> {
    pub(crate) var: &'static str,
    pub(crate) key: Option<Cow<'a, [u8]>>,
    pub(crate) value: Cow<'a, [u8]>,
    /// The value is request or response data that stays where it is for the rest of the
    /// transaction, so its address identifies it in the transformation cache.
    pub(crate) stable: bool,
}

impl Value<'_> {
    /// The name as MATCHED_VAR_NAME shows it: `ARGS:id`, `REQUEST_URI`.
    pub(crate) fn full_name(&self) -> Vec<u8> {
        let key_len = self.key.as_ref().map_or(0, |k| k.len() + 1);
        let mut n = Vec::with_capacity(self.var.len() + key_len);
        n.extend_from_slice(self.var.as_bytes());
        if let Some(k) = &self.key {
            n.push(b':');
            n.extend_from_slice(k);
        }
        n
    }
}

impl Data {
    pub(crate) fn new() -> Data {
        Data {
            scalars: vec![None; Scalar::ALL.len()],
            // CRS sets about a hundred TX variables on every request: no rehashing on the way.
            tx: TxMap::with_capacity_and_hasher(128, Default::default()),
            ..Data::default()
        }
    }

    pub(crate) fn set(&mut self, s: Scalar, value: impl Into<Vec<u8>>) {
        self.scalars[s as usize] = Some(value.into());
    }

    /// Sets a scalar reusing its buffer (MATCHED_VAR changes on every match).
    pub(crate) fn set_in_place(&mut self, s: Scalar, value: &[u8]) {
        match &mut self.scalars[s as usize] {
            Some(v) => {
                v.clear();
                v.extend_from_slice(value);
            }
            slot => *slot = Some(value.to_vec()),
        }
    }

    /// Sets a TX variable (name already lower-cased), reusing the buffer of an existing one.
    pub(crate) fn set_tx(&mut self, name: &str, value: &[u8]) {
        match self.tx.get_mut(name) {
            Some(v) => {
                v.clear();
                v.extend_from_slice(value);
            }
            None => {
                self.tx.insert(name.to_owned(), value.to_vec());
            }
        }
    }

    pub(crate) fn get(&self, s: Scalar) -> Option<&[u8]> {
        self.scalars[s as usize].as_deref()
    }

    /// Calls `f` with each value `target` selects, minus `excluded` members (or once with
    /// their number for `&` targets). Visiting instead of collecting keeps the per-rule
    /// cost free of allocations.
    pub(crate) fn visit<'a>(
        &'a self,
        target: &Target,
        excluded: &dyn Fn(Var, &[u8]) -> bool,
        f: &mut dyn FnMut(Value<'a>),
    ) {
        if target.count {
            let mut n = 0usize;
            match target.var {
                Var::Scalar(s) => n = usize::from(self.get(s).is_some_and(|v| !v.is_empty())),
                Var::Coll(c) => self.visit_coll(c, target, excluded, &mut |_| n += 1),
            }
            f(Value {
                var: target.var.name(),
                key: None,
                value: Cow::Owned(n.to_string().into_bytes()),
                stable: false,
            });
            return;
        }
        match target.var {
            Var::Scalar(_) if excluded(target.var, b"") => {}
            Var::Scalar(s) => f(Value {
                var: s.name(),
                key: None,
                value: Cow::Borrowed(self.get(s).unwrap_or_default()),
                stable: stable_scalar(s),
            }),
            Var::Coll(c) => self.visit_coll(c, target, excluded, f),
        }
    }

    fn visit_coll<'a>(
        &'a self,
        c: Coll,
        target: &Target,
        excluded: &dyn Fn(Var, &[u8]) -> bool,
        f: &mut dyn FnMut(Value<'a>),
    ) {
        if self.coll_is_empty(c) {
            return;
        }
        let var = Var::Coll(c);
        let name = c.name();
        // TX keys are stored lower-cased: a named member is one lookup, not a scan.
        if let (Coll::Tx, Some(KeySel::Name(key))) = (c, &target.key) {
            if let Some((k, v)) = std::str::from_utf8(key)
                .ok()
                .and_then(|k| self.tx.get_key_value(k))
                && !excluded(var, k.as_bytes())
            {
                f(Value {
                    var: name,
                    key: Some(Cow::Borrowed(k.as_bytes())),
                    value: Cow::Borrowed(v),
                    stable: false,
                });
            }
            return;
        }
        let stable = !matches!(c, Coll::Tx | Coll::MatchedVars | Coll::MatchedVarsNames);
        let mut push = |key: &'a [u8], value: Cow<'a, [u8]>| {
            if target.key.as_ref().is_none_or(|k| k.selects(key)) && !excluded(var, key) {
                let stable = stable && matches!(value, Cow::Borrowed(_));
                f(Value {
                    var: name,
                    key: Some(Cow::Borrowed(key)),
                    value,
                    stable,
                });
            }
        };
        let args_get = self.args_get.iter();
        let args_post = self.args_post.iter();
        let args = args_get
            .clone()
            .chain(args_post.clone())
            .chain(self.args_other.iter());
        match c {
            Coll::Args => args.for_each(|a| push(&a.name, Cow::Borrowed(&a.value))),
            Coll::ArgsNames => args.for_each(|a| push(&a.name, Cow::Borrowed(&a.name))),
            Coll::ArgsGet => args_get.for_each(|a| push(&a.name, Cow::Borrowed(&a.value))),
            Coll::ArgsGetNames => args_get.for_each(|a| push(&a.name, Cow::Borrowed(&a.name))),
            Coll::ArgsPost => args_post.for_each(|a| push(&a.name, Cow::Borrowed(&a.value))),
            Coll::ArgsPostNames => args_post.for_each(|a| push(&a.name, Cow::Borrowed(&a.name))),
            Coll::RequestHeaders => self
                .request_headers
                .iter()
                .for_each(|(k, v)| push(k, Cow::Borrowed(v))),
            Coll::RequestHeadersNames => self
                .request_headers
                .iter()
                .for_each(|(k, _)| push(k, Cow::Borrowed(k))),
            Coll::RequestCookies => self
                .cookies
                .iter()
                .for_each(|a| push(&a.name, Cow::Borrowed(&a.value))),
            Coll::RequestCookiesNames => self
                .cookies
                .iter()
                .for_each(|a| push(&a.name, Cow::Borrowed(&a.name))),
            Coll::ResponseHeaders => self
                .response_headers
                .iter()
                .for_each(|(k, v)| push(k, Cow::Borrowed(v))),
            Coll::ResponseHeadersNames => self
                .response_headers
                .iter()
                .for_each(|(k, _)| push(k, Cow::Borrowed(k))),
            Coll::Tx => {
                // In name order, so that matches over TX:/regex/ come out the same every time
                // (selected first: sorting the whole collection would cost every such rule).
                let mut entries: Vec<(&String, &Vec<u8>)> = self
                    .tx
                    .iter()
                    .filter(|(k, _)| target.key.as_ref().is_none_or(|s| s.selects(k.as_bytes())))
                    .collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                entries
                    .into_iter()
                    .for_each(|(k, v)| push(k.as_bytes(), Cow::Borrowed(v)));
            }
            Coll::Files => self
                .files
                .iter()
                .for_each(|f| push(&f.name, Cow::Borrowed(&f.filename))),
            Coll::FilesNames => self
                .files
                .iter()
                .for_each(|f| push(&f.name, Cow::Borrowed(&f.name))),
            Coll::FilesSizes => self
                .files
                .iter()
                .for_each(|f| push(&f.name, Cow::Owned(f.size.to_string().into_bytes()))),
            Coll::MultipartPartHeaders => self
                .part_headers
                .iter()
                .for_each(|(k, v)| push(k, Cow::Borrowed(v))),
            Coll::MatchedVars => self
                .matched_vars
                .iter()
                .for_each(|(k, v)| push(k, Cow::Borrowed(v))),
            Coll::MatchedVarsNames => self
                .matched_vars
                .iter()
                .for_each(|(k, _)| push(k, Cow::Borrowed(k))),
            Coll::Xml => self.visit_xml(target, f),
            // Persistent collections, environment and geo data are not kept by Bulkhead.
            Coll::FilesTmpNames
            | Coll::Env
            | Coll::Geo
            | Coll::Ip
            | Coll::Session
            | Coll::Global
            | Coll::Rule => {}
        }
    }

    /// Whether a collection has no members: most rules name collections a small request
    /// leaves empty (cookies, arguments, files, XML), and those cost nothing then.
    fn coll_is_empty(&self, c: Coll) -> bool {
        match c {
            Coll::Args | Coll::ArgsNames => {
                self.args_get.is_empty() && self.args_post.is_empty() && self.args_other.is_empty()
            }
            Coll::ArgsGet | Coll::ArgsGetNames => self.args_get.is_empty(),
            Coll::ArgsPost | Coll::ArgsPostNames => self.args_post.is_empty(),
            Coll::RequestHeaders | Coll::RequestHeadersNames => self.request_headers.is_empty(),
            Coll::RequestCookies | Coll::RequestCookiesNames => self.cookies.is_empty(),
            Coll::ResponseHeaders | Coll::ResponseHeadersNames => self.response_headers.is_empty(),
            Coll::Tx => self.tx.is_empty(),
            Coll::Files | Coll::FilesNames | Coll::FilesSizes => self.files.is_empty(),
            Coll::MultipartPartHeaders => self.part_headers.is_empty(),
            Coll::MatchedVars | Coll::MatchedVarsNames => self.matched_vars.is_empty(),
            Coll::Xml => self.xml.is_none(),
            Coll::FilesTmpNames
            | Coll::Env
            | Coll::Geo
            | Coll::Ip
            | Coll::Session
            | Coll::Global
            | Coll::Rule => true,
        }
    }

    fn visit_xml<'a>(&'a self, target: &Target, f: &mut dyn FnMut(Value<'a>)) {
        let (Some(doc), Some(xpath)) = (&self.xml, &target.xpath) else {
            return;
        };
        if let Ok(values) = doc.select(xpath) {
            for v in values {
                f(Value {
                    var: "XML",
                    key: Some(Cow::Owned(xpath.as_bytes().to_vec())),
                    value: Cow::Owned(v),
                    stable: false,
                });
            }
        }
    }

    /// The first value of `var` (member `key`), for macros.
    fn first(&self, var: Var, key: Option<&str>) -> Option<Vec<u8>> {
        let target = Target {
            var,
            key: key.map(|k| KeySel::Name(k.as_bytes().to_vec())),
            xpath: None,
            count: false,
        };
        let mut first = None;
        self.visit(&target, &|_, _| false, &mut |v| {
            if first.is_none() {
                first = Some(v.value.into_owned());
            }
        });
        first
    }
}

impl MacroSource for Data {
    fn write_var(&self, v: &MacroVar, out: &mut Vec<u8>) {
        if v.name == "TX" {
            if let Some(val) = v.key.as_deref().and_then(|k| self.tx.get(k)) {
                out.extend_from_slice(val);
            }
            return;
        }
        if v.name == "RULE" {
            if v.key.as_deref() == Some("id") {
                out.extend_from_slice(self.rule_id.to_string().as_bytes());
            }
            return;
        }
        let Some(var) = Var::from_name(&v.name) else {
            return;
        };
        let key = match var {
            Var::Coll(_) => v.key.as_deref(),
            Var::Scalar(_) => None,
        };
        if let Some(val) = self.first(var, key) {
            out.extend_from_slice(&val);
        }
    }
}

/// Scalars set once per transaction and never replaced.
fn stable_scalar(s: Scalar) -> bool {
    matches!(
        s,
        Scalar::RequestUri
            | Scalar::RequestUriRaw
            | Scalar::RequestFilename
            | Scalar::RequestBasename
            | Scalar::PathInfo
            | Scalar::RequestLine
            | Scalar::RequestMethod
            | Scalar::RequestProtocol
            | Scalar::QueryString
            | Scalar::RequestBody
            | Scalar::ResponseBody
    )
}

/// libmodsecurity's number parsing for setvar arithmetic: C `atoll` (leading whitespace,
/// an optional sign, digits; anything else ends the number, 0 if none), shared with the
/// numeric operators.
pub(crate) use crate::operator::atoll as atoi;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi(b"  42abc"), 42);
        assert_eq!(atoi(b"-7"), -7);
        assert_eq!(atoi(b""), 0);
        assert_eq!(atoi(b"x1"), 0);
    }

    proptest::proptest! {
        #[test]
        fn atoi_agrees_with_parse(n in -1_000_000_000i64..1_000_000_000) {
            proptest::prop_assert_eq!(atoi(n.to_string().as_bytes()), n);
        }
    }
}
