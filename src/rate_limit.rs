//! Rate limits: the terms (N requests per period, with bursts) and the generic cell rate
//! algorithm (GCRA) that enforces them with one 64-bit word of state.
//!
//! GCRA keeps a *theoretical arrival time* (TAT): the time at which the limited subject would
//! be back to a full burst if no request came meanwhile. With `T` = period / rate (the
//! emission interval) and `τ` = burst × `T`, a request at `now` is accepted when
//! `max(TAT, now) + T − now ≤ τ`, and then TAT becomes `max(TAT, now) + T`. From rest, `burst`
//! requests pass at once; after that one request per `T`. Over a saturated interval of
//! length `d` starting from rest exactly `burst + ⌊d / T⌋` requests pass (±1 at the edges),
//! whatever the number of callers: the word changes only through compare-and-swap, so every
//! accepted request is one step of the same sequence (see `store::rate_limits`).
//!
//! Times are nanoseconds since the Unix epoch; `T` is rounded down to the nanosecond.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest rate-limit period: one year.
pub const MAX_RATE_PERIOD_MS: u64 = 366 * 24 * 3_600_000;
/// Largest burst.
pub const MAX_RATE_BURST: u64 = 1_000_000_000;

const NS_PER_MS: u64 = 1_000_000;

/// A rate limit: `rate` requests per `period_ms`, with bursts of up to `burst` requests (from
/// rest, `burst` requests pass at once; then one every `period_ms / rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RateLimit {
    /// Requests per period (≥ 1).
    pub rate: u64,
    /// The period in milliseconds (1 ms to [`MAX_RATE_PERIOD_MS`]).
    pub period_ms: u64,
    /// Requests that may pass at once from rest (1 to [`MAX_RATE_BURST`]).
    pub burst: u64,
}

impl RateLimit {
    /// `rate` requests per `period_ms` with a burst of `burst`, checked.
    pub fn new(rate: u64, period_ms: u64, burst: u64) -> Result<RateLimit> {
        let limit = RateLimit {
            rate,
            period_ms,
            burst,
        };
        limit.check()?;
        Ok(limit)
    }

    /// Checks the terms: rate ≥ 1 and at most one request per nanosecond, period 1 ms to a
    /// year, burst 1 to [`MAX_RATE_BURST`].
    pub fn check(&self) -> Result<()> {
        if self.period_ms == 0 || self.period_ms > MAX_RATE_PERIOD_MS {
            return Err(Error::invalid(
                "rate_limit.period",
                "must be 1 ms to 366 days",
            ));
        }
        if self.rate == 0 || self.rate > self.period_ms * NS_PER_MS {
            return Err(Error::invalid(
                "rate_limit.rate",
                "must be at least 1 and at most one request per nanosecond",
            ));
        }
        if self.burst == 0 || self.burst > MAX_RATE_BURST {
            return Err(Error::invalid(
                "rate_limit.burst",
                "must be 1 to 1,000,000,000",
            ));
        }
        Ok(())
    }

    /// The emission interval `T` in nanoseconds (≥ 1 for checked terms).
    #[inline]
    pub fn interval_ns(&self) -> u64 {
        (self.period_ms * NS_PER_MS / self.rate.max(1)).max(1)
    }

    /// The burst tolerance `τ` = burst × `T` in nanoseconds.
    #[inline]
    pub fn tolerance_ns(&self) -> u64 {
        self.burst.saturating_mul(self.interval_ns())
    }

    /// Parses `N/UNIT` or `N/<k>UNIT` (`1000/s`, `60/min`, `5/10s`, `100/h`, `1000/d`;
    /// units `ms`, `s`, `m`/`min`, `h`, `d`) into (rate, period in ms). The CLI's syntax.
    pub fn parse_rate(text: &str) -> Option<(u64, u64)> {
        let (count, per) = text.trim().split_once('/')?;
        let rate: u64 = count.trim().parse().ok()?;
        let per = per.trim();
        let split = per.find(|c: char| !c.is_ascii_digit()).unwrap_or(per.len());
        let (multiple, unit) = per.split_at(split);
        let multiple: u64 = if multiple.is_empty() {
            1
        } else {
            multiple.parse().ok()?
        };
        let unit_ms = match unit {
            "ms" => 1,
            "s" | "sec" => 1_000,
            "m" | "min" => 60_000,
            "h" | "hour" => 3_600_000,
            "d" | "day" => 86_400_000,
            _ => return None,
        };
        Some((rate, multiple.checked_mul(unit_ms)?))
    }

    /// The terms as the CLI writes them, e.g. `1000/1s burst 100`.
    pub fn describe(&self) -> String {
        let period = match self.period_ms {
            p if p % 86_400_000 == 0 => format!("{}d", p / 86_400_000),
            p if p % 3_600_000 == 0 => format!("{}h", p / 3_600_000),
            p if p % 60_000 == 0 => format!("{}min", p / 60_000),
            p if p % 1_000 == 0 => format!("{}s", p / 1_000),
            p => format!("{p}ms"),
        };
        format!("{}/{} burst {}", self.rate, period, self.burst)
    }
}

/// Whose limit a [`RateStatus`] describes.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RateScope {
    /// The key's own limit.
    Key = 1,
    /// The limit its owner shares among all of its keys.
    Owner = 2,
}

/// Where a request stands against a rate limit: what the `RateLimit`, `RateLimit-Policy` and
/// `Retry-After` response fields say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateStatus {
    /// Whose limit this is.
    pub scope: RateScope,
    /// The terms.
    pub limit: RateLimit,
    /// Requests that could pass right now, after this one.
    pub remaining: u64,
    /// Milliseconds until a full burst is available again.
    pub reset_ms: u64,
    /// For a refused request: milliseconds until the next request would be accepted.
    pub retry_after_ms: Option<u64>,
}

