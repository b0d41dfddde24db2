//! Reading the keys another system exported: CSV with a header row (what `sqlite3 -csv
//! -header`, `psql \copy … csv header` and `mysql` exports give) or JSON lines (one object per
//! line), mapped column by column onto [`LegacyRow`]s. The columns each scheme reads are
//! listed in README.md ("Migrating keys from another system").

use std::collections::HashMap;

use serde_json::Value;

use super::{LegacyScheme, RawHash, decode_stored};

/// How to read an export (the parts of the source system's configuration the rows do not
/// carry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyImportOptions {
    /// Report what would be imported; write nothing.
    pub dry_run: bool,
    /// Sanctum's `sanctum.expiration` (minutes): a token then expires at the earlier of its
    /// `expires_at` and `created_at` + this. `None` = no configured expiration.
    pub sanctum_expiration_minutes: Option<u64>,
    /// The keyward scopes a Sanctum ability `*` ("every ability") stands for. A row with
    /// `*` is refused without it: keyward has no wildcard scope.
    pub all_scopes: Option<Vec<String>>,
    /// The owner of rows that name none (djangorestframework-api-key's table has no owner
    /// column; a custom model's `owner` column is read when present).
    pub default_owner: Option<String>,
}

/// One key read from an export, checked and mapped onto keyward's fields.
pub(crate) struct LegacyRow {
    /// 1-based line of the row in the file (for errors).
    pub line: usize,
    pub source_id: String,
    pub hash: RawHash,
    pub owner: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
    pub last_used_at: Option<i64>,
    pub metadata: Vec<u8>,
    /// Deleted in the source system (Unkey's `deletedAt`): not imported.
    pub deleted: bool,
}

/// Why an export could not be read: the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceError {
    pub line: usize,
    pub detail: String,
}

type Fields = HashMap<String, Value>;

/// Reads every row of an export.
pub(crate) fn read_export(
    scheme: LegacyScheme,
    data: &[u8],
    options: &LegacyImportOptions,
) -> Result<Vec<LegacyRow>, SourceError> {
    let text = std::str::from_utf8(data).map_err(|e| SourceError {
        line: 1 + data[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        detail: "the file is not UTF-8".into(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let records = if text.trim_start().starts_with('{') {
        json_lines(text)?
    } else {
        csv_records(text)?
    };
    records
        .into_iter()
        .map(|(line, fields)| {
            map_row(scheme, &fields, options)
                .map_err(|detail| SourceError { line, detail })
                .map(|mut row| {
                    row.line = line;
                    row
                })
        })
        .collect()
}

fn json_lines(text: &str) -> Result<Vec<(usize, Fields)>, SourceError> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| SourceError {
            line: index + 1,
            detail: format!("not a JSON object: {e}"),
        })?;
        let Value::Object(map) = value else {
            return Err(SourceError {
                line: index + 1,
                detail: "each line must be one JSON object".into(),
            });
        };
        out.push((index + 1, map.into_iter().collect()));
    }
    Ok(out)
}

/// RFC 4180 CSV: a header row, comma-separated fields, `"` quoting with `""` inside quotes,
/// CRLF or LF line ends. An empty field is NULL (how SQLite and psql export it).
fn csv_records(text: &str) -> Result<Vec<(usize, Fields)>, SourceError> {
    let mut rows: Vec<(usize, Vec<String>)> = Vec::new();
    let mut field = String::new();
    let mut row: Vec<String> = Vec::new();
    let mut quoted = false;
    let mut line = 1;
    let mut row_line = 1;
    let mut chars = text.chars().peekable();
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                quoted = true;
                at_field_start = false;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                if !(row.len() == 1 && row[0].is_empty()) {
                    rows.push((row_line, std::mem::take(&mut row)));
                }
                row.clear();
                line += 1;
                row_line = line;
                at_field_start = true;
            }
            _ => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    if quoted {
        return Err(SourceError {
            line: row_line,
            detail: "a quoted field is not closed".into(),
        });
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push((row_line, row));
    }
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Ok(Vec::new());
    };
    let header: Vec<String> = header.into_iter().map(|h| h.trim().to_owned()).collect();
    let mut out = Vec::new();
    for (line, values) in rows {
        if values.len() != header.len() {
            return Err(SourceError {
                line,
                detail: format!(
                    "{} fields where the header names {}",
                    values.len(),
                    header.len()
                ),
            });
        }
        let fields = header
            .iter()
            .cloned()
            .zip(values.into_iter().map(|v| {
                if v.is_empty() {
                    Value::Null
                } else {
                    Value::String(v)
                }
            }))
            .collect();
        out.push((line, fields));
    }
    Ok(out)
}

