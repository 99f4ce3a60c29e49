//! A latency histogram with bounded *relative* error, sparse and exactly mergeable: every value is
//! counted in the logarithmic bucket `ceil(log_γ v)` with γ = (1+ε)/(1−ε), ε = 1 %, and a bucket is
//! reported as `2γ^i/(γ+1)`, within 1 % of every value in it (the DDSketch construction). Only
//! buckets that hold values take memory, so a per-second rollup of a steady link is a few bytes,
//! and the worst case (1 ns to 1 h, every bucket) is bounded at ~1 100 buckets.

/// Relative accuracy of every quantile.
pub const RELATIVE_ERROR: f64 = 0.01;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
}

/// Sparse log-bucketed histogram of nanosecond values.
#[derive(Debug, Clone, Default)]
pub struct LatencySketch {
    /// The non-empty buckets, sorted by index. Index 0 holds zeros.
    buckets: Buckets,
    count: u64,
}

/// The buckets, packed so that the packed values sort by index: 4 bytes a bucket while every
/// count fits in 20 bits (a minute, a window, a run of up to 12 days at 1 s), 8 bytes beyond.
/// Sketches are kept per target in several places (the run, the open minute, a p95 window).
#[derive(Debug, Clone)]
enum Buckets {
    /// `index << 20 | count`.
    Narrow(Vec<u32>),
    /// `index << 48 | count`.
    Wide(Vec<u64>),
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets::Narrow(Vec::new())
    }
}

impl PartialEq for LatencySketch {
    /// Same values counted, whichever form holds them.
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count && self.pairs().eq(other.pairs())
    }
}

impl Eq for LatencySketch {}

