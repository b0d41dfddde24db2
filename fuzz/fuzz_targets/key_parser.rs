//! The key parser never panics, and a key it accepts formats back to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for prefix in [None, Some("kw")] {
        if let Ok(parsed) = keyward::parse_key(text, prefix) {
            let again = keyward::format_key(&parsed.prefix, parsed.env.as_deref(), &parsed.id, &parsed.secret);
            assert_eq!(again.as_str(), text);
        }
    }
    let _ = keyward::KeyId::parse(text);
    let _ = keyward::Secret::parse(text);
});