impl RateStatus {
    /// The IETF `RateLimit-Policy` field value (draft-ietf-httpapi-ratelimit-headers-10/11: a
    /// structured-field list of quoted policy names with parameters):
    /// `"key";q=1000;w=1` — the quota `q` per window `w` seconds (at least 1).
    pub fn policy_header(&self) -> String {
        // The window is whole seconds: a period that is not one is stated as the quota of the
        // window it rounds up to (5 per 100 ms → q=50;w=1).
        let window_s = self.limit.period_ms.div_ceil(1000).max(1);
        let quota = u128::from(self.limit.rate) * u128::from(window_s) * 1000
            / u128::from(self.limit.period_ms.max(1));
        format!(
            "\"{}\";q={};w={window_s}",
            self.policy_name(),
            u64::try_from(quota).unwrap_or(u64::MAX)
        )
    }

    /// The IETF `RateLimit` field value: `"key";r=99;t=1` — requests remaining `r`, seconds
    /// `t` until the quota is fully available again (rounded up).
    pub fn header(&self) -> String {
        format!(
            "\"{}\";r={};t={}",
            self.policy_name(),
            self.remaining,
            self.reset_ms.div_ceil(1000)
        )
    }

    /// The `Retry-After` value in whole seconds (rounded up, at least 1), for a refusal.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_ms.map(|ms| ms.div_ceil(1000).max(1))
    }

    fn policy_name(&self) -> &'static str {
        match self.scope {
            RateScope::Key => "key",
            RateScope::Owner => "owner",
        }
    }
}

/// One GCRA decision on a TAT word: `Ok(new TAT)` when a request at `now_ns` passes,
/// `Err(ns until one would)` when it does not.
#[inline]
pub(crate) fn decide(tat: u64, now_ns: u64, limit: &RateLimit) -> std::result::Result<u64, u64> {
    let interval = limit.interval_ns();
    let next = tat.max(now_ns).saturating_add(interval);
    let ahead = next - now_ns;
    let tolerance = limit.tolerance_ns();
    if ahead <= tolerance {
        Ok(next)
    } else {
        Err(ahead - tolerance)
    }
}

/// The status of a limit whose TAT word holds `tat` at `now_ns`.
pub(crate) fn status(
    scope: RateScope,
    limit: &RateLimit,
    tat: u64,
    now_ns: u64,
    retry_after_ns: Option<u64>,
) -> RateStatus {
    let ahead = tat.saturating_sub(now_ns);
    let room = limit.tolerance_ns().saturating_sub(ahead);
    RateStatus {
        scope,
        limit: *limit,
        remaining: room / limit.interval_ns(),
        reset_ms: ahead.div_ceil(NS_PER_MS),
        retry_after_ms: retry_after_ns.map(|ns| ns.div_ceil(NS_PER_MS).max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_second(rate: u64, burst: u64) -> RateLimit {
        RateLimit::new(rate, 1000, burst).unwrap()
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let limit = per_second(1000, 100);
        let start = 1_000_000_000_000u64;
        let mut tat = 0;
        let mut accepted = 0;
        // 5 s in steps of 100 µs, 3 attempts each: saturated.
        for step in 0..=50_000u64 {
            let now = start + step * 100_000;
            for _ in 0..3 {
                if let Ok(next) = decide(tat, now, &limit) {
                    tat = next;
                    accepted += 1;
                }
            }
        }
        assert_eq!(accepted, 5_000 + 100);
    }

    #[test]
    fn retry_after_is_when_the_next_request_passes() {
        let limit = per_second(10, 2);
        let now = 5_000_000_000u64;
        let tat = decide(0, now, &limit).unwrap();
        let tat = decide(tat, now, &limit).unwrap();
        let wait = decide(tat, now, &limit).unwrap_err();
        assert_eq!(wait, 100_000_000, "one interval of 100 ms");
        assert!(decide(tat, now + wait - 1, &limit).is_err());
        assert!(decide(tat, now + wait, &limit).is_ok());
        let s = status(RateScope::Key, &limit, tat, now, Some(wait));
        assert_eq!(
            (s.remaining, s.reset_ms, s.retry_after_ms),
            (0, 200, Some(100))
        );
        assert_eq!(s.header(), "\"key\";r=0;t=1");
        assert_eq!(s.policy_header(), "\"key\";q=10;w=1");
        assert_eq!(s.retry_after_secs(), Some(1));
        let sub_second = status(
            RateScope::Owner,
            &RateLimit::new(5, 100, 5).unwrap(),
            0,
            now,
            None,
        );
        assert_eq!(sub_second.policy_header(), "\"owner\";q=50;w=1");
        let odd = status(
            RateScope::Key,
            &RateLimit::new(3, 1500, 3).unwrap(),
            0,
            now,
            None,
        );
        assert_eq!(odd.policy_header(), "\"key\";q=4;w=2");
    }

    #[test]
    fn parsing_and_checking() {
        assert_eq!(RateLimit::parse_rate("1000/s"), Some((1000, 1000)));
        assert_eq!(RateLimit::parse_rate("60/min"), Some((60, 60_000)));
        assert_eq!(RateLimit::parse_rate("5/10s"), Some((5, 10_000)));
        assert_eq!(RateLimit::parse_rate("5/fortnight"), None);
        assert_eq!(RateLimit::parse_rate("x/s"), None);
        assert!(RateLimit::new(0, 1000, 1).is_err());
        assert!(RateLimit::new(1, 0, 1).is_err());
        assert!(RateLimit::new(1, 1000, 0).is_err());
        assert!(RateLimit::new(2_000_000, 1, 1).is_err(), "above 1 per ns");
        assert_eq!(per_second(1000, 100).describe(), "1000/1s burst 100");
    }
}
