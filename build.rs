//! Build script of the root crate: gives the C library (cdylib) its SONAME.
//!
//! The SONAME is `libkeyward.so.<N>`, where N is `KW_ABI_VERSION` of `src/ffi/mod.rs` (the one
//! source of truth, also the header's `#define KW_ABI_VERSION`): programs linked against the
//! library record `libkeyward.so.<N>` and are never loaded with a library of another ABI.
//! Only ELF targets have SONAMEs; elsewhere this script does nothing.

use std::{env, fs, process};

const SOURCE: &str = "src/ffi/mod.rs";
const NEEDLE: &str = "pub const KW_ABI_VERSION: u32 = ";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");

    let text =
        fs::read_to_string(SOURCE).unwrap_or_else(|e| fail(&format!("cannot read {SOURCE}: {e}")));
    let version: u32 = text
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix(NEEDLE)?
                .strip_suffix(';')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| fail(&format!("no `{NEEDLE}<number>;` line in {SOURCE}")));

    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let elf = !matches!(
        os.as_str(),
        "macos" | "ios" | "tvos" | "watchos" | "visionos" | "windows"
    );
    if elf {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libkeyward.so.{version}");
    }
}

fn fail(message: &str) -> ! {
    eprintln!("keyward build.rs: {message}");
    process::exit(1);
}