/// The first present, non-null field of `names`.
fn field<'a>(fields: &'a Fields, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|name| fields.get(*name).filter(|v| !v.is_null()))
}

fn text_field(fields: &Fields, names: &[&str]) -> Option<String> {
    field(fields, names).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn required(fields: &Fields, names: &[&str]) -> Result<String, String> {
    text_field(fields, names)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| format!("column {} is missing or empty", names.join(" / ")))
}

fn time_field(fields: &Fields, names: &[&str]) -> Result<Option<i64>, String> {
    match field(fields, names) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(|n| Some(epoch_number(n)))
            .ok_or_else(|| format!("{}: not a time", names[0])),
        Some(Value::String(s)) => parse_time(s)
            .map(Some)
            .ok_or_else(|| format!("{}: {s:?} is not a time keyward reads", names[0])),
        Some(_) => Err(format!("{}: not a time", names[0])),
    }
}

fn bool_field(fields: &Fields, names: &[&str]) -> Result<Option<bool>, String> {
    match field(fields, names) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Number(n)) => Ok(Some(n.as_i64() != Some(0))),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "t" | "true" | "yes" => Ok(Some(true)),
            "0" | "f" | "false" | "no" => Ok(Some(false)),
            _ => Err(format!("{}: {s:?} is not a boolean", names[0])),
        },
        Some(_) => Err(format!("{}: not a boolean", names[0])),
    }
}

/// A JSON value held as JSON or as text holding JSON (SQL exports hold JSON columns as text).
fn json_field(fields: &Fields, names: &[&str]) -> Result<Option<Value>, String> {
    match field(fields, names) {
        None => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map(Some)
            .map_err(|e| format!("{}: not JSON: {e}", names[0])),
        Some(other) => Ok(Some(other.clone())),
    }
}

/// An integer time: milliseconds when above 10^11 (after 1973 in ms; year 5138 in s),
/// seconds otherwise.
fn epoch_number(n: i64) -> i64 {
    if n.abs() >= 100_000_000_000 {
        n
    } else {
        n.saturating_mul(1000)
    }
}

/// `YYYY-MM-DD[ T]HH:MM[:SS[.fraction]][Z|±HH[:MM]]` (UTC when no offset is given), or an
/// integer (see [`epoch_number`]).
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i64>() {
        return Some(epoch_number(n));
    }
    let (date, rest) = text.split_at_checked(10)?;
    let day = crate::clock::Day::parse(date)?;
    let mut ms = day.start().as_millis();
    if rest.is_empty() {
        return Some(ms);
    }
    let rest = rest.strip_prefix(['T', ' '])?;
    let (clock, offset) = match rest.find(['Z', 'z', '+', '-']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let mut parts = clock.trim().split(':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let (seconds, millis) = match parts.next() {
        None => (0, 0),
        Some(sec) => match sec.split_once('.') {
            None => (sec.parse().ok()?, 0),
            Some((whole, fraction)) => {
                if !fraction.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
                (whole.parse::<i64>().ok()?, digits.parse::<i64>().ok()?)
            }
        },
    };
    if parts.next().is_some() || hours > 23 || minutes > 59 || seconds > 60 {
        return None;
    }
    ms += ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis;
    let offset_minutes = match offset {
        "" | "Z" | "z" => 0,
        offset => {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
            let (h, m) = match digits.len() {
                2 => (digits.parse::<i64>().ok()?, 0),
                4 => (
                    digits[..2].parse::<i64>().ok()?,
                    digits[2..].parse::<i64>().ok()?,
                ),
                _ => return None,
            };
            sign * (h * 60 + m)
        }
    };
    Some(ms - offset_minutes * 60_000)
}

