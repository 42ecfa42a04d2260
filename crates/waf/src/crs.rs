//! The OWASP Core Rule Set v4.25.1, vendored under `third_party/coreruleset` (Apache-2.0)
//! and compiled into the binary.

include!(concat!(env!("OUT_DIR"), "/crs_files.rs"));

/// The label under which embedded files appear in errors and as their directory.
pub const EMBEDDED_DIR: &str = "<embedded-crs>";

/// The embedded rule files (`*.conf`) in load order.
pub fn rule_files() -> impl Iterator<Item = (&'static str, &'static [u8])> {
    FILES.iter().copied().filter(|(n, _)| n.ends_with(".conf"))
}

/// An embedded data file (`*.data`) by file name.
pub fn data_file(name: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// The CRS version string the embedded rules carry.
pub const VERSION: &str = "OWASP_CRS/4.25.1";

/// The configuration the CRS regression tests expect (engine in DetectionOnly, paranoia
/// level 4, the CI's limits, body processors by Content-Type), for `bulkhead waf test`
/// and the conformance runner. Load it before the rules.
pub const TEST_CONFIG: &str = include_str!("crs_test.conf");

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_crs_compiles_with_its_data_files() {
        let rules = crate::RuleSet::builder()
            .text(
                "<setup>",
                "SecAction \"id:900990,phase:1,pass,nolog,setvar:tx.crs_setup_version=4251\"",
                std::path::Path::new("."),
            )
            .and_then(|b| b.embedded_crs())
            .and_then(|b| b.build())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(rules.rule_count() > 600, "{} rules", rules.rule_count());
        assert!(super::data_file("restricted-files.data").is_some());
    }
}
