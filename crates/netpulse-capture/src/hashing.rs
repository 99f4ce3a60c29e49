//! Hashing for the flow, host and address tables, and distinct counts in fixed memory.
//!
//! Live traffic chooses the keys of these tables (any sender picks its addresses and ports), so
//! a live capture hashes with SipHash keyed at random ([`std::hash::RandomState`]): foldhash is
//! "minimally DoS-resistant" by its own account and not meant for a long-running program whose
//! behaviour an attacker can study. A file is not an adversary in the same way (and is read
//! hundreds of times faster than it was captured), so files keep foldhash, with a fixed seed: the
//! same file gives the same report, estimates included, every run. Figures (bench/
//! capture_bench.sh, this machine): see docs/benchmarks.md, "capture: keyed hashing".

use cardinality_estimator::CardinalityEstimator;
use std::hash::{BuildHasher, Hash, Hasher};

/// The file hasher's seed.
const FILE_SEED: u64 = 0x6e65_7470_756c_7365;

/// The tables' hasher: fast for files, keyed for live traffic.
#[derive(Clone)]
pub enum TableHasher {
    /// foldhash with a fixed seed (fast; a file's hashes are the same every run).
    Fast(foldhash::fast::FixedState),
    /// SipHash-1-3 with a random key (HashDoS-resistant).
    Keyed(std::hash::RandomState),
}

impl TableHasher {
    /// The hasher for live traffic (`keyed`) or for a file.
    pub fn new(keyed: bool) -> Self {
        if keyed {
            TableHasher::Keyed(std::hash::RandomState::new())
        } else {
            // Fixed: the same file gives the same report (estimates included) every run.
            TableHasher::seeded(FILE_SEED)
        }
    }

    /// The file hasher with a chosen seed: the same hashes every run (estimates that cannot
    /// flake in tests; shards of one capture hashing alike).
    pub fn seeded(seed: u64) -> Self {
        TableHasher::Fast(foldhash::fast::FixedState::with_seed(seed))
    }
}

impl Default for TableHasher {
    fn default() -> Self {
        TableHasher::new(false)
    }
}

/// One hash computation of a [`TableHasher`].
pub enum TableHash {
    /// foldhash.
    Fast(foldhash::fast::FoldHasher<'static>),
    /// SipHash.
    Keyed(std::hash::DefaultHasher),
}

impl Hasher for TableHash {
    #[inline]
    fn finish(&self) -> u64 {
        match self {
            TableHash::Fast(h) => h.finish(),
            TableHash::Keyed(h) => h.finish(),
        }
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        match self {
            TableHash::Fast(h) => h.write(bytes),
            TableHash::Keyed(h) => h.write(bytes),
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        match self {
            TableHash::Fast(h) => h.write_u8(i),
            TableHash::Keyed(h) => h.write_u8(i),
        }
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        match self {
            TableHash::Fast(h) => h.write_u16(i),
            TableHash::Keyed(h) => h.write_u16(i),
        }
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        match self {
            TableHash::Fast(h) => h.write_u32(i),
            TableHash::Keyed(h) => h.write_u32(i),
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        match self {
            TableHash::Fast(h) => h.write_u64(i),
            TableHash::Keyed(h) => h.write_u64(i),
        }
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        match self {
            TableHash::Fast(h) => h.write_u128(i),
            TableHash::Keyed(h) => h.write_u128(i),
        }
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        match self {
            TableHash::Fast(h) => h.write_usize(i),
            TableHash::Keyed(h) => h.write_usize(i),
        }
    }
}

impl BuildHasher for TableHasher {
    type Hasher = TableHash;
    #[inline]
    fn build_hasher(&self) -> TableHash {
        match self {
            TableHasher::Fast(s) => TableHash::Fast(s.build_hasher()),
            TableHasher::Keyed(s) => TableHash::Keyed(s.build_hasher()),
        }
    }
}

/// A hash map on a [`TableHasher`].
pub type TableMap<K, V> = std::collections::HashMap<K, V, TableHasher>;

/// Distinct values seen, in bounded memory: exact up to [`Distinct::EXACT_MAX`] (as the set of
/// their 64-bit keyed hashes), then a HyperLogLog estimate (2^14 registers, ~12 KB, standard
/// error ~0.8 %), so a capture that runs for months, or a flood of random addresses, costs the
/// same few hundred kilobytes at most.
#[derive(Clone)]
pub struct Distinct {
    exact: Option<foldhash::HashSet<u64>>,
    // Only `insert_hash` is used: the hasher parameter is never run.
    estimate: Option<Box<CardinalityEstimator<u64, std::hash::DefaultHasher, 14, 6>>>,
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct {
            exact: Some(foldhash::HashSet::default()),
            estimate: None,
        }
    }
}

impl Distinct {
    /// Exact counting stops beyond this many distinct values.
    pub const EXACT_MAX: usize = 1 << 16;

    /// Counts a value hashed with the table's hasher.
    #[inline]
    pub fn insert_hash(&mut self, hash: u64) {
        // HyperLogLog reads the top bits as a register and the rest's leading zeros: the fast
        // hasher's output on near-sequential addresses is not spread well enough for that
        // (estimates 40 % low), so every hash goes through a full avalanche first (murmur3's
        // finalizer, a bijection: exact counting is unaffected).
        self.insert_mixed(fmix64(hash));
    }

