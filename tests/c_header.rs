//! The checked-in C header `include/keyward.h` must be exactly what cbindgen generates from
//! `src/ffi` and `cbindgen.toml`. Regenerate it with `KEYWARD_BLESS=1 cargo test --test c_header`.

use std::path::Path;

#[test]
fn c_header_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml is readable");
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen can parse the crate");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");
    let header = root.join("include/keyward.h");
    if std::env::var_os("KEYWARD_BLESS").is_some() {
        std::fs::write(&header, &generated).expect("include/keyward.h is writable");
        return;
    }
    let checked_in = std::fs::read_to_string(&header).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/keyward.h is stale: it differs from what cbindgen generates from src/ffi and \
         cbindgen.toml.\nRegenerate it with:\n\n    KEYWARD_BLESS=1 cargo test --test c_header\n\n\
         and commit the result. If a function, struct layout or constant changed incompatibly, \
         also bump KW_ABI_VERSION (src/ffi/mod.rs) and regenerate the ABI baseline \
         (scripts/test-c.sh --bless-abi)."
    );
}