/// Scopes from a list of abilities/permissions; `*` stands for `options.all_scopes`.
fn scopes_from(abilities: &[String], options: &LegacyImportOptions) -> Result<Vec<String>, String> {
    let mut scopes = Vec::new();
    for ability in abilities {
        if ability == "*" {
            let all = options.all_scopes.as_ref().ok_or_else(|| {
                "ability \"*\" (every ability) has no keyward equivalent: say which scopes it \
                 stands for with all_scopes (keyward import --all-scopes a,b,c)"
                    .to_owned()
            })?;
            scopes.extend(all.iter().cloned());
        } else {
            scopes.push(ability.clone());
        }
    }
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

fn string_list(value: &Value, what: &str) -> Result<Vec<String>, String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{what}: every item must be a string"))
            })
            .collect(),
        _ => Err(format!("{what}: expected a JSON array of strings")),
    }
}

fn owner_of(
    fields: &Fields,
    names: &[&str],
    options: &LegacyImportOptions,
) -> Result<String, String> {
    text_field(fields, names)
        .filter(|s| !s.trim().is_empty())
        .or_else(|| options.default_owner.clone())
        .ok_or_else(|| {
            format!(
                "no owner: column {} is missing or empty and no default owner was given \
                 (--owner)",
                names.join(" / ")
            )
        })
}

fn metadata_of(value: Option<Value>) -> Vec<u8> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    }
}

