//! `keyward verify`: checks a key, or the credential in request header lines, exactly as the
//! application would, prints the verdict, and exits 0 (valid) or 1 (refused).
//!
//! A check is a real verify: an accepted key counts as a use (and spends its credits, for a
//! limited key), a refused one as a refusal; with `--dry-run` nothing is counted or spent (a
//! limited key is valid if its credits available now cover one verify).

use std::fmt::Write as _;
use std::io::BufRead;

use keyward::{
    Credential, ErrorCode, HttpVerdict, Policies, Presented, Reason, Store, Timestamp, Verdict,
    VerifyRequest,
};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{CliError, Exit};
use crate::keys::describe;
use crate::open::{Common, Location};
use crate::output::{KeyView, Outcome};

/// Options of `keyward verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The full key to check; `-` reads it from stdin (keeps it out of shell history)
    #[arg(conflicts_with = "headers", value_parser = clap::value_parser!(std::ffi::OsString))]
    pub key: Option<std::ffi::OsString>,
    /// A request header line instead of a key, e.g. "Authorization: Bearer kw_..."; repeat
    /// for the X-Api-Token-Id / X-Api-Token-Secret-Key pair; `-` reads lines from stdin
    #[arg(long = "header", value_name = "LINE", value_parser = clap::value_parser!(std::ffi::OsString))]
    pub headers: Vec<std::ffi::OsString>,
    /// A scope the route requires (repeat, or separate with commas)
    #[arg(long = "scope", value_name = "SCOPE", value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// Check without consuming: the full verdict, but no use or refusal is counted and no
    /// credit is spent (a limited key is valid if the credits available now cover its cost)
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub common: Common,
}

/// Text the client presented, as the library reads it: bytes that are not UTF-8 become
/// U+FFFD (which no key contains), so they are refused like any other bad key (`MALFORMED`,
/// exit 1), never a bad-input error.
fn client_text(raw: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(String::from_utf8_lossy(raw).into_owned())
}

/// One line of stdin without its line ending (`None` at end of input), zeroized when dropped.
fn read_stdin_line(stdin: &mut impl BufRead) -> Result<Option<Zeroizing<String>>, CliError> {
    let mut raw = Zeroizing::new(Vec::new());
    let n = stdin
        .read_until(b'\n', &mut raw)
        .map_err(|e| CliError::bad_input("BAD_INPUT", format!("cannot read stdin: {e}")))?;
    if n == 0 {
        return Ok(None);
    }
    if raw.last() == Some(&b'\n') {
        raw.pop();
        if raw.last() == Some(&b'\r') {
            raw.pop();
        }
    }
    Ok(Some(client_text(&raw)))
}

/// The non-blank lines of stdin, each zeroized when dropped.
fn read_stdin_lines() -> Result<Vec<Zeroizing<String>>, CliError> {
    let mut lines = Vec::new();
    let mut stdin = std::io::stdin().lock();
    while let Some(line) = read_stdin_line(&mut stdin)? {
        if !line.trim().is_empty() {
            lines.push(line);
        }
    }
    Ok(lines)
}

/// What to check: a key, or request header lines (each with a colon).
enum Input {
    Key(Zeroizing<String>),
    Lines(Vec<Zeroizing<String>>),
}

/// `Name: value` lines as header pairs (checked by [`credential`]).
fn header_pairs(lines: &[Zeroizing<String>]) -> Vec<(&str, &str)> {
    lines.iter().filter_map(|l| l.split_once(':')).collect()
}

/// What to check, read from the arguments (and stdin).
fn credential(args: &VerifyArgs) -> Result<Input, CliError> {
    if let Some(key) = &args.key {
        let key = if key == "-" {
            // One line, so a key typed at a terminal needs only Enter.
            match read_stdin_line(&mut std::io::stdin().lock())? {
                Some(line) if !line.trim().is_empty() => line,
                _ => {
                    return Err(CliError::bad_input("BAD_INPUT", "no key on stdin")
                        .hint("pipe the key in: `keyward verify - < key.txt`"));
                }
            }
        } else {
            use std::os::unix::ffi::OsStrExt;
            client_text(key.as_bytes())
        };
        return Ok(Input::Key(Zeroizing::new(key.trim().to_owned())));
    }
    if args.headers.is_empty() {
        return Err(CliError::bad_input("BAD_INPUT", "nothing to verify").hint(
            "give a key, `-` to read it from stdin, or --header \"Authorization: Bearer KEY\"",
        ));
    }
    let mut lines: Vec<Zeroizing<String>> = Vec::new();
    for header in &args.headers {
        if header == "-" {
            lines.extend(read_stdin_lines()?);
        } else {
            use std::os::unix::ffi::OsStrExt;
            lines.push(client_text(header.as_bytes()));
        }
    }
    for line in &lines {
        if !line.contains(':') {
            let name: String = line
                .chars()
                .take_while(|c| !c.is_whitespace())
                .take(40)
                .collect();
            return Err(CliError::bad_input(
                "BAD_HEADER",
                format!("header line starting {name:?} has no colon"),
            )
            .hint("write it as `Name: value`, e.g. \"x-api-key: kw_live_...\""));
        }
    }
    Ok(Input::Lines(lines))
}

