//! The key records of the shared table's heap: what a verify needs to judge a key and to
//! answer with its public fields, in a compact binary form checked by a CRC32.
//!
//! A record is written once and never changed: a change to a key appends a new record and
//! points the key's slot at it, so a reader that copied a record holds a consistent view of
//! the key as it was when the slot named it.
//!
//! Layout, in 64-bit words: word 0 = `payload length in bytes | crc32(payload) << 32`, then the
//! payload padded with zeros to a whole word. Payload: digest (32 bytes), usage cell (u32),
//! credit slot (u32, `u32::MAX` = none), rate-limit slot (u32, `u32::MAX` = none), then the
//! fields of [`KeyInfo`] (the legacy origin last: a scheme code byte, 0 = none).

use crate::legacy::{LegacyOrigin, LegacyScheme};
use crate::rate_limit::RateLimit;
use crate::schema::{CreditTerms, KeyInfo, Refill, RefillInterval};

/// Longest record accepted when reading (a damaged length word must not make a reader copy
/// megabytes); far above what the field limits allow.
pub(crate) const MAX_RECORD_BYTES: usize = 64 * 1024;

const NONE_I64: i64 = i64::MIN;
const NO_SLOT: u32 = u32::MAX;

/// A key's slots in the sync file's shared arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Slots {
    /// Its usage-credit pool, for keys with credits.
    pub credit: Option<u32>,
    /// Its rate-limit word (GCRA state), for keys with their own rate limit.
    pub rate: Option<u32>,
}

/// One key as the shared table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableRecord {
    /// `keyed_hash(pepper, id ‖ secret)`.
    pub digest: [u8; 32],
    /// Index of the key's usage cell in this table generation.
    pub usage_cell: u32,
    /// The key's slots in the sync file (credit pool, rate-limit word).
    pub slots: Slots,
    /// The public fields.
    pub info: KeyInfo,
}

impl TableRecord {
    /// The record as words (header word first).
    pub(crate) fn encode(&self) -> Vec<u64> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&self.digest);
        out.extend_from_slice(&self.usage_cell.to_le_bytes());
        out.extend_from_slice(&self.slots.credit.unwrap_or(NO_SLOT).to_le_bytes());
        out.extend_from_slice(&self.slots.rate.unwrap_or(NO_SLOT).to_le_bytes());
        let info = &self.info;
        put_u64(&mut out, info.serial);
        put_i64(&mut out, info.created_at);
        put_i64(&mut out, info.expires_at.unwrap_or(NONE_I64));
        put_i64(&mut out, info.revoked_at.unwrap_or(NONE_I64));
        match info.credits {
            None => out.push(0),
            Some(terms) => {
                out.push(1);
                out.extend_from_slice(&terms.cost.to_le_bytes());
                match terms.refill {
                    None => out.push(0),
                    Some(refill) => {
                        out.push(refill.interval.code() as u8);
                        put_u64(&mut out, refill.amount);
                    }
                }
            }
        }
        match info.rate_limit {
            None => out.push(0),
            Some(limit) => {
                out.push(1);
                put_u64(&mut out, limit.rate);
                put_u64(&mut out, limit.period_ms);
                put_u64(&mut out, limit.burst);
            }
        }
        put_bytes(&mut out, info.id.as_bytes());
        put_bytes(&mut out, info.owner.as_bytes());
        put_bytes(&mut out, info.name.as_bytes());
        put_opt(&mut out, info.env.as_deref());
        put_bytes(&mut out, &info.metadata);
        put_opt(&mut out, info.revoke_reason.as_deref());
        put_opt(&mut out, info.rotated_from.as_deref());
        put_opt(&mut out, info.rotated_to.as_deref());
        out.extend_from_slice(&(info.scopes.len() as u32).to_le_bytes());
        for scope in &info.scopes {
            put_bytes(&mut out, scope.as_bytes());
        }
        match &info.legacy {
            None => out.push(0),
            Some(origin) => {
                out.push(origin.scheme.code() as u8);
                put_bytes(&mut out, origin.source_id.as_bytes());
                put_i64(&mut out, origin.upgraded_at.unwrap_or(NONE_I64));
            }
        }
        let header = out.len() as u64 | (u64::from(crc32fast::hash(&out)) << 32);
        let mut words = Vec::with_capacity(1 + out.len().div_ceil(8));
        words.push(header);
        for chunk in out.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            words.push(u64::from_le_bytes(word));
        }
        words
    }

    /// Words a record with this header word spans (header included), or `None` when the
    /// length is out of range.
    pub(crate) fn words_for(header: u64) -> Option<usize> {
        let len = (header & 0xffff_ffff) as usize;
        (len > 0 && len <= MAX_RECORD_BYTES).then(|| 1 + len.div_ceil(8))
    }

    /// Decodes a record copied out of the heap; `None` when it is damaged (bad length, CRC
    /// mismatch, bad field), which the caller treats as "in doubt".
    #[cfg(test)]
    pub(crate) fn decode(words: &[u64]) -> Option<TableRecord> {
        let (&header, body) = words.split_first()?;
        TableRecord::decode_body(header, body.len(), |i| body[i])
    }

    /// Decodes the record whose header word is `header` and whose `body_words` following
    /// words `word(i)` reads (each read once, into one buffer on the stack for records of up
    /// to [`STACK_RECORD_BYTES`]). `None` when it is damaged.
    pub(crate) fn decode_body(
        header: u64,
        body_words: usize,
        mut word: impl FnMut(usize) -> u64,
    ) -> Option<TableRecord> {
        let len = (header & 0xffff_ffff) as usize;
        if len == 0 || len > body_words * 8 {
            return None;
        }
        let mut on_stack = [0u8; STACK_RECORD_BYTES];
        let mut on_heap = Vec::new();
        let buffer: &mut [u8] = if body_words * 8 <= STACK_RECORD_BYTES {
            &mut on_stack[..body_words * 8]
        } else {
            on_heap.resize(body_words * 8, 0);
            &mut on_heap
        };
        for (i, chunk) in buffer.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&word(i).to_le_bytes());
        }
        let bytes = &buffer[..len];
        if u64::from(crc32fast::hash(bytes)) != header >> 32 {
            return None;
        }
        let mut r = Reader(bytes);
        let digest: [u8; 32] = r.take(32)?.try_into().ok()?;
        let usage_cell = r.u32()?;
        let credit = Some(r.u32()?).filter(|&slot| slot != NO_SLOT);
        let rate = Some(r.u32()?).filter(|&slot| slot != NO_SLOT);
        let serial = r.u64()?;
        let created_at = r.i64()?;
        let expires_at = Some(r.i64()?).filter(|&t| t != NONE_I64);
        let revoked_at = Some(r.i64()?).filter(|&t| t != NONE_I64);
        let credits = match r.u8()? {
            0 => None,
            1 => {
                let cost = r.u32()?;
                let refill = match r.u8()? {
                    0 => None,
                    code => {
                        let interval = [RefillInterval::Daily, RefillInterval::Monthly]
                            .into_iter()
                            .find(|i| i.code() == u32::from(code))?;
                        Some(Refill {
                            amount: r.u64()?,
                            interval,
                        })
                    }
                };
                Some(CreditTerms { refill, cost })
            }
            _ => return None,
        };
        let rate_limit = match r.u8()? {
            0 => None,
            1 => Some(RateLimit {
                rate: r.u64()?,
                period_ms: r.u64()?,
                burst: r.u64()?,
            }),
            _ => return None,
        };
        let id = r.string()?;
        let owner = r.string()?;
        let name = r.string()?;
        let env = r.opt_string()?;
        let metadata = r.bytes()?.to_vec();
        let revoke_reason = r.opt_string()?;
        let rotated_from = r.opt_string()?;
        let rotated_to = r.opt_string()?;
        let scope_count = r.u32()? as usize;
        if scope_count > bytes.len() {
            return None;
        }
        let mut scopes = Vec::with_capacity(scope_count);
        for _ in 0..scope_count {
            scopes.push(r.string()?);
        }
        let legacy = match r.u8()? {
            0 => None,
            code => Some(LegacyOrigin {
                scheme: LegacyScheme::from_code(u32::from(code))?,
                source_id: r.string()?,
                upgraded_at: Some(r.i64()?).filter(|&t| t != NONE_I64),
            }),
        };
        if !r.0.is_empty() {
            return None;
        }
        Some(TableRecord {
            digest,
            usage_cell,
            slots: Slots { credit, rate },
            info: KeyInfo {
                id,
                owner,
                name,
                scopes,
                env,
                created_at,
                expires_at,
                metadata,
                revoked_at,
                revoke_reason,
                rotated_from,
                rotated_to,
                credits,
                rate_limit,
                serial,
                legacy,
            },
        })
    }
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_i64(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_opt(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => out.push(0),
        Some(text) => {
            out.push(1);
            put_bytes(out, text.as_bytes());
        }
    }
}