    /// Counts a hash already through [`fmix64`] (what the exact set holds).
    fn insert_mixed(&mut self, hash: u64) {
        match (&mut self.exact, &mut self.estimate) {
            (Some(set), _) => {
                if set.insert(hash) && set.len() > Self::EXACT_MAX {
                    let mut est = Box::new(CardinalityEstimator::new());
                    for h in set.drain() {
                        est.insert_hash(h);
                    }
                    self.exact = None;
                    self.estimate = Some(est);
                }
            }
            (None, Some(est)) => est.insert_hash(hash),
            (None, None) => {}
        }
    }

    /// Adds everything `other` counted (both hashed with one hasher): the distinct values of
    /// both, exact while the union stays within [`Distinct::EXACT_MAX`].
    pub fn merge(&mut self, other: &Distinct) {
        match (&other.exact, &other.estimate) {
            (Some(set), _) => {
                for &h in set {
                    self.insert_mixed(h);
                }
            }
            (None, Some(theirs)) => {
                if let Some(set) = self.exact.take() {
                    let mut est = Box::new(CardinalityEstimator::new());
                    for h in set {
                        est.insert_hash(h);
                    }
                    self.estimate = Some(est);
                }
                if let Some(ours) = &mut self.estimate {
                    ours.merge(theirs);
                }
            }
            (None, None) => {}
        }
    }

    /// Counts `value`, hashed with `hasher`.
    #[inline]
    pub fn insert<T: Hash>(&mut self, hasher: &TableHasher, value: &T) {
        self.insert_hash(hasher.hash_one(value));
    }

    /// How many distinct values (exact while [`Distinct::is_exact`]).
    pub fn len(&self) -> usize {
        match (&self.exact, &self.estimate) {
            (Some(set), _) => set.len(),
            (None, Some(est)) => est.estimate(),
            (None, None) => 0,
        }
    }

    /// Nothing counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`Distinct::len`] is exact (else an estimate within ~2 %).
    pub fn is_exact(&self) -> bool {
        self.exact.is_some()
    }

    /// Forgets everything (keeps the exact set's memory for reuse).
    pub fn clear(&mut self) {
        match &mut self.exact {
            Some(set) => set.clear(),
            None => *self = Distinct::default(),
        }
    }
}

/// MurmurHash3's 64-bit finalizer.
#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_while_small_then_an_estimate_within_two_percent_in_fixed_memory() {
        // Keyed hashes are random per run: the estimate is checked on fixed ones, so the
        // test cannot flake (its error bound is 2.5 standard errors).
        for keyed in [false, true] {
            let h = if keyed {
                TableHasher::new(true)
            } else {
                TableHasher::seeded(1)
            };
            let mut d = Distinct::default();
            for i in 0..50_000u32 {
                let ip = std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
                d.insert(&h, &ip);
                d.insert(&h, &ip);
            }
            assert!(d.is_exact());
            assert_eq!(d.len(), 50_000);
            // Sequential addresses, the hardest input for a fast hasher.
            for i in 0..1_000_000u32 {
                let ip = std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
                d.insert(&h, &ip);
            }
            assert!(!d.is_exact());
            let n = d.len() as f64;
            assert!(keyed || (n / 1e6 - 1.0).abs() < 0.02, "{n}");
            d.clear();
            assert!(d.is_empty() && d.is_exact());
        }
    }

    #[test]
    fn a_merge_counts_the_union_exact_then_estimated() {
        let h = TableHasher::seeded(2);
        let ip = |i: u32| std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        let (mut a, mut b) = (Distinct::default(), Distinct::default());
        for i in 0..30_000 {
            a.insert(&h, &ip(i));
        }
        for i in 20_000..50_000 {
            b.insert(&h, &ip(i));
        }
        let mut union = a.clone();
        union.merge(&b);
        assert!(union.is_exact());
        assert_eq!(union.len(), 50_000);
        // Past the exact bound on either side, or in the union: an estimate of the union.
        let mut big = Distinct::default();
        for i in 40_000..200_000 {
            big.insert(&h, &ip(i));
        }
        for (mut x, y) in [(union.clone(), &big), (big.clone(), &union)] {
            x.merge(y);
            assert!(!x.is_exact());
            let n = x.len() as f64;
            assert!((n / 200_000.0 - 1.0).abs() < 0.03, "{n}");
        }
        let mut c = Distinct::default();
        for i in 0..70_000 {
            c.insert(&h, &ip(i));
        }
        let mut d = Distinct::default();
        d.merge(&c);
        assert_eq!(d.is_exact(), c.is_exact());
    }

    #[test]
    fn both_hashers_give_working_maps() {
        for keyed in [false, true] {
            let mut m: TableMap<u32, u32> = TableMap::with_hasher(TableHasher::new(keyed));
            for i in 0..1000 {
                m.insert(i, i * 2);
            }
            assert_eq!(m.get(&77), Some(&154));
            assert_eq!(m.len(), 1000);
        }
    }
}
