//! The CRS configurations both engines load, and the few changes libmodsecurity 3.0.9 needs
//! to load them at all.
//!
//! Our engine loads the files unchanged. For the reference, [`reference_files`] writes
//! adapted copies into a scratch directory:
//! * **Rule 901181 is stripped** from REQUEST-901-INITIALIZATION.conf: 3.0.9's parser rejects
//!   its `ctl:ruleRemoveTargetByTag=…;XML://@*` ("Expecting an action, got: @*"). Its lines
//!   become blank, so the line numbers in log lines stay those of the original file. In the CI
//!   profile this changes nothing: 901181 only fires when `tx.crs_xml_attr_inspect` is 0, and
//!   crs-setup.ci.conf sets it to 1 (rule 900511).
//! * `SecUnicodeMapFile` is dropped: Debian's package ships no `unicode.mapping`. Without a
//!   map, `t:urlDecodeUni` keeps the low byte of `%uXXXX` (full-width ff01–ff5e get 0x20
//!   added, which matches the map for those); only other non-ASCII code points differ.
//! * `SecDisableBackendCompression` is dropped: an Apache-only directive 3.0.9 rejects ("not
//!   supported"); the CI's nginx image (libmodsecurity 3) does not have it either.
//! * `SecUploadKeepFiles Off` instead of `RelevantOnly`, which 3.0.9 rejects ("not currently
//!   supported"); uploads are still written, and removed at the end of the transaction.
//! * `SecAuditEngine Off`: go-ftw reads the error log only, and the CI audit-log path does
//!   not exist here. `SecTmpDir`, `SecDataDir` and `SecUploadDir` point into the scratch
//!   directory, which exists (multipart uploads are written there).

use std::path::{Path, PathBuf};

/// The CRS corpus: `../shared/corpus/crs` beside the repository root.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/crs")
}

/// Which configuration to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The CRS regression CI: DetectionOnly, paranoia 4, test marker rule 999999
    /// (ci-setup/modsecurity.ci.conf, ci-setup/crs-setup.ci.conf, rules/*.conf).
    Ci,
    /// Production-like for benchmarks: the CI engine settings with `SecRuleEngine On`, and
    /// crs-setup.conf.example (paranoia level 1, default thresholds).
    Pl1On,
}

/// One item to load, in order: a file, or SecLang text under a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file, loaded as is.
    File(PathBuf),
    /// Text (a directive that overrides the files before it).
    Text {
        /// Where errors say it came from.
        label: &'static str,
        /// The SecLang text.
        text: &'static str,
    },
}

/// What our engine loads for `profile`: the corpus files unchanged, in load order.
pub fn sources(profile: Profile, corpus: &Path) -> std::io::Result<Vec<Source>> {
    let mut out = vec![Source::File(corpus.join("ci-setup/modsecurity.ci.conf"))];
    match profile {
        Profile::Ci => out.push(Source::File(corpus.join("ci-setup/crs-setup.ci.conf"))),
        Profile::Pl1On => {
            out.push(Source::Text {
                label: "bench: engine on",
                text: "SecRuleEngine On\n",
            });
            out.push(Source::File(corpus.join("crs-setup.conf.example")));
        }
    }
    out.extend(rule_files(corpus)?.into_iter().map(Source::File));
    Ok(out)
}

/// `rules/*.conf` in the order a shell glob gives (byte order); `.conf.example` excluded.
pub fn rule_files(corpus: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus.join("rules"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    Ok(files)
}

/// Rule 3.0.9 cannot parse (see the module docs).
pub const UNPARSABLE_RULE: u32 = 901181;

/// Blanks the statement that defines `id:<id>` (with its continuation lines), keeping the
/// line count. None when no statement has that id.
pub fn strip_rule(text: &str, id: u32) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut start = 0;
    while start < lines.len() {
        let mut end = start;
        while end + 1 < lines.len() && lines[end].trim_end().ends_with('\\') {
            end += 1;
        }
        let stmt = lines[start..=end].concat();
        let first = lines[start].trim_start();
        if !first.starts_with('#') && defines_id(&stmt, id) {
            let mut out: String = lines[..start].concat();
            for l in &lines[start..=end] {
                out.push_str(if l.ends_with("\r\n") {
                    "\r\n"
                } else if l.ends_with('\n') {
                    "\n"
                } else {
                    ""
                });
            }
            out.push_str(&lines[end + 1..].concat());
            return Some(out);
        }
        start = end + 1;
    }
    None
}

