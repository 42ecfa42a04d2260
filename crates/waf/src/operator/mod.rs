//! SecLang operators (`@rx`, `@pm`, numeric and string comparisons, libinjection, …).
//!
//! Semantics follow libmodsecurity 3: an operator is compiled once when the rule set is
//! loaded (regexes, Aho-Corasick automata, IP sets, byte tables) and then evaluated on every
//! (already transformed) value. Negation (`!@op`) is applied by the engine, not here.

mod injection;
mod ip;
mod numeric;
mod pcre;
mod phrase;
mod rx;
mod text;
mod validate;

pub(crate) use numeric::atoll;

#[cfg(test)]
mod crs_tests;
#[cfg(test)]
mod tests;

use std::path::Path;

use ip::IpSet;
use numeric::{Cmp, NumberOp};
use phrase::Phrases;
use rx::Rx;
use text::{TextKind, TextOp};
use validate::ByteRanges;

/// What an operator may need while compiling: the directory of the rule file (for @pmFromFile/@ipMatchFromFile relative paths).
#[derive(Debug, Clone, Copy)]
pub struct OpContext<'a> {
    /// Directory that relative data-file paths are resolved against.
    pub base_dir: &'a Path,
}

/// Up to ten capture groups (TX:0 … TX:9) collected when the rule has the `capture` action.
///
/// `groups[i]` is `None` when group `i` did not take part in the match; libmodsecurity then
/// leaves `TX:i` as it was. After a non-match `groups` is empty.
#[derive(Debug, Default, Clone)]
pub struct Captures {
    /// Group 0 first; at most [`MAX_CAPTURES`] entries.
    pub groups: Vec<Option<Vec<u8>>>,
}

/// How many capture groups are kept (TX:0 … TX:9).
pub const MAX_CAPTURES: usize = 10;

impl Captures {
    fn set_group_zero(&mut self, value: &[u8]) {
        self.groups.clear();
        self.groups.push(Some(value.to_vec()));
    }
}

/// A compiled operator (without negation: the engine applies `!`).
#[derive(Debug)]
pub struct Operator {
    name: &'static str,
    argument: String,
    macros: bool,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Rx(Rx),
    Pm(Phrases),
    /// `@pm` whose phrase list contains macros: parsed and compiled per evaluation.
    PmDynamic,
    Text(TextOp),
    Number(NumberOp),
    Ip(IpSet),
    ByteRange(ByteRanges),
    UrlEncoding,
    Utf8Encoding,
    Sqli,
    Xss,
    Always,
    Never,
}

/// Operator names (lower-cased) and their canonical spelling.
const NAMES: &[(&str, &str)] = &[
    ("rx", "rx"),
    ("pm", "pm"),
    ("pmf", "pmf"),
    ("pmfromfile", "pmFromFile"),
    ("streq", "streq"),
    ("strmatch", "strmatch"),
    ("contains", "contains"),
    ("containsword", "containsWord"),
    ("beginswith", "beginsWith"),
    ("endswith", "endsWith"),
    ("within", "within"),
    ("eq", "eq"),
    ("ne", "ne"),
    ("gt", "gt"),
    ("ge", "ge"),
    ("lt", "lt"),
    ("le", "le"),
    ("ipmatch", "ipMatch"),
    ("ipmatchf", "ipMatchF"),
    ("ipmatchfromfile", "ipMatchFromFile"),
    ("validatebyterange", "validateByteRange"),
    ("validateurlencoding", "validateUrlEncoding"),
    ("validateutf8encoding", "validateUtf8Encoding"),
    ("detectsqli", "detectSQLi"),
    ("detectxss", "detectXSS"),
    ("unconditionalmatch", "unconditionalMatch"),
    ("nomatch", "noMatch"),
];

/// libmodsecurity 3 operators this engine does not implement (CRS does not use them).
const UNSUPPORTED: &[&str] = &[
    "fuzzyhash",
    "geolookup",
    "gsblookup",
    "inspectfile",
    "rbl",
    "rsub",
    "rxglobal",
    "validatedtd",
    "validatehash",
    "validateschema",
    "verifycc",
    "verifycpf",
    "verifyssn",
    "verifysvnr",
];

/// Operators whose argument libmodsecurity expands per transaction (plus `@pm`, which we
/// also expand so that a macro never silently becomes a literal phrase).
const EXPANDS_MACROS: &[&str] = &[
    "rx",
    "pm",
    "streq",
    "strmatch",
    "contains",
    "containsWord",
    "beginsWith",
    "endsWith",
    "within",
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
];

impl Operator {
    /// Compiles `@name argument`; `name` is without `@` and `!`, matched case-insensitively. Errors say what was expected (e.g. "@rx: invalid regular expression: …", "@pmFromFile: cannot read /path: …").
    pub fn compile(name: &str, argument: &str, ctx: &OpContext<'_>) -> Result<Operator, String> {
        let lower = name.to_ascii_lowercase();
        let Some(&(_, canonical)) = NAMES.iter().find(|(n, _)| *n == lower) else {
            if UNSUPPORTED.contains(&lower.as_str()) {
                return Err(format!("@{name}: operator is not supported"));
            }
            return Err(format!("unknown operator @{name}"));
        };
        let macros = EXPANDS_MACROS.contains(&canonical) && contains_macro(argument);
        let kind = compile_kind(canonical, argument, macros, ctx)?;
        Ok(Operator {
            name: canonical,
            argument: argument.to_owned(),
            macros,
            kind,
        })
    }

