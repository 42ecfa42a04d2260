//! Embeds the vendored OWASP CRS (third_party/coreruleset/rules) into the crate, so that a
//! sidecar needs no rule files on disk.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let rules = manifest.join("../../third_party/coreruleset/rules");
    println!("cargo:rerun-if-changed={}", rules.display());
    let mut names: Vec<String> = std::fs::read_dir(&rules)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", rules.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf") || n.ends_with(".data"))
        .collect();
    names.sort();
    let mut out = String::from(
        "/// The vendored CRS files: (file name, contents), sorted by name.\npub(crate) static FILES: &[(&str, &[u8])] = &[\n",
    );
    for n in &names {
        let path = rules.join(n).canonicalize().expect("listed file exists");
        writeln!(
            out,
            "    ({n:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("write to String");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("crs_files.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}
