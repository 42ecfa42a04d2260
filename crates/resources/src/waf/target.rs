//! Exclusion targets (`ARGS:password`) and paths (`/api/upload`), checked strictly enough
//! that the SecLang the sidecar renders from them always parses: no quotes, commas,
//! semicolons, pipes or spaces, which would end an action or a variable list early.

use std::fmt;

/// Variables an exclusion may take out of rules: what CRS rules inspect. The second
/// value says whether the variable is a collection (and so takes a `:key`).
const VARIABLES: [(&str, bool); 23] = [
    ("ARGS", true),
    ("ARGS_GET", true),
    ("ARGS_POST", true),
    ("ARGS_NAMES", true),
    ("ARGS_GET_NAMES", true),
    ("ARGS_POST_NAMES", true),
    ("REQUEST_COOKIES", true),
    ("REQUEST_COOKIES_NAMES", true),
    ("REQUEST_HEADERS", true),
    ("REQUEST_HEADERS_NAMES", true),
    ("FILES", true),
    ("FILES_NAMES", true),
    ("MULTIPART_PART_HEADERS", true),
    ("XML", true),
    ("RESPONSE_HEADERS", true),
    ("REQUEST_BODY", false),
    ("REQUEST_URI", false),
    ("REQUEST_URI_RAW", false),
    ("REQUEST_FILENAME", false),
    ("REQUEST_BASENAME", false),
    ("REQUEST_LINE", false),
    ("QUERY_STRING", false),
    ("RESPONSE_BODY", false),
];

/// A checked exclusion target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WafTarget {
    /// The variable, upper case (`ARGS`).
    pub variable: &'static str,
    /// The member, when one is named.
    pub key: Option<TargetKey>,
}

/// The member part of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKey {
    /// A name (`password`), or an XPath expression for `XML`.
    Name(String),
    /// A regular expression written between slashes, stored without them.
    Regex(String),
}

impl fmt::Display for WafTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.variable)?;
        match &self.key {
            None => Ok(()),
            Some(TargetKey::Name(name)) => write!(f, ":{name}"),
            Some(TargetKey::Regex(re)) => write!(f, ":/{re}/"),
        }
    }
}

/// Bytes that would end an action (`,`), a ctl argument (`;`), a variable list (`|`) or
/// a quoted string (`"`, `'`) in the rendered SecLang.
fn forbidden(b: u8) -> bool {
    !b.is_ascii_graphic() || matches!(b, b',' | b';' | b'|' | b'"' | b'\'' | b'`')
}

/// Parses and checks a target such as `ARGS:password`, `REQUEST_HEADERS:User-Agent`,
/// `ARGS:/^json\.items\./` or `REQUEST_BODY`; the variable name is case-insensitive.
pub fn parse_target(text: &str) -> Result<WafTarget, String> {
    let (name, key) = match text.split_once(':') {
        Some((name, key)) => (name, Some(key)),
        None => (text, None),
    };
    let Some(&(variable, collection)) =
        VARIABLES.iter().find(|(v, _)| v.eq_ignore_ascii_case(name))
    else {
        let known: Vec<&str> = VARIABLES.iter().map(|(v, _)| *v).collect();
        return Err(format!(
            "`{name}` is not a variable an exclusion can remove; expected one of {}",
            known.join(", ")
        ));
    };
    let Some(key) = key else {
        return Ok(WafTarget {
            variable,
            key: None,
        });
    };
    if !collection {
        return Err(format!(
            "{variable} is a single value and takes no `:key`; write `{variable}`"
        ));
    }
    let key = parse_key(variable, key)?;
    Ok(WafTarget {
        variable,
        key: Some(key),
    })
}

