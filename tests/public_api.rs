//! The README's list of the public Rust API ("The public API") names exactly the items of the
//! one `pub use` block of `src/lib.rs` (plus the `ffi` module): an item made public, or
//! removed, without the README saying so fails here. The test hooks (public functions behind the
//! `test-hooks` feature) are exactly those the README names as such, and nothing that looks
//! like one is public without the feature.

use std::collections::BTreeSet;

fn lib_items() -> BTreeSet<String> {
    let code: String = include_str!("../src/lib.rs")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut items = BTreeSet::new();
    for statement in code.split(';') {
        let statement = statement.trim();
        if statement.ends_with("pub mod ffi") {
            items.insert("ffi".to_owned());
        }
        let Some(rest) = statement.strip_prefix("pub use ") else {
            continue;
        };
        let names = match rest.split_once('{') {
            Some((_, inner)) => inner.trim_end_matches('}').to_owned(),
            None => rest.rsplit("::").next().unwrap().to_owned(),
        };
        for name in names.split(',') {
            let name = name.trim();
            if !name.is_empty() {
                items.insert(name.to_owned());
            }
        }
    }
    items
}

fn readme_items() -> BTreeSet<String> {
    let readme = include_str!("../README.md");
    let section = readme
        .split("### The public API\n")
        .nth(1)
        .expect("README has a 'The public API' section");
    let list: String = section
        .lines()
        .skip_while(|l| !l.starts_with("- "))
        .take_while(|l| l.starts_with("- ") || l.starts_with("  "))
        .collect::<Vec<_>>()
        .join("\n");
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_lists_exactly_the_public_api() {
    let lib = lib_items();
    let readme = readme_items();
    assert!(lib.len() > 50, "the pub use block was read: {lib:?}");
    let missing: Vec<_> = lib.difference(&readme).collect();
    let extra: Vec<_> = readme.difference(&lib).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "public but not in the README: {missing:?}; in the README but not public: {extra:?}"
    );
}

/// The test hooks the README names ("Test hooks are not part of it: ..."): `Store::…` and
/// `kw_…` names in backticks.
fn readme_test_hooks() -> BTreeSet<String> {
    let readme = include_str!("../README.md");
    let paragraph = readme
        .split("Test hooks are not part of it")
        .nth(1)
        .expect("README's public API section has a paragraph on test hooks")
        .split("\n\n")
        .next()
        .unwrap();
    paragraph
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("Store::") || s.starts_with("kw_"))
        .map(str::to_owned)
        .collect()
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every public function of the engine's sources (not `src/cli`): (its name as a user would
/// write it, whether it is gated on the `test-hooks` feature). Methods of `src/store/mod.rs`
/// are `Store::name`, `extern "C"` functions their C name; any other public function is
/// `path::name`.
fn public_functions() -> Vec<(String, bool)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut out = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if relative.starts_with("src/cli/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Attributes and doc comments seen since the last item.
        let mut gated = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("#[") || line.starts_with("///") || line.starts_with("//!") {
                gated |= line == "#[cfg(feature = \"test-hooks\")]";
                continue;
            }
            let name = [
                "pub fn ",
                "pub extern \"C\" fn ",
                "pub unsafe extern \"C\" fn ",
            ]
            .iter()
            .find_map(|p| line.strip_prefix(p))
            .map(|rest| rest.split(['(', '<']).next().unwrap().to_owned());
            if let Some(name) = name {
                let shown = if line.contains("extern \"C\"") {
                    name
                } else if relative == "src/store/mod.rs" {
                    format!("Store::{name}")
                } else {
                    format!("{relative}::{name}")
                };
                out.push((shown, gated));
            }
            gated = false;
        }
    }
    out
}

#[test]
fn test_hooks_exist_only_with_the_test_hooks_feature_and_the_readme_names_them() {
    let functions = public_functions();
    assert!(
        functions.iter().any(|(n, _)| n == "kw_open")
            && functions.iter().any(|(n, _)| n == "Store::open"),
        "the sources were read: {functions:?}"
    );
    let gated: BTreeSet<String> = functions
        .iter()
        .filter(|(_, g)| *g)
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(
        gated,
        readme_test_hooks(),
        "functions behind `#[cfg(feature = \"test-hooks\")]` (left) and the README's list (right)"
    );
    // Nothing that looks like a test hook is public without the feature.
    let ungated_hooks: Vec<_> = functions
        .iter()
        .filter(|(n, g)| {
            !g && (n.contains("_for_test")
                || n.contains("simulate_")
                || n.starts_with("kw_test")
                || n.ends_with("_with_backend"))
        })
        .collect();
    assert!(
        ungated_hooks.is_empty(),
        "test hooks without the feature: {ungated_hooks:?}"
    );
    // The C header (a default build's) declares none of them.
    let header = include_str!("../include/keyward.h");
    for name in gated.iter().filter(|n| n.starts_with("kw_")) {
        assert!(
            !header.contains(name.as_str()),
            "include/keyward.h mentions {name}"
        );
    }
}

/// `cargo test` links its tests against the library with `test-hooks` (the crate is its own
/// dev-dependency with the feature), so the suites that use the hooks run without flags.
#[test]
fn cargo_test_builds_the_library_with_its_test_hooks() {
    let _: fn(&keyward::Store) -> keyward::Result<()> = keyward::Store::simulate_storage_failure;
    let _: fn(&keyward::Store) -> keyward::Result<u64> = keyward::Store::paused_flushes_for_test;
    let status = keyward::ffi::kw_test_panic();
    assert_eq!(status, keyward::ffi::kw_status::KW_PANIC);
}
