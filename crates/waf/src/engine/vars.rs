//! SecLang variables: names, compiled targets and exclusions.

use regex::bytes::{Regex, RegexBuilder};

use crate::parse::ast::{VarKey, VarSpec};

/// A collection (many members, selectable by key) or a scalar variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Var {
    /// A collection.
    Coll(Coll),
    /// A single value.
    Scalar(Scalar),
}

macro_rules! name_table {
    ($ty:ident { $($variant:ident = $name:literal,)* }) => {
        /// One of the variables of this kind, by SecLang name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub(crate) enum $ty { $($variant,)* }
        impl $ty {
            /// Every variant, in declaration order.
            pub(crate) const ALL: &'static [$ty] = &[$($ty::$variant,)*];
            /// The SecLang name.
            pub(crate) fn name(self) -> &'static str {
                match self { $($ty::$variant => $name,)* }
            }
        }
    };
}

name_table!(Coll {
    Args = "ARGS",
    ArgsNames = "ARGS_NAMES",
    ArgsGet = "ARGS_GET",
    ArgsGetNames = "ARGS_GET_NAMES",
    ArgsPost = "ARGS_POST",
    ArgsPostNames = "ARGS_POST_NAMES",
    RequestHeaders = "REQUEST_HEADERS",
    RequestHeadersNames = "REQUEST_HEADERS_NAMES",
    RequestCookies = "REQUEST_COOKIES",
    RequestCookiesNames = "REQUEST_COOKIES_NAMES",
    ResponseHeaders = "RESPONSE_HEADERS",
    ResponseHeadersNames = "RESPONSE_HEADERS_NAMES",
    Tx = "TX",
    Files = "FILES",
    FilesNames = "FILES_NAMES",
    FilesSizes = "FILES_SIZES",
    FilesTmpNames = "FILES_TMPNAMES",
    MultipartPartHeaders = "MULTIPART_PART_HEADERS",
    Xml = "XML",
    MatchedVars = "MATCHED_VARS",
    MatchedVarsNames = "MATCHED_VARS_NAMES",
    Env = "ENV",
    Geo = "GEO",
    Ip = "IP",
    Session = "SESSION",
    Global = "GLOBAL",
    Rule = "RULE",
});

name_table!(Scalar {
    RequestUri = "REQUEST_URI",
    RequestUriRaw = "REQUEST_URI_RAW",
    RequestFilename = "REQUEST_FILENAME",
    RequestBasename = "REQUEST_BASENAME",
    PathInfo = "PATH_INFO",
    RequestLine = "REQUEST_LINE",
    RequestMethod = "REQUEST_METHOD",
    RequestProtocol = "REQUEST_PROTOCOL",
    QueryString = "QUERY_STRING",
    RequestBody = "REQUEST_BODY",
    RequestBodyLength = "REQUEST_BODY_LENGTH",
    FullRequest = "FULL_REQUEST",
    FullRequestLength = "FULL_REQUEST_LENGTH",
    ArgsCombinedSize = "ARGS_COMBINED_SIZE",
    FilesCombinedSize = "FILES_COMBINED_SIZE",
    ReqbodyProcessor = "REQBODY_PROCESSOR",
    ReqbodyError = "REQBODY_ERROR",
    ReqbodyErrorMsg = "REQBODY_ERROR_MSG",
    ReqbodyProcessorError = "REQBODY_PROCESSOR_ERROR",
    ReqbodyProcessorErrorMsg = "REQBODY_PROCESSOR_ERROR_MSG",
    UrlencodedError = "URLENCODED_ERROR",
    MultipartStrictError = "MULTIPART_STRICT_ERROR",
    MultipartUnmatchedBoundary = "MULTIPART_UNMATCHED_BOUNDARY",
    MultipartBoundaryQuoted = "MULTIPART_BOUNDARY_QUOTED",
    MultipartBoundaryWhitespace = "MULTIPART_BOUNDARY_WHITESPACE",
    MultipartDataBefore = "MULTIPART_DATA_BEFORE",
    MultipartDataAfter = "MULTIPART_DATA_AFTER",
    MultipartHeaderFolding = "MULTIPART_HEADER_FOLDING",
    MultipartLfLine = "MULTIPART_LF_LINE",
    MultipartCrlfLfLines = "MULTIPART_CRLF_LF_LINES",
    MultipartMissingSemicolon = "MULTIPART_MISSING_SEMICOLON",
    MultipartInvalidQuoting = "MULTIPART_INVALID_QUOTING",
    MultipartInvalidPart = "MULTIPART_INVALID_PART",
    MultipartInvalidHeaderFolding = "MULTIPART_INVALID_HEADER_FOLDING",
    MultipartFileLimitExceeded = "MULTIPART_FILE_LIMIT_EXCEEDED",
    MultipartFilename = "MULTIPART_FILENAME",
    MultipartName = "MULTIPART_NAME",
    InboundDataError = "INBOUND_DATA_ERROR",
    OutboundDataError = "OUTBOUND_DATA_ERROR",
    RemoteAddr = "REMOTE_ADDR",
    RemotePort = "REMOTE_PORT",
    RemoteHost = "REMOTE_HOST",
    RemoteUser = "REMOTE_USER",
    AuthType = "AUTH_TYPE",
    ServerAddr = "SERVER_ADDR",
    ServerPort = "SERVER_PORT",
    ServerName = "SERVER_NAME",
    UniqueId = "UNIQUE_ID",
    ResponseBody = "RESPONSE_BODY",
    ResponseStatus = "RESPONSE_STATUS",
    ResponseProtocol = "RESPONSE_PROTOCOL",
    ResponseContentType = "RESPONSE_CONTENT_TYPE",
    ResponseContentLength = "RESPONSE_CONTENT_LENGTH",
    StatusLine = "STATUS_LINE",
    MatchedVar = "MATCHED_VAR",
    MatchedVarName = "MATCHED_VAR_NAME",
    HighestSeverity = "HIGHEST_SEVERITY",
    Duration = "DURATION",
    Time = "TIME",
    TimeEpoch = "TIME_EPOCH",
    WebserverErrorLog = "WEBSERVER_ERROR_LOG",
});

