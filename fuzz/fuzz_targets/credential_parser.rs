//! The credential parser never panics on arbitrary header lists, and what it returns is
//! consistent: a key or pair found in the headers, never an empty one.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Lines are headers; the first ':' splits name from value.
    let headers: Vec<(&str, &str)> = text
        .lines()
        .map(|line| line.split_once(':').unwrap_or((line, "")))
        .collect();
    match keyward::extract_credential(headers.iter().copied()) {
        Ok(keyward::Credential::Key(key)) => assert!(!key.is_empty()),
        Ok(keyward::Credential::Pair { id, secret }) => assert!(!id.is_empty() && !secret.is_empty()),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    for line in text.lines().take(4) {
        let _ = keyward::extract_from_header_line(line);
    }
});
