//! Generates include/remotemedia_webrtc.h with cbindgen and gives the shared library a soname
//! carrying the major version.
//!
//! The header is committed. Outside CI the committed copy is refreshed on every build; in CI
//! (`CI` set) it is left alone so tests/header.rs can compare it with what cbindgen produces.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=CI");

    // Debian's libyuv has no pkg-config file (libopus and libvpx are found through theirs by
    // their -sys crates).
    println!("cargo:rustc-link-lib=yuv");

    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libremotemedia_webrtc.so.{major}");
    }

    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let header = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("remotemedia_webrtc.h");
    header.write_to_file(&out);
    if std::env::var_os("CI").is_none() {
        header.write_to_file(dir.join("include/remotemedia_webrtc.h"));
    }
}