impl Var {
    /// Looks a variable up by its (upper-cased) SecLang name.
    pub(crate) fn from_name(name: &str) -> Option<Var> {
        let upper = name.to_ascii_uppercase();
        Coll::ALL
            .iter()
            .find(|c| c.name() == upper)
            .map(|c| Var::Coll(*c))
            .or_else(|| {
                Scalar::ALL
                    .iter()
                    .find(|s| s.name() == upper)
                    .map(|s| Var::Scalar(*s))
            })
    }

    /// The SecLang name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Var::Coll(c) => c.name(),
            Var::Scalar(s) => s.name(),
        }
    }
}

/// How a collection member is selected.
#[derive(Debug, Clone)]
pub(crate) enum KeySel {
    /// By name, compared case-insensitively (stored lower-cased).
    Name(Vec<u8>),
    /// By a regular expression on the name (case-insensitive, as libmodsecurity compiles it).
    Regex(Regex),
    /// A regular expression that is a plain literal, anchored at the start (`/^__utm/`) or
    /// not (`/paramcounter_.*/`): compared without running a regex (lower-cased literal).
    Literal {
        /// The literal, lower-cased.
        text: Vec<u8>,
        /// `^literal`: at the start of the name only.
        anchored: bool,
    },
}

impl KeySel {
    /// Whether a member named `key` is selected.
    pub(crate) fn selects(&self, key: &[u8]) -> bool {
        match self {
            KeySel::Name(n) => key.eq_ignore_ascii_case(n),
            KeySel::Regex(r) => r.is_match(key),
            KeySel::Literal {
                text,
                anchored: true,
            } => key.len() >= text.len() && key[..text.len()].eq_ignore_ascii_case(text),
            KeySel::Literal {
                text,
                anchored: false,
            } => key
                .windows(text.len().max(1))
                .any(|w| w.eq_ignore_ascii_case(text)),
        }
    }
}

/// One compiled target of a rule (`ARGS`, `REQUEST_HEADERS:User-Agent`, `&TX:foo`).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The variable.
    pub(crate) var: Var,
    /// The member selector; for `XML` the XPath expression is kept in `xpath`.
    pub(crate) key: Option<KeySel>,
    /// The XPath expression of an `XML:` target.
    pub(crate) xpath: Option<String>,
    /// `&`: count the members instead of inspecting them.
    pub(crate) count: bool,
}

/// A compiled exclusion (`!ARGS:password`): members of `var` selected by `key` (all members
/// when `key` is None).
#[derive(Debug, Clone)]
pub(crate) struct Exclusion {
    /// The variable whose members are excluded.
    pub(crate) var: Var,
    /// Which members.
    pub(crate) key: Option<KeySel>,
}

impl Exclusion {
    /// Whether the member `key` of `var` is excluded.
    pub(crate) fn excludes(&self, var: Var, key: &[u8]) -> bool {
        self.var == var && self.key.as_ref().is_none_or(|k| k.selects(key))
    }
}

/// Compiles a member selector.
pub(crate) fn compile_key(key: &VarKey) -> Result<KeySel, String> {
    match key {
        VarKey::Name(n) => Ok(KeySel::Name(n.to_ascii_lowercase().into_bytes())),
        VarKey::Regex(r) if literal_regex(r).is_some() => {
            let (text, anchored) = literal_regex(r).unwrap_or_default();
            Ok(KeySel::Literal { text, anchored })
        }
        VarKey::Regex(r) => RegexBuilder::new(r)
            .case_insensitive(true)
            .unicode(false)
            .build()
            .or_else(|_| RegexBuilder::new(r).case_insensitive(true).build())
            .map(KeySel::Regex)
            .map_err(|e| format!("invalid key regular expression /{r}/: {e}")),
    }
}