fn parse_key(variable: &str, key: &str) -> Result<TargetKey, String> {
    if key.is_empty() {
        return Err(format!(
            "the key after `{variable}:` is empty; name a member (`{variable}:name`) or \
             leave out the colon for the whole collection"
        ));
    }
    if let Some(bad) = key.bytes().find(|b| forbidden(*b)) {
        return Err(format!(
            "the key `{key}` holds {}, which cannot be written in a target; spaces, \
             quotes, `,`, `;` and `|` are not allowed",
            describe(bad)
        ));
    }
    let regex = key
        .strip_prefix('/')
        .and_then(|k| k.strip_suffix('/'))
        .filter(|_| variable != "XML");
    match regex {
        Some("") => Err("the regular expression between the slashes is empty".into()),
        Some(re) if re.ends_with('\\') => Err(format!(
            "the regular expression `{re}` ends with a backslash, which would escape its \
             closing slash"
        )),
        Some(re) => Ok(TargetKey::Regex(re.to_owned())),
        None if key.contains('\\') => Err(format!(
            "the key `{key}` holds a backslash; only regular expressions (`/.../`) may"
        )),
        None => Ok(TargetKey::Name(key.to_owned())),
    }
}

fn describe(b: u8) -> String {
    match b {
        b' ' => "a space".into(),
        b if b.is_ascii_graphic() => format!("`{}`", char::from(b)),
        b => format!("the byte 0x{b:02x}"),
    }
}

/// Checks an exclusion path: it starts with `/`, is written decoded (no `%`), and holds
/// only the characters RFC 3986 allows in a path.
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("`{path}` does not start with `/`"));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b);
    match path.bytes().find(|b| !allowed(*b)) {
        None => Ok(()),
        Some(b'%') => Err(format!(
            "`{path}` holds `%`; write the path decoded: requests are matched after URL \
             decoding"
        )),
        Some(b) => Err(format!(
            "`{path}` holds {}, which a URL path cannot hold; expected letters, digits and \
             -._~!$&'()*+,;=:@/",
            describe(b)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn targets_parse_with_names_regexes_and_without_keys() {
        let t = parse_target("args:password").unwrap();
        assert_eq!(t.to_string(), "ARGS:password");
        let t = parse_target("REQUEST_HEADERS:User-Agent").unwrap();
        assert_eq!(t.key, Some(TargetKey::Name("User-Agent".into())));
        let t = parse_target(r"ARGS:/^json\.items\./").unwrap();
        assert_eq!(t.key, Some(TargetKey::Regex(r"^json\.items\.".into())));
        assert_eq!(t.to_string(), r"ARGS:/^json\.items\./");
        assert_eq!(parse_target("XML:/*").unwrap().to_string(), "XML:/*");
        assert_eq!(parse_target("REQUEST_BODY").unwrap().key, None);
    }

    #[test]
    fn bad_targets_say_why() {
        let cases = [
            ("TX:score", "is not a variable"),
            ("REQUEST_BODY:x", "takes no `:key`"),
            ("ARGS:", "is empty"),
            ("ARGS:a,b", "`,`"),
            ("ARGS:a b", "a space"),
            ("ARGS://", "is empty"),
            (r"ARGS:/a\/", "ends with a backslash"),
            (r"ARGS:a\b", "backslash"),
            ("ARGS:x|y", "`|`"),
        ];
        for (text, want) in cases {
            let err = parse_target(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn paths_are_rfc3986_and_decoded() {
        check_path("/api/upload").unwrap();
        check_path("/").unwrap();
        check_path("/a-b_c.d~e/@x:y;z=1").unwrap();
        assert!(check_path("api").unwrap_err().contains("start with"));
        assert!(check_path("/a%20b").unwrap_err().contains("decoded"));
        assert!(check_path("/a b").unwrap_err().contains("a space"));
        assert!(check_path("/a\"b").unwrap_err().contains("`\"`"));
    }

    proptest! {
        /// Whatever is accepted renders back to itself (modulo the variable's case) and
        /// holds none of the bytes that would break the rendered SecLang.
        #[test]
        fn accepted_targets_round_trip_and_are_safe(text in "[A-Za-z_]{1,22}(:[ -~]{0,12})?") {
            if let Ok(t) = parse_target(&text) {
                let shown = t.to_string();
                prop_assert!(shown.eq_ignore_ascii_case(&text) || shown.len() == text.len());
                prop_assert!(!shown.bytes().any(forbidden));
                prop_assert_eq!(parse_target(&shown).unwrap(), t);
            }
        }

        #[test]
        fn accepted_paths_hold_no_seclang_delimiters(path in "/[ -~]{0,16}") {
            if check_path(&path).is_ok() {
                prop_assert!(!path.bytes().any(|b| matches!(b, b'"' | b'\\' | b' ' | b'%')));
            }
        }
    }
}
