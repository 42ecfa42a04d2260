//! Links libmodsecurity, but only with the `libmodsecurity` feature: without it the crate has
//! no FFI and builds on machines without the library.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MODSECURITY_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_LIBMODSECURITY").is_none() {
        return;
    }
    // Debian installs the library on the default search path; a build of one's own can be
    // pointed at with MODSECURITY_LIB_DIR.
    if let Some(dir) = std::env::var_os("MODSECURITY_LIB_DIR") {
        println!("cargo:rustc-link-search=native={}", dir.to_string_lossy());
    }
    println!("cargo:rustc-link-lib=dylib=modsecurity");
}