/// The JSON verdict.
#[derive(Serialize)]
struct VerdictView<'a> {
    valid: bool,
    reason: &'a str,
    http_status: u16,
    message: String,
    key: Option<KeyView<'a>>,
}

/// A dry-run verify of what was presented (`Err(code)` for a header problem, as
/// `verify_http` answers it).
fn dry_run(
    store: &Store,
    credential: &Input,
    scopes: &[&str],
) -> Result<Result<Verdict, ErrorCode>, CliError> {
    let request = |presented| VerifyRequest {
        credential: presented,
        scopes,
        cost: None,
        at: None,
        dry_run: true,
    };
    // The route's scopes first, whatever the headers hold (a dry run of nothing checks them).
    store.verify_request(&request(Presented::Key("")))?;
    let presented = match credential {
        Input::Key(key) => return Ok(Ok(store.verify_request(&request(Presented::Key(key)))?)),
        Input::Lines(lines) => match keyward::extract_credential(header_pairs(lines)) {
            Ok(presented) => presented,
            Err(e) => return Ok(Err(e.code())),
        },
    };
    let presented = match &presented {
        Credential::Key(key) => Presented::Key(key),
        Credential::Pair { id, secret } => Presented::Pair { id, secret },
    };
    Ok(Ok(store.verify_request(&request(presented))?))
}

/// Runs `keyward verify`.
pub fn verify(args: VerifyArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let credential = credential(&args)?;
    let store = Location::resolve(&args.common, top)?.open_existing(Policies::default())?;
    let scopes: Vec<&str> = args.scopes.iter().map(String::as_str).collect();
    // Either the verdict, or the header problem that refused the request before any lookup
    // (the credential family: what the client sent, answered 401 like a refused key). A bad
    // scope is an error (exit 2), whatever the key or headers.
    let verdict: Result<Verdict, ErrorCode> = if args.dry_run {
        dry_run(&store, &credential, &scopes)?
    } else {
        match &credential {
            Input::Key(key) => Ok(store.verify(key, &scopes)?),
            Input::Lines(lines) => match store.verify_http(header_pairs(lines), &scopes)? {
                HttpVerdict::Checked(verdict) => Ok(verdict),
                HttpVerdict::NoCredential(code) => Err(code),
            },
        }
    };
    // Writes the use (or refusal) this verify recorded.
    if let Err(e) = store.close() {
        eprintln!("warning: the usage of this check could not be recorded: {e}");
    }
    let now = Timestamp::now();
    let (valid, reason, http_status, message, key) = match &verdict {
        Ok(v) => (
            v.is_valid(),
            v.reason.code(),
            v.reason.http_status(),
            v.reason.message().to_owned(),
            v.key.as_deref(),
        ),
        Err(code) => (false, code.name(), 401, code.message().to_owned(), None),
    };
    let exit = if valid { Exit::Ok } else { Exit::Refused };
    let stdout = if json {
        crate::output::to_json(&VerdictView {
            valid,
            reason,
            http_status,
            message,
            key: key.map(|k| KeyView::new(k, now)),
        })?
    } else {
        let mut out = String::new();
        if valid {
            let _ = writeln!(out, "VALID: {message}");
        } else {
            let _ = writeln!(out, "REFUSED: {reason} (HTTP {http_status}): {message}");
        }
        if args.dry_run {
            let _ = writeln!(out, "  (dry run: no use counted, no credit spent)");
        }
        if let Some(info) = key {
            let _ = writeln!(out, "  key:    {}", describe(info));
            if !info.scopes.is_empty() {
                let _ = writeln!(out, "  scopes: {}", info.scopes.join(", "));
            }
            if verdict
                .as_ref()
                .is_ok_and(|v| v.reason == Reason::InsufficientScope)
            {
                let missing: Vec<&str> = scopes
                    .iter()
                    .copied()
                    .filter(|s| !info.scopes.iter().any(|have| have == s))
                    .collect();
                let _ = writeln!(out, "  missing scopes: {}", missing.join(", "));
            }
        }
        if let Ok(v) = &verdict {
            for (name, value) in v.rate_headers() {
                let _ = writeln!(out, "  {name}: {value}");
            }
        }
        out
    };
    let mut outcome = Outcome::ok(stdout);
    outcome.exit = exit;
    Ok(outcome)
}
