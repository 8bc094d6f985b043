//! AccelByte's token revocation-list bloom filter ("MURMUR128MITZ64").
//!
//! IAM publishes revoked access tokens as a bloom filter inside
//! `GET /iam/v3/oauth/revocationlist` (`revokedTokens`), and every token
//! validator (AccelByte/bloom in Go, iam-python-sdk, iam-go-sdk) checks
//! incoming tokens against it. The emulator builds these filters and the
//! matchmaker reads them, so both sides must agree bit for bit with the real
//! SDKs; this module owns that algorithm and its wire form.
//!
//! Wire JSON: `{"m": <bits>, "k": <hash count>, "bits": [<u64 word>, ...]}`.
//!
//! Algorithm: MurmurHash3 x64 128-bit (seed 0) of the raw token bytes gives
//! `h1, h2`; index `i` (for `i in 0..k`) is
//! `((h1 + i * h2) & 0x7fff_ffff_ffff_ffff) % m` with wrapping arithmetic,
//! and bit `idx` lives in `bits[idx / 64]` at bit `idx % 64`.
//!
//! The filter arrives over the network, so nothing here may panic or index
//! out of bounds on malformed input: a filter that fails [`BloomFilter::validate`]
//! reports every token as *not* revoked rather than crashing the validator.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Bits per word of [`BloomFilter::bits`].
const WORD_BITS: u64 = 64;

/// Indexes are taken from the hash with its sign bit cleared, because the Go
/// reference computes them on `int64` and must stay non-negative.
const INDEX_MASK: u64 = 0x7fff_ffff_ffff_ffff;

/// Upper bound on `k` we accept. Real filters use k ≈ 7–20; a hostile or
/// corrupt `k` near `u64::MAX` would otherwise turn a lookup into an
/// effectively endless loop.
pub const MAX_HASHES: u64 = 256;

/// Why a bloom filter cannot be built or used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BloomError {
    /// `k == 0`: the real validators would report every token as revoked.
    #[error("bloom filter needs at least one hash function (k is 0)")]
    NoHashes,
    /// `k` above [`MAX_HASHES`].
    #[error("bloom filter uses {k} hash functions, more than the limit of {MAX_HASHES}")]
    TooManyHashes { k: u64 },
    /// `m == 0`: there is no bit to index into.
    #[error("bloom filter needs at least one bit (m is 0)")]
    NoBits,
    /// `m` claims more bits than `bits` carries.
    #[error("bloom filter declares {m} bits but carries only {available}")]
    TooFewBits { m: u64, available: u64 },
    /// `m` cannot be represented in memory on this machine.
    #[error("bloom filter size of {m} bits is too large")]
    TooLarge { m: u64 },
}

/// A MURMUR128MITZ64 bloom filter, serialised exactly as AccelByte's wire
/// JSON (field order `m`, `k`, `bits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BloomFilter {
    /// Number of addressable bits; a multiple of 64 equal to `64 * bits.len()`
    /// in filters built here.
    pub m: u64,
    /// Number of hash functions (indexes per token).
    pub k: u64,
    /// The bit set, 64 bits per word, little-endian within each word.
    pub bits: Vec<u64>,
}

/// MurmurHash3 x64 128-bit of `token` with seed 0, as `(h1, h2)`.
///
/// `h1` is the first 64-bit half the algorithm produces (Go's
/// `murmur3.Sum128` first result, Python's `mmh3.hash64(..)[0]`); the
/// `murmur3` crate packs it into the *low* 64 bits of its `u128`.
pub fn hash(token: &str) -> (u64, u64) {
    // Reading from an in-memory slice cannot fail, so the fallback is never
    // taken; it exists only so this path has no panic in it.
    let packed = murmur3::murmur3_x64_128(&mut token.as_bytes(), 0).unwrap_or_default();
    let h1 = packed as u64; // low half (truncation intended)
    let h2 = (packed >> 64) as u64;
    (h1, h2)
}

