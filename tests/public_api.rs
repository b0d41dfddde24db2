//! The README's list of the public Rust API ("The public API") names exactly the items of the
//! one `pub use` block of `src/lib.rs` (plus the `ffi` module): an item made public, or
//! removed, without the README saying so fails here.

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
