//! `keyward verify`: checks a key, or the credential in request header lines, exactly as the
//! application would, prints the verdict, and exits 0 (valid) or 1 (refused).
//!
//! A check is a real verify: an accepted key counts as a use (and spends its credits, for a
//! limited key), a refused one as a refusal.

use std::fmt::Write as _;
use std::io::BufRead;

use keyward::{Credential, ErrorCode, Policies, Reason, Timestamp, Verdict, extract_credential};
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
    #[arg(conflicts_with = "headers")]
    pub key: Option<String>,
    /// A request header line instead of a key, e.g. "Authorization: Bearer kw_..."; repeat
    /// for the X-Api-Token-Id / X-Api-Token-Secret-Key pair; `-` reads lines from stdin
    #[arg(long = "header", value_name = "LINE")]
    pub headers: Vec<String>,
    /// A scope the route requires (repeat, or separate with commas)
    #[arg(long = "scope", value_name = "SCOPE", value_delimiter = ',')]
    pub scopes: Vec<String>,
    #[command(flatten)]
    pub common: Common,
}

/// The non-blank lines of stdin, each zeroized when dropped.
fn read_stdin_lines() -> Result<Vec<Zeroizing<String>>, CliError> {
    let mut lines = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line =
            Zeroizing::new(line.map_err(|e| {
                CliError::bad_input("BAD_INPUT", format!("cannot read stdin: {e}"))
            })?);
        if !line.trim().is_empty() {
            lines.push(line);
        }
    }
    Ok(lines)
}

/// The credential to check, or the header-level refusal (missing, half a pair, ...).
fn credential(args: &VerifyArgs) -> Result<Result<Credential, keyward::Error>, CliError> {
    if let Some(key) = &args.key {
        let key = if key == "-" {
            // One line, so a key typed at a terminal needs only Enter.
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| CliError::bad_input("BAD_INPUT", format!("cannot read stdin: {e}")))?;
            if line.trim().is_empty() {
                return Err(CliError::bad_input("BAD_INPUT", "no key on stdin")
                    .hint("pipe the key in: `keyward verify - < key.txt`"));
            }
            line
        } else {
            Zeroizing::new(key.clone())
        };
        return Ok(Ok(Credential::Key(Zeroizing::new(key.trim().to_owned()))));
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
            lines.push(Zeroizing::new(header.clone()));
        }
    }
    let mut pairs = Vec::with_capacity(lines.len());
    for line in &lines {
        let Some((name, value)) = line.split_once(':') else {
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
        };
        pairs.push((name, value));
    }
    match extract_credential(pairs.iter().map(|(n, v)| (*n, *v))) {
        Ok(credential) => Ok(Ok(credential)),
        Err(e) if is_header_refusal(e.code()) => Ok(Err(e)),
        Err(e) => Err(e.into()),
    }
}

/// Header problems a server answers with 401, reported as a refusal rather than an error.
fn is_header_refusal(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::CredentialMissing
            | ErrorCode::UnsupportedScheme
            | ErrorCode::BadBase64
            | ErrorCode::HalfPair
            | ErrorCode::AmbiguousCredential
    )
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

/// Runs `keyward verify`.
pub fn verify(args: VerifyArgs, top: &Common) -> Result<Outcome, CliError> {
    let json = args.common.json || top.json;
    let credential = credential(&args)?;
    let store = Location::resolve(&args.common, top)?.open_existing(Policies::default())?;
    let scopes: Vec<&str> = args.scopes.iter().map(String::as_str).collect();
    // Either the verdict, or the header problem that refused the request before any lookup.
    let verdict: Result<Verdict, &keyward::Error> = match &credential {
        Ok(credential) => Ok(store.verify_credential(credential, &scopes)?),
        Err(e) => Err(e),
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
        Err(e) => (false, e.code().name(), 401, e.to_string(), None),
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
        out
    };
    let mut outcome = Outcome::ok(stdout);
    outcome.exit = exit;
    Ok(outcome)
}