/// A key regex that only says "starts with" or "contains" a literal (CRS's `/^__utm/`,
/// `/^header_name_920450_/`, `/paramcounter_.*/`): the literal, lower-cased, and whether it
/// is anchored. None when the pattern uses anything else.
fn literal_regex(pattern: &str) -> Option<(Vec<u8>, bool)> {
    let (anchored, rest) = match pattern.strip_prefix('^') {
        Some(r) => (true, r),
        None => (false, pattern),
    };
    let body = rest.strip_suffix(".*").unwrap_or(rest);
    let plain = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    plain.then(|| (body.to_ascii_lowercase().into_bytes(), anchored))
}

/// Compiles one variable of a target list.
pub(crate) fn compile_target(spec: &VarSpec) -> Result<Target, String> {
    let var =
        Var::from_name(&spec.name).ok_or_else(|| format!("unknown variable {}", spec.name))?;
    let (key, xpath) = match (&spec.key, var) {
        (Some(VarKey::Name(x)), Var::Coll(Coll::Xml)) => (None, Some(x.clone())),
        (Some(VarKey::Regex(x)), Var::Coll(Coll::Xml)) => (None, Some(format!("/{x}/"))),
        (Some(k), Var::Coll(_)) => (Some(compile_key(k)?), None),
        (Some(_), Var::Scalar(s)) => {
            return Err(format!(
                "{} is not a collection: it takes no :key",
                s.name()
            ));
        }
        (None, _) => (None, None),
    };
    Ok(Target {
        var,
        key,
        xpath,
        count: spec.count,
    })
}

/// Compiles an exclusion (`!VAR[:key]`).
pub(crate) fn compile_exclusion(spec: &VarSpec) -> Result<Exclusion, String> {
    let var =
        Var::from_name(&spec.name).ok_or_else(|| format!("unknown variable {}", spec.name))?;
    let key = spec.key.as_ref().map(compile_key).transpose()?;
    Ok(Exclusion { var, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_both_ways() {
        for c in Coll::ALL {
            assert_eq!(Var::from_name(c.name()), Some(Var::Coll(*c)));
        }
        for s in Scalar::ALL {
            assert_eq!(
                Var::from_name(&s.name().to_lowercase()),
                Some(Var::Scalar(*s))
            );
        }
        assert_eq!(Var::from_name("NOPE"), None);
    }

    #[test]
    fn literal_key_regexes_skip_the_regex_engine() {
        let k = compile_key(&VarKey::Regex("^header_name_920450_".into())).unwrap();
        assert!(matches!(k, KeySel::Literal { anchored: true, .. }));
        assert!(k.selects(b"HEADER_NAME_920450_accept") && !k.selects(b"x_header_name_920450_"));
        let k = compile_key(&VarKey::Regex("paramcounter_.*".into())).unwrap();
        assert!(matches!(
            k,
            KeySel::Literal {
                anchored: false,
                ..
            }
        ));
        assert!(k.selects(b"tx_paramcounter_a") && !k.selects(b"paramcounte"));
        let k = compile_key(&VarKey::Regex("^_ga(?:_\\w+)?$".into())).unwrap();
        assert!(matches!(k, KeySel::Regex(_)));
    }

    proptest::proptest! {
        #[test]
        fn literal_keys_agree_with_the_regex(lit in "[a-z_-]{1,8}", key in "[A-Za-z_-]{0,12}", anchored: bool) {
            let pattern = if anchored { format!("^{lit}") } else { lit.clone() };
            let fast = compile_key(&VarKey::Regex(pattern.clone())).unwrap();
            let slow = RegexBuilder::new(&pattern).case_insensitive(true).build().unwrap();
            proptest::prop_assert_eq!(fast.selects(key.as_bytes()), slow.is_match(key.as_bytes()));
        }
    }

    #[test]
    fn keys_select_case_insensitively() {
        let k = compile_key(&VarKey::Name("User-Agent".into())).unwrap();
        assert!(k.selects(b"user-agent"));
        let r = compile_key(&VarKey::Regex("^__utm".into())).unwrap();
        assert!(r.selects(b"__UTMZ"));
        assert!(!r.selects(b"x__utm"));
    }

    proptest::proptest! {
        #[test]
        fn name_keys_match_ascii_case_insensitively(name in "[A-Za-z0-9_-]{1,12}") {
            let k = compile_key(&VarKey::Name(name.clone())).unwrap();
            proptest::prop_assert!(k.selects(name.to_uppercase().as_bytes()));
            proptest::prop_assert!(k.selects(name.to_lowercase().as_bytes()));
        }
    }
}