impl BloomFilter {
    /// An empty filter of at least `m_bits` bits (rounded up to a multiple of
    /// 64, as the Go reference pads it) using `k` hash functions.
    pub fn new(m_bits: u64, k: u64) -> Result<Self, BloomError> {
        check_hashes(k)?;
        if m_bits == 0 {
            return Err(BloomError::NoBits);
        }
        let words = m_bits.div_ceil(WORD_BITS);
        let m = words
            .checked_mul(WORD_BITS)
            .ok_or(BloomError::TooLarge { m: m_bits })?;
        let words = usize::try_from(words).map_err(|_| BloomError::TooLarge { m: m_bits })?;
        Ok(Self {
            m,
            k,
            bits: vec![0; words],
        })
    }

    /// An empty filter sized for `expected_items` tokens at roughly
    /// `false_positive_rate`, using the same formulas as AccelByte/bloom's
    /// `EstimateParameters` (`m = -n ln p / ln²2`, `k = round(m / n · ln 2)`),
    /// with at least 64 bits and one hash function.
    ///
    /// A rate outside `[1e-12, 0.5]` (or NaN) is clamped into that range: the
    /// formulas degenerate outside it and this is configuration, not input.
    pub fn with_capacity(expected_items: usize, false_positive_rate: f64) -> Self {
        let (m, k) = estimate_parameters(expected_items, false_positive_rate);
        let m = m.div_ceil(WORD_BITS).max(1) * WORD_BITS;
        let words = usize::try_from(m / WORD_BITS).unwrap_or(usize::MAX);
        Self {
            m,
            k,
            bits: vec![0; words],
        }
    }

    /// Checks that the filter can be used safely: `1 <= k <= MAX_HASHES`,
    /// `m > 0` and `m <= 64 * bits.len()`.
    ///
    /// Note that the Go validator ignores the wire `m` and uses
    /// `64 * bits.len()`, while the Python one uses the wire `m`; they agree
    /// only when the two are equal, which every filter built here ensures.
    pub fn validate(&self) -> Result<(), BloomError> {
        check_hashes(self.k)?;
        if self.m == 0 {
            return Err(BloomError::NoBits);
        }
        let available = (self.bits.len() as u64).saturating_mul(WORD_BITS);
        if self.m > available {
            return Err(BloomError::TooFewBits {
                m: self.m,
                available,
            });
        }
        Ok(())
    }

    /// The `k` bit indexes for `token`, each below `m`.
    ///
    /// Yields nothing when `m == 0` (there is nothing to index); callers that
    /// read bits should [`validate`](Self::validate) first.
    pub fn indexes(&self, token: &str) -> impl Iterator<Item = u64> + use<> {
        let (h1, h2) = hash(token);
        let m = self.m;
        let count = if m == 0 { 0 } else { self.k };
        (0..count).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) & INDEX_MASK) % m)
    }

    /// Adds `token`. Does nothing on a filter that fails
    /// [`validate`](Self::validate), since its indexes may not exist.
    pub fn insert(&mut self, token: &str) {
        if self.validate().is_err() {
            return;
        }
        for idx in self.indexes(token) {
            if let Some((word, mask)) = self.locate(idx) {
                self.bits[word] |= mask;
            }
        }
    }

    /// Whether `token` may have been inserted (false positives possible,
    /// false negatives not). An invalid filter answers `false` for every
    /// token, so a corrupt revocation list never locks everyone out.
    pub fn might_contain(&self, token: &str) -> bool {
        if self.validate().is_err() {
            return false;
        }
        self.indexes(token).all(|idx| self.is_set(idx))
    }

    /// Whether bit `idx` is set; out-of-range bits read as unset.
    fn is_set(&self, idx: u64) -> bool {
        self.locate(idx)
            .is_some_and(|(word, mask)| self.bits[word] & mask != 0)
    }

    /// The word position and in-word mask of bit `idx`, if it exists.
    fn locate(&self, idx: u64) -> Option<(usize, u64)> {
        let word = usize::try_from(idx / WORD_BITS).ok()?;
        if word >= self.bits.len() {
            return None;
        }
        Some((word, 1u64 << (idx % WORD_BITS)))
    }
}