fn map_row(
    scheme: LegacyScheme,
    fields: &Fields,
    options: &LegacyImportOptions,
) -> Result<LegacyRow, String> {
    let hash_column: &[&str] = match scheme {
        LegacyScheme::Sanctum => &["token"],
        LegacyScheme::Drf => &["hashed_key"],
        LegacyScheme::Unkey => &["hash"],
        LegacyScheme::BetterAuth => &["key"],
    };
    let hash = decode_stored(scheme, &required(fields, hash_column)?)
        .map_err(|e| format!("column {}: {e}", hash_column[0]))?;
    let mut row = LegacyRow {
        line: 0,
        source_id: String::new(),
        hash,
        owner: String::new(),
        name: String::new(),
        scopes: Vec::new(),
        created_at: None,
        expires_at: None,
        revoked: false,
        last_used_at: None,
        metadata: Vec::new(),
        deleted: false,
    };
    match scheme {
        LegacyScheme::Sanctum => {
            row.source_id = required(fields, &["id"])?;
            if !row.source_id.bytes().all(|b| b.is_ascii_digit()) || row.source_id.len() > 20 {
                return Err("column id: Sanctum ids are integers".into());
            }
            row.owner = owner_of(fields, &["tokenable_id"], options)?;
            row.name = text_field(fields, &["name"]).unwrap_or_default();
            let abilities = match json_field(fields, &["abilities"])? {
                None => Vec::new(),
                Some(value) => string_list(&value, "abilities")?,
            };
            row.scopes = scopes_from(&abilities, options)?;
            row.created_at = time_field(fields, &["created_at"])?;
            row.last_used_at = time_field(fields, &["last_used_at"])?;
            let expires = time_field(fields, &["expires_at"])?;
            let configured = match (options.sanctum_expiration_minutes, row.created_at) {
                (Some(minutes), Some(created)) => {
                    Some(created.saturating_add((minutes as i64).saturating_mul(60_000)))
                }
                _ => None,
            };
            row.expires_at = match (expires, configured) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(kind) = text_field(fields, &["tokenable_type"]) {
                row.metadata = serde_json::json!({ "tokenable_type": kind })
                    .to_string()
                    .into_bytes();
            }
        }
        LegacyScheme::Drf => {
            // The `id` column is "<prefix>.<hashed_key>": it holds the hash, so it is never read.
            row.source_id = required(fields, &["prefix"])?;
            if !row.source_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err("column prefix: expected letters and digits".into());
            }
            row.owner = owner_of(fields, &["owner", "owner_id", "user_id"], options)?;
            row.name = text_field(fields, &["name"]).unwrap_or_default();
            row.created_at = time_field(fields, &["created"])?;
            row.expires_at = time_field(fields, &["expiry_date"])?;
            row.revoked = bool_field(fields, &["revoked"])?.unwrap_or(false);
            if let Some(scopes) = json_field(fields, &["scopes"])? {
                row.scopes = scopes_from(&string_list(&scopes, "scopes")?, options)?;
            }
        }
        LegacyScheme::Unkey => {
            row.source_id = required(fields, &["id", "keyId"])?;
            row.owner = owner_of(
                fields,
                &[
                    "ownerId",
                    "owner_id",
                    "externalId",
                    "external_id",
                    "identityId",
                    "identity_id",
                ],
                options,
            )?;
            row.name = text_field(fields, &["name"]).unwrap_or_default();
            row.created_at = time_field(fields, &["createdAt", "created_at_m", "created_at"])?;
            row.expires_at = time_field(fields, &["expires", "expiresAt", "expires_at"])?;
            row.revoked = !bool_field(fields, &["enabled"])?.unwrap_or(true);
            row.deleted = field(fields, &["deletedAt", "deleted_at_m", "deleted_at"]).is_some();
            row.last_used_at = time_field(fields, &["lastUsedAt", "last_used_at"])?;
            if let Some(permissions) = json_field(fields, &["permissions"])? {
                row.scopes = scopes_from(&string_list(&permissions, "permissions")?, options)?;
            }
            row.metadata = metadata_of(json_field(fields, &["meta"])?);
        }
        LegacyScheme::BetterAuth => {
            row.source_id = required(fields, &["id"])?;
            row.owner = owner_of(
                fields,
                &["userId", "user_id", "referenceId", "reference_id"],
                options,
            )?;
            row.name = text_field(fields, &["name"]).unwrap_or_default();
            row.created_at = time_field(fields, &["createdAt", "created_at"])?;
            row.expires_at = time_field(fields, &["expiresAt", "expires_at"])?;
            row.revoked = !bool_field(fields, &["enabled"])?.unwrap_or(true);
            row.last_used_at = time_field(fields, &["lastRequest", "last_request"])?;
            // Permissions are {"resource": ["action", …]}: scopes "resource:action".
            if let Some(permissions) = json_field(fields, &["permissions"])? {
                let Value::Object(map) = permissions else {
                    return Err(
                        "permissions: expected a JSON object {\"resource\": [\"action\"]}".into(),
                    );
                };
                let mut abilities = Vec::new();
                for (resource, actions) in map {
                    for action in string_list(&actions, "permissions")? {
                        abilities.push(format!("{resource}:{action}"));
                    }
                }
                row.scopes = scopes_from(&abilities, options)?;
            }
            row.metadata = metadata_of(json_field(fields, &["metadata"])?);
        }
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_the_forms_exports_use() {
        assert_eq!(parse_time("1970-01-01 00:00:01"), Some(1000));
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(parse_time("1970-01-01 01:00:00+01:00"), Some(0));
        assert_eq!(parse_time("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_time("1700000000123"), Some(1_700_000_000_123));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2024-13-01 00:00:00"), None);
    }

    #[test]
    fn csv_quotes_nulls_and_counts() {
        let text = "a,b,c\r\n1,\"x,\"\"y\"\"\",\n2,\"multi\nline\",z\n";
        let rows = csv_records(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1["b"], Value::String("x,\"y\"".into()));
        assert_eq!(rows[0].1["c"], Value::Null);
        assert_eq!(rows[1].0, 3);
        assert_eq!(rows[1].1["b"], Value::String("multi\nline".into()));
        let short = csv_records("a,b\n1\n").unwrap_err();
        assert_eq!(short.line, 2);
        assert!(csv_records("a\n\"open\n").is_err());
    }
}
