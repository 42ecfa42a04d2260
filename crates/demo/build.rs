//! Generates the bookstore's `bookstore.v1.Catalog` messages, client and server from
//! `proto/bookstore.proto`, with the `protoc` that `protoc-bin-vendored` ships (nothing to
//! install).
//!
//! The protoc path goes into prost-build's `Config` rather than the `PROTOC` variable:
//! `std::env::set_var` is `unsafe` in edition 2024 and the workspace forbids unsafe code.
//! `build_transport(false)`: the generated code must not need tonic's `transport`-only
//! helpers (`connect`); the apps build their own `Channel` and serve a `TcpListener`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/bookstore.proto");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_with_config(config, &["proto/bookstore.proto"], &["proto"])?;
    Ok(())
}