/// Whether the statement has the action `id:<id>` (also `id:'<id>'`), not a longer number.
fn defines_id(stmt: &str, id: u32) -> bool {
    let want = id.to_string();
    let mut rest = stmt;
    while let Some(at) = rest.find("id:") {
        let before = rest[..at].chars().next_back();
        let after = rest[at + 3..].trim_start_matches('\'');
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let boundary = before.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
        if boundary && after[..digits] == want {
            return true;
        }
        rest = &rest[at + 3..];
    }
    false
}

/// Writes the reference's adapted copies into `scratch` and returns the files to load, in
/// order (the unchanged ones from the corpus, the adapted ones from `scratch`).
pub fn reference_files(
    profile: Profile,
    corpus: &Path,
    scratch: &Path,
) -> Result<Vec<PathBuf>, String> {
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    for sub in ["tmp", "data", "upload"] {
        std::fs::create_dir_all(scratch.join(sub)).map_err(|e| io(&scratch.join(sub), e))?;
    }
    let engine_src = corpus.join("ci-setup/modsecurity.ci.conf");
    let engine_text = std::fs::read_to_string(&engine_src).map_err(|e| io(&engine_src, e))?;
    let engine = adapt_engine_conf(
        &engine_text,
        scratch,
        (profile == Profile::Pl1On).then_some("On"),
    );
    let engine_dst = scratch.join("modsecurity.conf");
    std::fs::write(&engine_dst, engine).map_err(|e| io(&engine_dst, e))?;
    let setup = match profile {
        Profile::Ci => corpus.join("ci-setup/crs-setup.ci.conf"),
        Profile::Pl1On => corpus.join("crs-setup.conf.example"),
    };
    let mut files = vec![engine_dst, setup];
    for f in rule_files(corpus).map_err(|e| io(&corpus.join("rules"), e))? {
        let text = std::fs::read_to_string(&f).map_err(|e| io(&f, e))?;
        match strip_rule(&text, UNPARSABLE_RULE) {
            // Only REQUEST-901 has it; its copy has no relative data files to resolve.
            Some(stripped) => {
                let dst = scratch.join(f.file_name().unwrap_or_default());
                std::fs::write(&dst, stripped).map_err(|e| io(&dst, e))?;
                files.push(dst);
            }
            None => files.push(f),
        }
    }
    Ok(files)
}

