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

/// The body word whose low half is the record's usage cell (after the 32-byte digest), so a
/// reader can start loading the cell before it has read the whole record.
pub(crate) const USAGE_CELL_BODY_WORD: usize = 4;

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
        let mut buffer = RecordBuffer::new();
        RecordView::read(&mut buffer, header, body.len(), |i| body[i])
            .and_then(RecordView::to_owned)
    }
}

/// Records up to this size are read into a stack buffer (larger ones, with big metadata,
/// into the heap).
const STACK_RECORD_BYTES: usize = 512;

/// Where [`RecordView::read`] copies a record's payload: on the stack unless it is large.
pub(crate) struct RecordBuffer {
    on_stack: [u8; STACK_RECORD_BYTES],
    on_heap: Vec<u8>,
}

impl RecordBuffer {
    /// An empty buffer (nothing allocated).
    #[inline]
    pub(crate) fn new() -> RecordBuffer {
        RecordBuffer {
            on_stack: [0; STACK_RECORD_BYTES],
            on_heap: Vec::new(),
        }
    }
}

/// A record read in place: every field of the format, the strings borrowed from the copied
/// payload. What a verify judges from, and what [`TableRecord`] is decoded from (one reader
/// of the layout).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordView<'a> {
    /// `keyed_hash(pepper, id ‖ secret)`.
    pub digest: &'a [u8; 32],
    /// Index of the key's usage cell in this table generation.
    pub usage_cell: u32,
    /// The key's slots in the sync file.
    pub slots: Slots,
    pub serial: u64,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub credits: Option<CreditTerms>,
    pub rate_limit: Option<RateLimit>,
    pub id: &'a str,
    pub owner: &'a str,
    pub env: Option<&'a str>,
    pub metadata: &'a [u8],
    // Text a verify does not read stays bytes until `to_owned` (which checks it is UTF-8).
    name: &'a [u8],
    revoke_reason: Option<&'a [u8]>,
    rotated_from: Option<&'a [u8]>,
    pub rotated_to: Option<&'a [u8]>,
    /// The encoded scope list (each a length and bytes, sorted).
    scopes: &'a [u8],
    /// (scheme, id there, upgraded at) of an imported key.
    legacy: Option<(LegacyScheme, &'a [u8], Option<i64>)>,
}

impl<'a> RecordView<'a> {
    /// Copies the record whose header word is `header` and whose `body_words` following
    /// words `word(i)` reads (each read once) into `buffer`, checks its CRC and reads it.
    /// `None` when it is damaged (bad length, CRC mismatch, bad field).
    #[inline]
    pub(crate) fn read(
        buffer: &'a mut RecordBuffer,
        header: u64,
        body_words: usize,
        mut word: impl FnMut(usize) -> u64,
    ) -> Option<RecordView<'a>> {
        let len = (header & 0xffff_ffff) as usize;
        if len == 0 || len > body_words * 8 || len > MAX_RECORD_BYTES {
            return None;
        }
        let bytes: &mut [u8] = if body_words * 8 <= STACK_RECORD_BYTES {
            &mut buffer.on_stack[..body_words * 8]
        } else {
            buffer.on_heap.resize(body_words * 8, 0);
            &mut buffer.on_heap
        };
        for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&word(i).to_le_bytes());
        }
        let bytes = &bytes[..len];
        if u64::from(crc32fast::hash(bytes)) != header >> 32 {
            return None;
        }
        RecordView::parse(bytes)
    }

    /// Reads a payload whose CRC was checked.
    fn parse(bytes: &'a [u8]) -> Option<RecordView<'a>> {
        let mut r = Reader(bytes);
        let digest: &[u8; 32] = r.take(32)?.try_into().ok()?;
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
        let id = r.str()?;
        let owner = r.str()?;
        let name = r.bytes()?;
        let env = r.opt_str()?;
        let metadata = r.bytes()?;
        let revoke_reason = r.opt_bytes()?;
        let rotated_from = r.opt_bytes()?;
        let rotated_to = r.opt_bytes()?;
        let scope_count = r.u32()? as usize;
        let scopes_start = r.0;
        for _ in 0..scope_count {
            r.bytes()?;
        }
        let scopes = &scopes_start[..scopes_start.len() - r.0.len()];
        let legacy = match r.u8()? {
            0 => None,
            code => Some((
                LegacyScheme::from_code(u32::from(code))?,
                r.bytes()?,
                Some(r.i64()?).filter(|&t| t != NONE_I64),
            )),
        };
        if !r.0.is_empty() {
            return None;
        }
        Some(RecordView {
            digest,
            usage_cell,
            slots: Slots { credit, rate },
            serial,
            created_at,
            expires_at,
            revoked_at,
            credits,
            rate_limit,
            id,
            owner,
            name,
            env,
            metadata,
            revoke_reason,
            rotated_from,
            rotated_to,
            scopes,
            legacy,
        })
    }

    /// The key's scopes, sorted, as bytes (their entries were walked by `parse`).
    fn scope_bytes(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut r = Reader(self.scopes);
        std::iter::from_fn(move || r.bytes())
    }

    /// Whether the key holds every scope in `required`.
    pub(crate) fn has_scopes(&self, required: &[&str]) -> bool {
        required
            .iter()
            .all(|r| self.scope_bytes().any(|s| s == r.as_bytes()))
    }

    /// The record as an owned [`TableRecord`]; `None` if a text field is not UTF-8.
    pub(crate) fn to_owned(self) -> Option<TableRecord> {
        let text = |bytes: &[u8]| std::str::from_utf8(bytes).ok().map(str::to_owned);
        let opt_text = |bytes: Option<&[u8]>| match bytes {
            None => Some(None),
            Some(bytes) => text(bytes).map(Some),
        };
        Some(TableRecord {
            digest: *self.digest,
            usage_cell: self.usage_cell,
            slots: self.slots,
            info: KeyInfo {
                id: self.id.to_owned(),
                owner: self.owner.to_owned(),
                name: text(self.name)?,
                scopes: self.scope_bytes().map(text).collect::<Option<_>>()?,
                env: self.env.map(str::to_owned),
                created_at: self.created_at,
                expires_at: self.expires_at,
                metadata: self.metadata.to_vec(),
                revoked_at: self.revoked_at,
                revoke_reason: opt_text(self.revoke_reason)?,
                rotated_from: opt_text(self.rotated_from)?,
                rotated_to: opt_text(self.rotated_to)?,
                credits: self.credits,
                rate_limit: self.rate_limit,
                serial: self.serial,
                legacy: match self.legacy {
                    None => None,
                    Some((scheme, source_id, upgraded_at)) => Some(LegacyOrigin {
                        scheme,
                        source_id: text(source_id)?,
                        upgraded_at,
                    }),
                },
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

    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    fn opt_bytes(&mut self) -> Option<Option<&'a [u8]>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.bytes()?)),
            _ => None,
        }
    }

    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.str()?)),
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

    /// The word a verify reads early to start loading the usage cell holds the cell: the
    /// encoder's layout and `USAGE_CELL_BODY_WORD` agree.
    #[test]
    fn the_usage_cell_is_where_readers_look_for_it_early() {
        for usage_cell in [0, 42, 0x0102_0304, u32::MAX - 1] {
            let record = TableRecord {
                usage_cell,
                ..sample()
            };
            let words = record.encode();
            let body = &words[1..];
            assert_eq!(body[USAGE_CELL_BODY_WORD] as u32, usage_cell);
            assert_eq!(TableRecord::decode(&words).unwrap().usage_cell, usage_cell);
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