/// Why a serialized sketch could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt latency histogram blob: {0}")]
pub struct SketchDecodeError(&'static str);

/// The most one bucket counts (2^48 − 1: a million values a second for eight years); beyond,
/// it saturates.
pub const MAX_BUCKET_COUNT: u64 = (1 << 48) - 1;

fn pack(index: i16, count: u64) -> u64 {
    (u64::from(index.max(0) as u16) << 48) | count.min(MAX_BUCKET_COUNT)
}

fn unpack(b: u64) -> (i16, u64) {
    ((b >> 48) as i16, b & MAX_BUCKET_COUNT)
}

/// The most a narrow bucket counts.
const NARROW_MAX_COUNT: u64 = (1 << 20) - 1;
/// The highest index a narrow bucket holds (every index a u64 of ns has is below 2 300).
const NARROW_MAX_INDEX: i16 = (1 << 12) - 1;

/// `(index, count)` packed narrow, if it fits.
fn pack_narrow(index: i16, count: u64) -> Option<u32> {
    let index = index.max(0);
    (index <= NARROW_MAX_INDEX && count <= NARROW_MAX_COUNT)
        .then_some((index as u32) << 20 | count as u32)
}

fn unpack_narrow(b: u32) -> (i16, u64) {
    ((b >> 20) as i16, u64::from(b) & NARROW_MAX_COUNT)
}

/// A sorted buffer of packed buckets, narrow or wide: the operations both forms share.
trait Packed: Copy {
    fn unpack(self) -> (i16, u64);
    fn pack(index: i16, count: u64) -> Option<Self>;
}

impl Packed for u32 {
    fn unpack(self) -> (i16, u64) {
        unpack_narrow(self)
    }
    fn pack(index: i16, count: u64) -> Option<Self> {
        pack_narrow(index, count)
    }
}

impl Packed for u64 {
    fn unpack(self) -> (i16, u64) {
        unpack(self)
    }
    fn pack(index: i16, count: u64) -> Option<Self> {
        Some(pack(index, count))
    }
}

/// Adds `n` to bucket `index` of `v`; false (and `v` unchanged) when the result does not fit
/// this form.
fn add_packed<T: Packed>(v: &mut Vec<T>, index: i16, n: u64) -> bool {
    match v.binary_search_by_key(&index, |b| b.unpack().0) {
        Ok(pos) => {
            let c = v[pos].unpack().1.saturating_add(n);
            match T::pack(index, c) {
                Some(b) => {
                    v[pos] = b;
                    true
                }
                None => false,
            }
        }
        Err(pos) => {
            let Some(b) = T::pack(index, n) else {
                return false;
            };
            // Grow by an eighth, not double: sketches are kept per target in several places
            // and new buckets are rare once the latencies are known (doubling left a third
            // of every sketch empty on average).
            if v.len() == v.capacity() {
                v.reserve_exact((v.len() / 8).max(1));
            }
            v.insert(pos, b);
            true
        }
    }
}

/// Takes one value out of bucket `index` of `v`; false when it holds none.
fn remove_packed<T: Packed>(v: &mut Vec<T>, index: i16) -> bool {
    let Ok(pos) = v.binary_search_by_key(&index, |b| b.unpack().0) else {
        return false;
    };
    let c = v[pos].unpack().1;
    match T::pack(index, c - 1) {
        Some(b) if c > 1 => v[pos] = b,
        _ => {
            v.remove(pos);
        }
    }
    true
}

/// The buckets of `a` and `b` together, in index order (the counts of an index both hold
/// added).
fn union<'a>(a: &'a LatencySketch, b: &'a LatencySketch) -> impl Iterator<Item = (i16, u64)> + 'a {
    let (mut a, mut b) = (a.pairs().peekable(), b.pairs().peekable());
    std::iter::from_fn(move || match (a.peek().copied(), b.peek().copied()) {
        (Some((ia, ca)), Some((ib, cb))) => {
            if ia == ib {
                a.next();
                b.next();
                Some((ia, ca.saturating_add(cb)))
            } else if ia < ib {
                a.next()
            } else {
                b.next()
            }
        }
        (Some(_), None) => a.next(),
        (None, _) => b.next(),
    })
}

impl LatencySketch {
    /// (bucket index, count) of every non-empty bucket, by index.
    fn pairs(&self) -> impl DoubleEndedIterator<Item = (i16, u64)> + '_ {
        let (narrow, wide): (&[u32], &[u64]) = match &self.buckets {
            Buckets::Narrow(v) => (v, &[]),
            Buckets::Wide(v) => (&[], v),
        };
        narrow
            .iter()
            .map(|&b| unpack_narrow(b))
            .chain(wide.iter().map(|&b| unpack(b)))
    }

    /// Non-empty buckets.
    fn len(&self) -> usize {
        match &self.buckets {
            Buckets::Narrow(v) => v.len(),
            Buckets::Wide(v) => v.len(),
        }
    }

    /// Buckets held, including spare room (tests of the growth policy).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        match &self.buckets {
            Buckets::Narrow(v) => v.capacity(),
            Buckets::Wide(v) => v.capacity(),
        }
    }

    /// The `len` buckets `pairs()` walks, narrow when every one fits.
    fn from_pairs<I: Iterator<Item = (i16, u64)>>(pairs: impl Fn() -> I, len: usize) -> Buckets {
        if pairs().all(|(i, c)| pack_narrow(i, c).is_some()) {
            let mut v = Vec::with_capacity(len);
            v.extend(pairs().filter_map(|(i, c)| pack_narrow(i, c)));
            Buckets::Narrow(v)
        } else {
            let mut v = Vec::with_capacity(len);
            v.extend(pairs().map(|(i, c)| pack(i, c)));
            Buckets::Wide(v)
        }
    }
    fn index(ns: u64) -> i16 {
        if ns == 0 {
            return 0;
        }
        // ns ≥ 1 → log ≥ 0 → index ≥ 1 after ceil (index 0 is reserved for exact zeros).
        let i = ((ns as f64).ln() / gamma().ln()).ceil().max(1.0);
        i.min(f64::from(i16::MAX)) as i16
    }

    fn value(index: i16) -> u64 {
        if index <= 0 {
            return 0;
        }
        let g = gamma();
        (2.0 * g.powi(i32::from(index)) / (g + 1.0)).round() as u64
    }

    /// The counts re-binned into at most `bins` equal-width bins between the smallest and
    /// largest value held: (bin start ns, bin end ns, count), for drawing a histogram. Never
    /// narrower than the sketch's own buckets at the top of the range: a narrower bin would
    /// get no value of its own, and every other bar would be empty.
    pub fn linear_bins(&self, bins: usize) -> Vec<(f64, f64, u64)> {
        let (Some((lo, _)), Some((hi, _))) = (self.pairs().next(), self.pairs().next_back()) else {
            return Vec::new();
        };
        let (lo, hi) = (Self::value(lo) as f64, Self::value(hi) as f64);
        let bucket_at_hi = hi * (gamma() - 1.0);
        let fit = ((hi - lo) / bucket_at_hi.max(1.0)).floor().max(1.0) as usize;
        let bins = bins.clamp(1, fit);
        let width = ((hi - lo) / bins as f64).max(1.0);
        let mut out: Vec<(f64, f64, u64)> = (0..bins)
            .map(|b| (lo + b as f64 * width, lo + (b + 1) as f64 * width, 0))
            .collect();
        for (i, n) in self.pairs() {
            let at = ((Self::value(i) as f64 - lo) / width) as usize;
            if let Some(bin) = out.get_mut(at.min(bins - 1)) {
                bin.2 += n;
            }
        }
        out
    }

    /// Counts one value (nanoseconds).
    pub fn record(&mut self, ns: u64) {
        self.add(Self::index(ns), 1);
    }

    fn add(&mut self, index: i16, n: u64) {
        self.count += n;
        if let Buckets::Narrow(v) = &mut self.buckets {
            if add_packed(v, index, n) {
                return;
            }
            // A count past 20 bits: every bucket goes wide, once.
            let wide = v.iter().map(|&b| {
                let (i, c) = unpack_narrow(b);
                pack(i, c)
            });
            self.buckets = Buckets::Wide(wide.collect());
        }
        if let Buckets::Wide(v) = &mut self.buckets {
            add_packed(v, index, n);
        }
    }

    /// The bucket a value (ns) is counted in, for callers that keep samples as bucket indices.
    pub fn bucket_of(ns: u64) -> i16 {
        Self::index(ns)
    }

    /// Counts one value already turned into its bucket by [`LatencySketch::bucket_of`].
    pub fn record_bucket(&mut self, index: i16) {
        self.add(index, 1);
    }

    /// Takes back one value counted in bucket `index` (sliding windows); a bucket that does not
    /// hold a value is left alone.
    pub fn remove_bucket(&mut self, index: i16) {
        let removed = match &mut self.buckets {
            Buckets::Narrow(v) => remove_packed(v, index),
            Buckets::Wide(v) => remove_packed(v, index),
        };
        if removed {
            self.count -= 1;
        }
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds all of `other`'s values.
    pub fn merge(&mut self, other: &LatencySketch) {
        if other.len() == 0 {
            return;
        }
        // Exactly the union's size (one walk counts it): the worst case reserved and shrunk
        // afterwards cost a second allocation per merge, for every target at once when minutes
        // close.
        let len = union(self, other).count();
        let merged = Self::from_pairs(|| union(self, other), len);
        self.buckets = merged;
        self.count += other.count;
    }

    /// The value at quantile `q` (0..=1) within 1 %: the sample of rank ⌈q·n⌉ (at least 1).
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, c) in self.pairs() {
            seen += c;
            if seen >= rank {
                return Some(Self::value(i));
            }
        }
        self.pairs().next_back().map(|(i, _)| Self::value(i))
    }

    /// Compact bytes for storage: LEB128 varints of (index delta, count) pairs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * 3 + 1);
        put_varint(&mut out, self.len() as u64);
        let mut prev: i32 = 0;
        for (i, c) in self.pairs() {
            put_varint(&mut out, (i32::from(i) - prev) as u64);
            put_varint(&mut out, c);
            prev = i32::from(i);
        }
        out
    }

    /// Reads [`LatencySketch::to_bytes`]' output; never panics on bad input.
    pub fn from_bytes(mut b: &[u8]) -> Result<Self, SketchDecodeError> {
        let n = get_varint(&mut b)?;
        if n > 4096 {
            return Err(SketchDecodeError("too many buckets"));
        }
        let mut pairs = Vec::with_capacity(n as usize);
        let mut count = 0u64;
        let mut prev: i64 = 0;
        for k in 0..n {
            // A delta past i64 would wrap to a step back: out of order, as a zero step is.
            let delta = i64::try_from(get_varint(&mut b)?)
                .map_err(|_| SketchDecodeError("buckets out of order"))?;
            if k > 0 && delta == 0 {
                return Err(SketchDecodeError("buckets out of order"));
            }
            let index = prev + delta;
            let index = i16::try_from(index).map_err(|_| SketchDecodeError("bucket index"))?;
            let c = get_varint(&mut b)?;
            if c > MAX_BUCKET_COUNT {
                return Err(SketchDecodeError("bucket count too large"));
            }
            pairs.push((index, c));
            count = count
                .checked_add(c)
                .ok_or(SketchDecodeError("count overflow"))?;
            prev = i64::from(index);
        }
        if !b.is_empty() {
            return Err(SketchDecodeError("trailing bytes"));
        }
        Ok(LatencySketch {
            buckets: Self::from_pairs(|| pairs.iter().copied(), pairs.len()),
            count,
        })
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn get_varint(b: &mut &[u8]) -> Result<u64, SketchDecodeError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first().ok_or(SketchDecodeError("truncated"))?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(SketchDecodeError("varint too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sketches_keep_little_spare_room() {
        // An hour merging sixty minutes of steady latencies: exactly its buckets, not the
        // worst case the merge reserved.
        let mut hour = LatencySketch::default();
        for m in 0..60u64 {
            let mut minute = LatencySketch::default();
            for i in 0..60u64 {
                minute.record(1_000_000 + (m * 60 + i) % 400 * 1_000);
            }
            hour.merge(&minute);
        }
        assert_eq!(hour.capacity(), hour.len());
        // Recording grows by an eighth at a time.
        let mut s = LatencySketch::default();
        for i in 0..2_000u64 {
            s.record(1_000 + i * 997);
        }
        assert!(
            s.capacity() <= s.len() + s.len() / 8 + 1,
            "{} buckets in room for {}",
            s.len(),
            s.capacity()
        );
    }

    #[test]
    fn bucket_values_are_within_one_percent() {
        for ns in [
            1u64,
            2,
            7,
            999,
            1_000,
            45_000,
            40_000_000,
            3_600_000_000_000,
        ] {
            let v = LatencySketch::value(LatencySketch::index(ns)) as f64;
            assert!(
                (v - ns as f64).abs() <= RELATIVE_ERROR * ns as f64 + 0.5,
                "{ns} -> {v}"
            );
        }
        let mut s = LatencySketch::default();
        s.record(0);
        assert_eq!(s.quantile(0.5), Some(0));
    }

    #[test]
    fn packed_buckets_keep_index_order_and_saturate() {
        let mut s = LatencySketch::default();
        for ns in [5_000_000u64, 0, 1, 40_000, 5_000_000] {
            s.record(ns);
        }
        let pairs: Vec<(i16, u64)> = s.pairs().collect();
        assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0), "{pairs:?}");
        assert_eq!(pairs.first(), Some(&(0, 1)));
        assert_eq!(pairs.last().map(|p| p.1), Some(2));
        s.add(7, MAX_BUCKET_COUNT);
        let c = s.pairs().find(|p| p.0 == 7).map(|p| p.1);
        assert_eq!(
            c,
            Some(MAX_BUCKET_COUNT),
            "a full bucket saturates, never wraps"
        );
        // A stored blob with a count beyond what a bucket holds is refused, not truncated.
        let mut blob = Vec::new();
        put_varint(&mut blob, 1);
        put_varint(&mut blob, 3);
        put_varint(&mut blob, MAX_BUCKET_COUNT + 1);
        assert!(LatencySketch::from_bytes(&blob).is_err());
    }

    #[test]
    fn a_count_past_twenty_bits_widens_every_bucket_and_loses_nothing() {
        let (fast, slow) = (
            LatencySketch::bucket_of(1_000),
            LatencySketch::bucket_of(5_000_000),
        );
        let mut s = LatencySketch::default();
        s.record(1_000);
        s.record(5_000_000);
        assert!(matches!(s.buckets, Buckets::Narrow(_)), "4 bytes a bucket");
        s.add(fast, NARROW_MAX_COUNT);
        assert!(matches!(s.buckets, Buckets::Wide(_)));
        assert_eq!(s.count(), NARROW_MAX_COUNT + 2);
        let pairs: Vec<(i16, u64)> = s.pairs().collect();
        assert_eq!(pairs, vec![(fast, NARROW_MAX_COUNT + 1), (slow, 1)]);
        assert_eq!(LatencySketch::from_bytes(&s.to_bytes()), Ok(s.clone()));
        s.remove_bucket(slow);
        assert_eq!(
            s.pairs().collect::<Vec<_>>(),
            vec![(fast, NARROW_MAX_COUNT + 1)]
        );
        // Merged with a narrow one, the union is wide and exact.
        let mut narrow = LatencySketch::default();
        narrow.record(5_000_000);
        s.merge(&narrow);
        assert_eq!(s.count(), NARROW_MAX_COUNT + 2);
        // The same values compare equal in either form.
        let wide = LatencySketch {
            buckets: Buckets::Wide(vec![pack(slow, 1)]),
            count: 1,
        };
        assert_eq!(wide, narrow);
    }

    #[test]
    fn sparse_and_small() {
        let mut s = LatencySketch::default();
        for _ in 0..3600 {
            s.record(40_000_000);
        }
        assert_eq!(s.len(), 1);
        assert!(s.to_bytes().len() <= 6);
    }

    #[test]
    fn bad_blobs_are_errors() {
        assert!(LatencySketch::from_bytes(&[]).is_err());
        assert!(LatencySketch::from_bytes(&[1]).is_err());
        assert!(
            LatencySketch::from_bytes(&[2, 5, 1, 0, 1]).is_err(),
            "out of order"
        );
        assert!(LatencySketch::from_bytes(&[0xff; 11]).is_err());
        assert!(LatencySketch::from_bytes(&[0, 0]).is_err(), "trailing");
        // A step back written as a huge delta (u64::MAX reads as -1 in i64): out of order, not
        // buckets unsorted (found by the stats_blob fuzz target).
        let mut back = vec![2, 5, 1];
        put_varint(&mut back, u64::MAX);
        back.push(1);
        assert_eq!(
            LatencySketch::from_bytes(&back),
            Err(SketchDecodeError("buckets out of order"))
        );
        assert_eq!(
            LatencySketch::from_bytes(&[0]),
            Ok(LatencySketch::default())
        );
    }

    proptest! {
        #[test]
        fn bytes_round_trip(v in proptest::collection::vec(0u64..4_000_000_000_000, 0..300)) {
            let mut s = LatencySketch::default();
            for x in &v { s.record(*x); }
            prop_assert_eq!(LatencySketch::from_bytes(&s.to_bytes()), Ok(s));
        }

        #[test]
        fn merge_is_union(a in proptest::collection::vec(0u64..4_000_000_000, 0..200),
                          b in proptest::collection::vec(0u64..4_000_000_000, 0..200)) {
            let (mut x, mut y, mut all) = (LatencySketch::default(), LatencySketch::default(), LatencySketch::default());
            for v in &a { x.record(*v); all.record(*v); }
            for v in &b { y.record(*v); all.record(*v); }
            x.merge(&y);
            prop_assert_eq!(x, all);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = LatencySketch::from_bytes(&bytes);
        }
    }

    #[test]
    fn linear_bins_hold_every_value() {
        let mut s = LatencySketch::default();
        for v in [1_000_000u64, 1_000_000, 2_000_000, 9_000_000, 10_000_000] {
            s.record(v);
        }
        let bins = s.linear_bins(9);
        assert_eq!(bins.len(), 9);
        assert_eq!(bins.iter().map(|b| b.2).sum::<u64>(), 5);
        assert_eq!(bins[0].2, 2);
        assert_eq!(bins[8].2, 2);
        assert!(LatencySketch::default().linear_bins(5).is_empty());
    }

    #[test]
    fn linear_bins_are_never_narrower_than_the_sketch_so_no_bar_is_empty_by_construction() {
        // 40.0 … 40.9 ms in 0.1 ms steps: 1 % buckets are ~0.8 ms wide there, so 30 bins of
        // 0.03 ms would leave most of them empty between the sketch's buckets.
        let mut s = LatencySketch::default();
        for i in 0..10u64 {
            for _ in 0..5 {
                s.record(40_000_000 + i * 100_000);
            }
        }
        let bins = s.linear_bins(30);
        assert!(bins.len() < 30, "{} bins", bins.len());
        assert_eq!(bins.iter().map(|b| b.2).sum::<u64>(), 50);
        assert!(bins.iter().all(|b| b.2 > 0), "{bins:?}");
    }
}