/// The engine configuration adapted for libmodsecurity 3.0.9 (see the module docs):
/// `scratch` holds the tmp/data/upload directories; `engine` overrides SecRuleEngine.
pub fn adapt_engine_conf(text: &str, scratch: &Path, engine: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let directive = line.split_whitespace().next().unwrap_or("");
        let dir = |name: &str| format!("{directive} {}\n", scratch.join(name).display());
        let replaced = match directive.to_ascii_lowercase().as_str() {
            "secunicodemapfile" | "secdisablebackendcompression" => Some("\n".to_string()),
            "secauditengine" => Some("SecAuditEngine Off\n".to_string()),
            "sectmpdir" => Some(dir("tmp")),
            "secdatadir" => Some(dir("data")),
            "secuploaddir" => Some(dir("upload")),
            "secuploadkeepfiles" => Some("SecUploadKeepFiles Off\n".to_string()),
            "secruleengine" => engine.map(|e| format!("SecRuleEngine {e}\n")),
            _ => None,
        };
        // Replacements are one line each, so line numbers stay those of the original.
        match replaced {
            Some(r) if line.ends_with('\n') => out.push_str(&r),
            Some(r) => out.push_str(r.trim_end_matches('\n')),
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TEXT: &str = "# id:901181 in a comment\n\
        SecRule TX:a \"@eq 0\" \\\n    \"id:9011810,\\\n    pass\"\n\
        SecRule TX:b \"@eq 0\" \\\n    \"id:901181,\\\n    phase:2,\\\n    ctl:x;XML://@*\"\n\
        SecAction \"id:901200,pass\"\n";

    #[test]
    fn strips_exactly_one_statement_and_keeps_line_numbers() {
        let out = strip_rule(TEXT, 901181).unwrap_or_default();
        assert_eq!(out.lines().count(), TEXT.lines().count());
        assert!(out.contains("id:9011810"), "a longer id is kept");
        assert!(out.contains("# id:901181 in a comment"));
        assert!(!out.contains("ctl:x"));
        assert!(out.contains("SecAction \"id:901200,pass\""));
        assert_eq!(strip_rule(TEXT, 123), None);
    }

    #[test]
    fn strips_901181_from_the_real_file() -> anyhow::Result<()> {
        let path = corpus_dir().join("rules/REQUEST-901-INITIALIZATION.conf");
        let text = std::fs::read_to_string(path)?;
        let out = strip_rule(&text, UNPARSABLE_RULE)
            .ok_or_else(|| anyhow::anyhow!("901181 not found"))?;
        assert!(!out.contains(";XML://@*"));
        assert!(!defines_id(&out, UNPARSABLE_RULE));
        assert!(out.contains("id:901180") && out.contains("id:901200"));
        assert_eq!(out.lines().count(), text.lines().count());
        Ok(())
    }

    #[test]
    fn adapts_engine_directives() {
        let conf = "SecRuleEngine DetectionOnly\nSecUnicodeMapFile unicode.mapping 20127\n\
                    SecAuditEngine RelevantOnly\nSecUploadDir /tmp/modsecurity/upload\nSecArgumentsLimit 1000\n";
        let out = adapt_engine_conf(conf, Path::new("/s"), Some("On"));
        assert_eq!(
            out,
            "SecRuleEngine On\n\nSecAuditEngine Off\nSecUploadDir /s/upload\nSecArgumentsLimit 1000\n"
        );
        let kept = adapt_engine_conf(conf, Path::new("/s"), None);
        assert!(kept.starts_with("SecRuleEngine DetectionOnly\n"));
    }

    #[test]
    fn sources_are_in_load_order() -> anyhow::Result<()> {
        let corpus = corpus_dir();
        let ci = sources(Profile::Ci, &corpus)?;
        assert_eq!(
            ci[0],
            Source::File(corpus.join("ci-setup/modsecurity.ci.conf"))
        );
        assert_eq!(
            ci[1],
            Source::File(corpus.join("ci-setup/crs-setup.ci.conf"))
        );
        assert_eq!(ci.len(), 2 + 27, "27 rule files");
        let pl1 = sources(Profile::Pl1On, &corpus)?;
        assert!(matches!(pl1[1], Source::Text { .. }));
        Ok(())
    }

    proptest! {
        #[test]
        fn strip_never_panics_and_keeps_line_count(s in "(SecRule x \"id:[0-9]{1,3}\"( \\\\)?\n|[ -~]{0,10}\n){0,8}", id in 0u32..1000) {
            if let Some(out) = strip_rule(&s, id) {
                prop_assert_eq!(out.matches('\n').count(), s.matches('\n').count());
                prop_assert!(out.len() <= s.len());
            }
        }

        #[test]
        fn adapt_keeps_line_count(s in "([A-Za-z]{0,16}( [ -~]{0,10})?\n){0,8}") {
            let out = adapt_engine_conf(&s, Path::new("/x"), Some("On"));
            prop_assert_eq!(out.matches('\n').count(), s.matches('\n').count());
        }
    }
}