/// Rejects hash counts the validators cannot use safely.
fn check_hashes(k: u64) -> Result<(), BloomError> {
    match k {
        0 => Err(BloomError::NoHashes),
        k if k > MAX_HASHES => Err(BloomError::TooManyHashes { k }),
        _ => Ok(()),
    }
}

/// Unpadded `(m, k)` for `n` items at false positive rate `p`, mirroring
/// AccelByte/bloom's `EstimateParameters` (which floors `m` before padding
/// and derives `k` from the unpadded `m`).
fn estimate_parameters(n: usize, p: f64) -> (u64, u64) {
    let p = if p.is_nan() { 0.5 } else { p.clamp(1e-12, 0.5) };
    let n = n.max(1) as f64;
    let ln2 = std::f64::consts::LN_2;
    // Float-to-int `as` casts saturate, which is the behaviour we want here.
    let m = (-n * p.ln() / (ln2 * ln2)).floor() as u64;
    let k = ((m as f64 / n * ln2) + 0.5)
        .floor()
        .clamp(1.0, MAX_HASHES as f64) as u64;
    (m, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC_H1: u64 = 0xb496_3f3f_3fad_7867;
    const ABC_H2: u64 = 0x3ba2_7441_26ca_2d52;
    const ABC_BITS: [u64; 4] = [2048, 549_755_813_888, 144_115_188_075_855_872, 0];
    const ABC_JSON: &str = r#"{"m":256,"k":3,"bits":[2048,549755813888,144115188075855872,0]}"#;

    fn abc_filter() -> BloomFilter {
        let mut filter = BloomFilter::new(256, 3).expect("valid parameters");
        filter.insert("abc");
        filter
    }

    #[test]
    fn hash_matches_reference_vector() {
        assert_eq!(hash("abc"), (ABC_H1, ABC_H2));
    }

    #[test]
    fn hash_of_empty_string_is_zero() {
        // MurmurHash3 of no bytes with seed 0 is all zeroes in every implementation.
        assert_eq!(hash(""), (0, 0));
    }

    #[test]
    fn indexes_match_reference_vector() {
        let filter = BloomFilter::new(256, 3).expect("valid parameters");
        assert_eq!(
            filter.indexes("abc").collect::<Vec<_>>(),
            vec![103, 185, 11]
        );
    }

    #[test]
    fn insert_sets_reference_bits() {
        assert_eq!(abc_filter().bits, ABC_BITS);
    }

    #[test]
    fn insert_then_might_contain() {
        let mut filter = BloomFilter::new(1024, 5).expect("valid parameters");
        let tokens = ["alpha", "beta", "gamma", "eyJhbGciOiJSUzI1NiJ9.x.y"];
        for token in tokens {
            assert!(!filter.might_contain(token), "{token} before insert");
            filter.insert(token);
        }
        for token in tokens {
            assert!(filter.might_contain(token), "{token} after insert");
        }
        assert!(!filter.might_contain("delta"));
    }

    #[test]
    fn serialises_to_exact_wire_json() {
        let filter = abc_filter();
        assert_eq!(serde_json::to_string(&filter).expect("serialise"), ABC_JSON);
        let back: BloomFilter = serde_json::from_str(ABC_JSON).expect("deserialise");
        assert_eq!(back, filter);
        assert!(back.might_contain("abc"));
    }

    #[test]
    fn new_rounds_m_up_to_whole_words() {
        let filter = BloomFilter::new(65, 2).expect("valid parameters");
        assert_eq!((filter.m, filter.bits.len()), (128, 2));
        let exact = BloomFilter::new(64, 2).expect("valid parameters");
        assert_eq!((exact.m, exact.bits.len()), (64, 1));
    }

    #[test]
    fn new_rejects_degenerate_parameters() {
        assert_eq!(BloomFilter::new(64, 0), Err(BloomError::NoHashes));
        assert_eq!(BloomFilter::new(0, 3), Err(BloomError::NoBits));
        assert_eq!(
            BloomFilter::new(64, MAX_HASHES + 1),
            Err(BloomError::TooManyHashes { k: MAX_HASHES + 1 })
        );
        assert_eq!(
            BloomFilter::new(u64::MAX, 3),
            Err(BloomError::TooLarge { m: u64::MAX })
        );
    }

    #[test]
    fn validate_accepts_built_filters() {
        assert_eq!(abc_filter().validate(), Ok(()));
        assert_eq!(BloomFilter::with_capacity(100, 0.01).validate(), Ok(()));
    }

    #[test]
    fn zero_k_is_invalid_and_contains_nothing() {
        let filter: BloomFilter =
            serde_json::from_str(r#"{"m":64,"k":0,"bits":[18446744073709551615]}"#)
                .expect("deserialise");
        assert_eq!(filter.validate(), Err(BloomError::NoHashes));
        assert!(!filter.might_contain("abc"));
    }

    #[test]
    fn short_bits_are_invalid_and_do_not_panic() {
        let mut filter = BloomFilter {
            m: 256,
            k: 3,
            bits: vec![u64::MAX],
        };
        assert_eq!(
            filter.validate(),
            Err(BloomError::TooFewBits {
                m: 256,
                available: 64
            })
        );
        assert!(!filter.might_contain("abc"));
        filter.insert("abc");
        assert_eq!(filter.bits, vec![u64::MAX]);
    }

    #[test]
    fn zero_m_and_empty_bits_do_not_panic() {
        let mut filter = BloomFilter {
            m: 0,
            k: 3,
            bits: Vec::new(),
        };
        assert_eq!(filter.validate(), Err(BloomError::NoBits));
        assert_eq!(filter.indexes("abc").count(), 0);
        filter.insert("abc");
        assert!(!filter.might_contain("abc"));
    }

    #[test]
    fn huge_k_is_rejected_without_looping() {
        let filter = BloomFilter {
            m: 64,
            k: u64::MAX,
            bits: vec![u64::MAX],
        };
        assert_eq!(
            filter.validate(),
            Err(BloomError::TooManyHashes { k: u64::MAX })
        );
        assert!(!filter.might_contain("abc"));
    }

    #[test]
    fn smaller_m_than_bits_is_accepted() {
        // Python's validator honours the wire `m`; extra words are just unused.
        let mut filter = BloomFilter {
            m: 100,
            k: 3,
            bits: vec![0; 4],
        };
        assert_eq!(filter.validate(), Ok(()));
        filter.insert("abc");
        assert!(filter.indexes("abc").all(|idx| idx < 100));
        assert!(filter.might_contain("abc"));
    }

    #[test]
    fn with_capacity_matches_reference_parameters() {
        // m = floor(-10000 ln 0.01 / ln²2) = 95850, padded to 95872; k = round(6.64) = 7.
        let filter = BloomFilter::with_capacity(10_000, 0.01);
        assert_eq!((filter.m, filter.k, filter.bits.len()), (95_872, 7, 1_498));
    }

    #[test]
    fn with_capacity_has_sane_minimums() {
        let tiny = BloomFilter::with_capacity(0, 0.5);
        assert_eq!((tiny.m, tiny.k), (64, 1));
        let nan = BloomFilter::with_capacity(10, f64::NAN);
        assert_eq!(nan.validate(), Ok(()));
        let zero_rate = BloomFilter::with_capacity(10, 0.0);
        assert_eq!(zero_rate.validate(), Ok(()));
    }

    #[test]
    fn with_capacity_false_positive_rate_is_near_target() {
        const ITEMS: usize = 10_000;
        const TARGET: f64 = 0.01;
        let mut filter = BloomFilter::with_capacity(ITEMS, TARGET);
        for i in 0..ITEMS {
            filter.insert(&format!("revoked-token-{i:05}-{}", i * 7919));
        }
        for i in 0..ITEMS {
            let token = format!("revoked-token-{i:05}-{}", i * 7919);
            assert!(filter.might_contain(&token), "false negative for {token}");
        }
        let false_positives = (0..ITEMS)
            .filter(|i| filter.might_contain(&format!("live-token-{i:05}-{}", i * 104_729)))
            .count();
        let rate = false_positives as f64 / ITEMS as f64;
        assert!(
            (TARGET / 2.0..=TARGET * 2.0).contains(&rate),
            "false positive rate {rate} too far from {TARGET}"
        );
    }
}