    /// Whether the argument contains macros (`%{tx.foo}`) that the engine must expand per transaction.
    pub fn has_macros(&self) -> bool {
        self.macros
    }

    /// The argument as written (the engine expands it when has_macros()).
    pub fn argument(&self) -> &str {
        &self.argument
    }

    /// The operator's name, canonical spelling, for logs ("rx", "pmFromFile").
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Evaluates the operator on one (already transformed) value. `expanded` is the macro-expanded argument when has_macros(), else None. When `captures` is Some, fill it as ModSecurity does (@rx: group 0 = whole match, 1..=9 the groups; @pm/@pmFromFile: group 0 = the matched phrase; @detectSQLi: group 0 = the fingerprint; others: group 0 = the matched value where ModSecurity does so).
    pub fn matches(
        &self,
        input: &[u8],
        expanded: Option<&[u8]>,
        mut captures: Option<&mut Captures>,
    ) -> bool {
        if let Some(c) = captures.as_deref_mut() {
            c.groups.clear();
        }
        // Without an expansion from the engine the argument is used as written.
        let expanded = if self.macros {
            Some(expanded.unwrap_or(self.argument.as_bytes()))
        } else {
            None
        };
        match &self.kind {
            Kind::Rx(rx) => rx.matches(input, expanded, captures),
            Kind::Pm(phrases) => phrases.matches(input, captures),
            Kind::PmDynamic => {
                phrase::matches_dynamic(expanded.unwrap_or_default(), input, captures)
            }
            Kind::Text(op) => op.matches(input, expanded),
            Kind::Number(op) => op.matches(input, expanded),
            Kind::Ip(set) => set.contains(input),
            Kind::ByteRange(ranges) => ranges.any_outside(input),
            Kind::UrlEncoding => validate::invalid_url_encoding(input),
            Kind::Utf8Encoding => validate::invalid_utf8(input),
            Kind::Sqli => injection::sqli(input, captures),
            Kind::Xss => injection::xss(input, captures),
            Kind::Always => true,
            Kind::Never => false,
        }
    }
}

/// Builds the compiled form of the operator named `canonical`.
fn compile_kind(
    canonical: &'static str,
    argument: &str,
    macros: bool,
    ctx: &OpContext<'_>,
) -> Result<Kind, String> {
    let text = |kind| Kind::Text(TextOp::new(kind, argument));
    let number = |cmp| Kind::Number(NumberOp::new(cmp, argument));
    let kind = match canonical {
        "rx" => Kind::Rx(Rx::compile(argument, macros)?),
        "pm" if macros => Kind::PmDynamic,
        "pm" => Kind::Pm(Phrases::new(phrase::parse_inline(argument.as_bytes()))?),
        "pmf" | "pmFromFile" => {
            let list = phrase::load_files(argument, ctx.base_dir)
                .map_err(|e| format!("@{canonical}: {e}"))?;
            Kind::Pm(Phrases::new(list).map_err(|e| format!("@{canonical}: {e}"))?)
        }
        "streq" => text(TextKind::StrEq),
        "strmatch" => text(TextKind::StrMatch),
        "contains" => text(TextKind::Contains),
        "containsWord" => text(TextKind::ContainsWord),
        "beginsWith" => text(TextKind::BeginsWith),
        "endsWith" => text(TextKind::EndsWith),
        "within" => text(TextKind::Within),
        "eq" => number(Cmp::Eq),
        "ne" => number(Cmp::Ne),
        "gt" => number(Cmp::Gt),
        "ge" => number(Cmp::Ge),
        "lt" => number(Cmp::Lt),
        "le" => number(Cmp::Le),
        "ipMatch" => Kind::Ip(IpSet::from_list(argument).map_err(|e| format!("@ipMatch: {e}"))?),
        "ipMatchF" | "ipMatchFromFile" => Kind::Ip(
            IpSet::from_file(argument, ctx.base_dir).map_err(|e| format!("@{canonical}: {e}"))?,
        ),
        "validateByteRange" => Kind::ByteRange(
            ByteRanges::parse(argument).map_err(|e| format!("@validateByteRange: {e}"))?,
        ),
        "validateUrlEncoding" => Kind::UrlEncoding,
        "validateUtf8Encoding" => Kind::Utf8Encoding,
        "detectSQLi" => Kind::Sqli,
        "detectXSS" => Kind::Xss,
        "unconditionalMatch" => Kind::Always,
        "noMatch" => Kind::Never,
        other => return Err(format!("unknown operator @{other}")),
    };
    Ok(kind)
}

/// Whether `argument` holds a `%{…}` macro reference.
fn contains_macro(argument: &str) -> bool {
    argument
        .find("%{")
        .is_some_and(|start| argument[start + 2..].contains('}'))
}
