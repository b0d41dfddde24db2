//! Output: aligned tables, times, the JSON view of a key, progress bars, and what a command
//! hands back to `main` to print.

use std::fmt::Write as _;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use keyward::{KeyInfo, Timestamp};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{CliError, Exit};

/// Shown before and after a full key, so nobody mistakes it for ordinary output.
pub const SECRET_RULE: &str =
    "======================================================================";

/// What a command produced: text for stdout and the exit status.
pub struct Outcome {
    /// Everything for stdout (zeroized when dropped: it may hold a new full key).
    pub stdout: Zeroizing<String>,
    /// The exit status (`Ok`, or `Refused` for a refused `verify`).
    pub exit: Exit,
    /// Said on stderr if stdout cannot be written (e.g. a key was created but not shown).
    pub lost_output_note: Option<String>,
    /// An error to report after stdout (work done in part, e.g. an import that stopped);
    /// its exit status wins.
    pub trailing_error: Option<CliError>,
}

impl Outcome {
    /// A successful outcome printing `stdout`.
    pub fn ok(stdout: String) -> Outcome {
        Outcome {
            stdout: Zeroizing::new(stdout),
            exit: Exit::Ok,
            lost_output_note: None,
            trailing_error: None,
        }
    }

    /// JSON of `value` (pretty, one trailing newline).
    pub fn json<T: Serialize>(value: &T) -> Result<Outcome, CliError> {
        Ok(Outcome::ok(to_json(value)?))
    }
}

/// Pretty JSON of `value` followed by a newline.
pub fn to_json<T: Serialize>(value: &T) -> Result<String, CliError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| CliError {
        exit: Exit::Internal,
        code: "INTERNAL",
        message: format!("cannot encode JSON: {e}"),
        hint: None,
    })?;
    text.push('\n');
    Ok(text)
}

/// An aligned text table.
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers; a header starting with `>` is right-aligned
    /// (numbers), the `>` is not shown.
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.trim_start_matches('>')).collect(),
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as headers).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }

    /// Renders the table, two spaces between columns, no trailing spaces.
    pub fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i] - width(cell);
                if self.right[i] {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if i + 1 < row.len() {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Shortens `text` to `max` characters, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `2026-11-23T01:02:03Z`.
pub fn iso_time(ms: i64) -> String {
    let t = Timestamp::from_millis(ms);
    let (y, mo, d) = t.day().civil();
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `2026-11-23 01:02` (UTC), for tables.
pub fn short_time(ms: i64) -> String {
    let iso = iso_time(ms);
    format!("{} {}", &iso[..10], &iso[11..16])
}

/// A table cell for an optional time.
pub fn opt_time(ms: Option<i64>, none: &str) -> String {
    ms.map(short_time).unwrap_or_else(|| none.to_owned())
}

/// The state of a key at `now`: `active`, `revoked` or `expired`.
pub fn state(info: &KeyInfo, now: Timestamp) -> &'static str {
    if info.revoked_at.is_some() {
        "revoked"
    } else if info.is_active_at(now.as_millis()) {
        "active"
    } else {
        "expired"
    }
}

/// The metadata as text when it is UTF-8, else as a byte count.
pub fn metadata_text(info: &KeyInfo) -> String {
    match std::str::from_utf8(&info.metadata) {
        Ok(text) => text.to_owned(),
        Err(_) => format!("<{} bytes of binary data>", info.metadata.len()),
    }
}

/// The JSON view of a key: its public record plus its state now.
#[derive(Serialize)]
pub struct KeyView<'a> {
    /// The public record.
    #[serde(flatten)]
    pub info: &'a KeyInfo,
    /// `active`, `revoked` or `expired`.
    pub state: &'static str,
}

impl<'a> KeyView<'a> {
    /// The view of `info` at `now`.
    pub fn new(info: &'a KeyInfo, now: Timestamp) -> KeyView<'a> {
        KeyView {
            info,
            state: state(info, now),
        }
    }
}

/// The one-time block showing a full key, for human output: the key alone on its line, easy
/// to select, between two marked rules.
pub fn secret_block(out: &mut String, key: &str) {
    let _ = writeln!(out, "{SECRET_RULE}");
    let _ = writeln!(out, "FULL KEY, shown once and never again:");
    let _ = writeln!(out);
    let _ = writeln!(out, "    {key}");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Copy it now into the client's secret store: keyward keeps only a keyed hash of it."
    );
    let _ = writeln!(out, "{SECRET_RULE}");
}

/// Progress bars below this many items are not worth drawing.
const PROGRESS_THRESHOLD: u64 = 200;

/// A progress bar on stderr for `len` items, hidden when stderr is not a terminal, when
/// `json` output was asked for, or when the job is short.
pub fn progress(len: u64, what: &'static str, json: bool) -> ProgressBar {
    if json || len < PROGRESS_THRESHOLD || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta} left)")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["ID", ">USES", "NAME"]);
        t.row(vec!["a".into(), "5".into(), "x".into()]);
        t.row(vec!["bbbb".into(), "1234".into(), "".into()]);
        assert_eq!(t.render(), "ID    USES  NAME\na        5  x\nbbbb  1234\n");
    }

    #[test]
    fn times_format() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(short_time(1_700_000_000_123), "2023-11-14 22:13");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