/// Records up to this size are decoded from a stack buffer (larger ones, with big metadata,
/// from the heap).
const STACK_RECORD_BYTES: usize = 1024;

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    fn opt_string(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.string()?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TableRecord {
        TableRecord {
            digest: [7; 32],
            usage_cell: 42,
            slots: Slots {
                credit: Some(3),
                rate: Some(5),
            },
            info: KeyInfo {
                id: "0123456789abcdef".into(),
                owner: "acct_1".into(),
                name: "ci".into(),
                scopes: vec!["read".into(), "write".into()],
                env: Some("live".into()),
                created_at: 1,
                expires_at: Some(2),
                metadata: vec![0, 1, 2],
                revoked_at: None,
                revoke_reason: None,
                rotated_from: Some("x".into()),
                rotated_to: None,
                credits: Some(CreditTerms {
                    refill: Some(Refill {
                        amount: 10,
                        interval: RefillInterval::Monthly,
                    }),
                    cost: 2,
                }),
                rate_limit: Some(RateLimit {
                    rate: 1000,
                    period_ms: 1000,
                    burst: 100,
                }),
                serial: 9,
                legacy: None,
            },
        }
    }

    #[test]
    fn a_record_survives_the_round_trip() {
        let record = sample();
        let words = record.encode();
        assert_eq!(TableRecord::words_for(words[0]), Some(words.len()));
        assert_eq!(TableRecord::decode(&words), Some(record));
        let mut legacy = sample();
        legacy.info.legacy = Some(LegacyOrigin {
            scheme: LegacyScheme::BetterAuth,
            source_id: "ba_1".into(),
            upgraded_at: Some(77),
        });
        assert_eq!(TableRecord::decode(&legacy.encode()), Some(legacy));
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let words = sample().encode();
        let mut refused = 0;
        let total = words.len() * 64;
        for bit in 0..total {
            let mut damaged = words.clone();
            damaged[bit / 64] ^= 1 << (bit % 64);
            if TableRecord::decode(&damaged).is_none() {
                refused += 1;
            }
        }
        // Flips in the zero padding of the last word are outside the CRC and harmless.
        let padding_bits = (words.len() - 1) * 64 - (words[0] & 0xffff_ffff) as usize * 8;
        assert_eq!(refused, total - padding_bits);
    }
}
