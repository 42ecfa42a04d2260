//! Generates the proxy API's messages, client and server from
//! `proto/bulkhead/proxy/v1/proxy.proto` with the `protoc` that `protoc-bin-vendored` ships
//! (nothing to install). The protoc path goes into prost-build's `Config` because
//! `std::env::set_var` is `unsafe` in edition 2024.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_with_config(config, &["proto/bulkhead/proxy/v1/proxy.proto"], &["proto"])?;
    Ok(())
}
