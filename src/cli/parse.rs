//! Parsing of the values operators type: durations (`90d`, `24h`, `30m`, `1h30m`), points in
//! time (a duration from now, or a UTC date `2027-01-31` / `2027-01-31T12:00Z`), key ids and
//! full keys.

use std::time::Duration;

use keyward::{Day, KeyId, Timestamp, parse_key};

use crate::error::CliError;

/// Hint shown with a bad duration.
const DURATION_HELP: &str =
    "use a number followed by a unit (s, m, h, d or w), e.g. 90d, 24h, 30m or 1h30m";
/// Hint shown with a bad point in time.
const TIME_HELP: &str =
    "use a duration from now such as 90d, or a UTC date such as 2027-01-31 or 2027-01-31T12:00Z";

/// Parses a duration such as `90d`, `24h`, `30m`, `45s`, `2w` or `1d12h`; `0` alone is zero.
pub fn duration(text: &str) -> Result<Duration, CliError> {
    let bad = |why: String| {
        CliError::bad_input("BAD_DURATION", format!("invalid duration {text:?}: {why}"))
            .hint(DURATION_HELP)
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u64 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad(format!("expected a number at {rest:?}")));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| bad("the number is too large".into()))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let seconds: u64 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "" => {
                return Err(bad(format!(
                    "{number} has no unit (did you mean {number}d?)"
                )));
            }
            other => return Err(bad(format!("unknown unit {other:?}"))),
        };
        total = number
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .filter(|&s| s <= 100 * 366 * 86_400)
            .ok_or_else(|| bad("longer than 100 years".into()))?;
    }
    Ok(Duration::from_secs(total))
}

/// Parses a UTC date `YYYY-MM-DD`.
pub fn day(text: &str) -> Result<Day, CliError> {
    Day::parse(text).ok_or_else(|| {
        CliError::bad_input("BAD_DATE", format!("invalid date {text:?}"))
            .hint("use a UTC date such as 2027-01-31")
    })
}

/// Parses a point in time: a UTC date (`2027-01-31`, midnight), a UTC date and time
/// (`2027-01-31T12:00Z`, `2027-01-31T12:00:30Z`), or a duration counted from `now` in the
/// direction `sign` (+1 = future, -1 = past).
pub fn time(text: &str, now: Timestamp, sign: i64) -> Result<Timestamp, CliError> {
    let text = text.trim();
    let looks_like_date = text.len() >= 10 && text.as_bytes().get(4) == Some(&b'-');
    if !looks_like_date {
        let d = duration(text).map_err(|e| e.hint(TIME_HELP))?;
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        return Ok(Timestamp::from_millis(
            now.as_millis().saturating_add(sign * ms),
        ));
    }
    let bad = || CliError::bad_input("BAD_TIME", format!("invalid time {text:?}")).hint(TIME_HELP);
    let (date, clock) = match text.split_once(['T', ' ']) {
        Some((date, clock)) => (date, Some(clock)),
        None => (text, None),
    };
    let day = Day::parse(date).ok_or_else(bad)?;
    let mut ms = day.start().as_millis();
    if let Some(clock) = clock {
        let clock = clock.strip_suffix('Z').ok_or_else(bad)?;
        let parts: Vec<&str> = clock.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let field = |s: &str, max: i64| -> Result<i64, CliError> {
            if s.len() != 2 {
                return Err(bad());
            }
            s.parse::<i64>()
                .ok()
                .filter(|v| (0..=max).contains(v))
                .ok_or_else(bad)
        };
        let h = field(parts[0], 23)?;
        let m = field(parts[1], 59)?;
        let s = match parts.get(2) {
            Some(s) => field(s, 59)?,
            None => 0,
        };
        ms += ((h * 60 + m) * 60 + s) * 1000;
    }
    Ok(Timestamp::from_millis(ms))
}

/// An expiry as given to `create`/`update`: a time in the future (see [`time`]).
pub fn expiry(text: &str, now: Timestamp) -> Result<Timestamp, CliError> {
    let at = time(text, now, 1)?;
    if at <= now {
        return Err(CliError::bad_input(
            "BAD_TIME",
            format!("the expiry {text:?} is not in the future"),
        )
        .hint(TIME_HELP));
    }
    Ok(at)
}

/// The public id named by `text`: a public id, or a full key (whose id is taken; the secret
/// is not checked, so a leaked key can be revoked by pasting it).
pub fn key_id(text: &str) -> Result<String, CliError> {
    let text = text.trim();
    if KeyId::parse(text).is_ok() {
        return Ok(text.to_owned());
    }
    if text.contains('_') {
        return match parse_key(text, None) {
            Ok(parsed) => Ok(parsed.id.as_str().to_owned()),
            Err(e) => Err(CliError::bad_input("MALFORMED_KEY", format!("malformed key: {e}"))
                .hint("pass the key's public id (16 letters and digits, see `keyward list`) or the full key")),
        };
    }
    Err(CliError::bad_input(
        "BAD_KEY_ID",
        format!("{text:?} is not a key id: ids are 16 letters and digits"),
    )
    .hint("see the ID column of `keyward list`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("90d").unwrap(), Duration::from_secs(90 * 86_400));
        assert_eq!(duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(duration("45s").unwrap(), Duration::from_secs(45));
        assert_eq!(duration("2w").unwrap(), Duration::from_secs(14 * 86_400));
        assert_eq!(duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(duration("0").unwrap(), Duration::ZERO);
        assert_eq!(duration("0s").unwrap(), Duration::ZERO);
        for bad in [
            "",
            "90",
            "d",
            "90x",
            "1.5h",
            "-3d",
            "h1",
            "999999999999999999999d",
            "40000d",
        ] {
            let err = duration(bad).unwrap_err();
            assert_eq!(err.code, "BAD_DURATION", "{bad}");
        }
        assert!(
            duration("90")
                .unwrap_err()
                .message
                .contains("did you mean 90d")
        );
    }

    #[test]
    fn times() {
        let now = Timestamp::from_millis(1_000_000_000_000);
        assert_eq!(time("1h", now, 1).unwrap().as_millis(), 1_000_003_600_000);
        assert_eq!(time("1h", now, -1).unwrap().as_millis(), 999_996_400_000);
        let day = Day::parse("2027-01-31").unwrap().start().as_millis();
        assert_eq!(time("2027-01-31", now, 1).unwrap().as_millis(), day);
        assert_eq!(
            time("2027-01-31T12:30Z", now, 1).unwrap().as_millis(),
            day + 45_000_000
        );
        assert_eq!(
            time("2027-01-31T12:30:05Z", now, 1).unwrap().as_millis(),
            day + 45_005_000
        );
        for bad in [
            "2027-02-30",
            "2027-01-31T25:00Z",
            "2027-01-31T12:00",
            "2027-01-31T1:00Z",
        ] {
            assert!(time(bad, now, 1).is_err(), "{bad}");
        }
        assert!(expiry("2001-01-01", now).is_err());
    }

    #[test]
    fn key_ids() {
        assert_eq!(key_id("AAAAAAAAAAAAAAAA").unwrap(), "AAAAAAAAAAAAAAAA");
        assert_eq!(key_id("short").unwrap_err().code, "BAD_KEY_ID");
        assert_eq!(key_id("kw_live_garbage").unwrap_err().code, "MALFORMED_KEY");
    }
}
