//! Rollups per series at 1 s and 1 min, built by merging: seconds from probes, minutes from
//! closed seconds. Probes are bucketed by *send* time; a second stays open until every probe sent
//! in it must have resolved (its timeout plus a margin), and is reported provisionally while
//! open, so a crash loses at most what was not yet flushed. Memory per series is fixed: a
//! handful of open seconds and one minute.
//!
//! Hours are not kept here: the writer adds each complete minute into its stored hour
//! ([`RollupRow::hour_part`]), and a series only reports when an hour of its closed (a row with
//! [`RollupRow::closes_hour`]). An hour in memory was ~0.5 KB a series (its statistics and
//! histogram), 5 MB of the monitor's heap at 10 000 targets, for a row written once a minute.

use crate::record::ProbeResult;
use crate::stats::{JitterPosition, OutcomeKind, ProbeStats};
use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A rollup resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    /// One second.
    Second,
    /// One minute.
    Minute,
    /// One hour.
    Hour,
}

impl Resolution {
    /// All resolutions, finest first.
    pub const ALL: [Resolution; 3] = [Resolution::Second, Resolution::Minute, Resolution::Hour];

    /// Length in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Second => 1,
            Resolution::Minute => 60,
            Resolution::Hour => 3600,
        }
    }

    /// `1s`, `1m` or `1h`.
    pub fn name(self) -> &'static str {
        match self {
            Resolution::Second => "1s",
            Resolution::Minute => "1m",
            Resolution::Hour => "1h",
        }
    }

    /// Parses `1s`, `1m`, `1h` (also `second`, `minute`, `hour`).
    pub fn parse(text: &str) -> Option<Resolution> {
        match text {
            "1s" | "s" | "second" | "seconds" => Some(Resolution::Second),
            "1m" | "m" | "minute" | "minutes" => Some(Resolution::Minute),
            "1h" | "h" | "hour" | "hours" => Some(Resolution::Hour),
            _ => None,
        }
    }

    /// Start of the bucket holding unix second `t`.
    pub fn bucket(self, t: i64) -> i64 {
        t.div_euclid(self.seconds()) * self.seconds()
    }
}

/// One rollup row: a series' statistics over one bucket.
#[derive(Debug, Clone)]
pub struct RollupRow {
    /// Which series (target index of the run).
    pub series: usize,
    /// Bucket length.
    pub resolution: Resolution,
    /// Bucket start, unix seconds.
    pub start: i64,
    /// What happened in the bucket.
    pub stats: ProbeStats,
    /// False while the bucket may still change (it will be reported again).
    pub complete: bool,
    /// The row was already written (provisionally) with exactly these figures: only its
    /// `complete` flag changes, so a writer need not rewrite the figures.
    pub unchanged: bool,
    /// For a complete minute whose figures carry an earlier series' stored part (see
    /// [`Rollups::seed`]): the part that goes up into the hour (the stored hour has the rest).
    /// `None`: the row's figures go up.
    pub hour_part: Option<Box<ProbeStats>>,
}

impl RollupRow {
    /// An hour this series will add nothing more to: the writer marks its stored hour final.
    /// Such a row has no figures of its own.
    pub fn closes_hour(&self) -> bool {
        self.resolution == Resolution::Hour
    }

    /// What a complete minute adds to its hour.
    pub fn hour_part(&self) -> &ProbeStats {
        self.hour_part.as_deref().unwrap_or(&self.stats)
    }
}

/// Open minutes are rewritten at most this often (seconds): their seconds are on disk already,
/// so this bounds how far a crash can leave them behind, not what is lost.
pub const PROVISIONAL_EVERY_SECS: i64 = 10;

/// Unix seconds (floored) of a time; times before 1970 count as 0.
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    stats: ProbeStats,
    /// Changed since it was last written.
    dirty: bool,
    /// Written (provisionally) at this unix second.
    written_at: Option<i64>,
    /// What an earlier series of the same target stored for this minute (see
    /// [`Rollups::seed`]): written with this bucket, never passed up to the hour (the stored
    /// hour has it already).
    base: Option<Box<ProbeStats>>,
}

impl Bucket {
    /// What the row says: the stored part and this series' own.
    fn total(&self) -> ProbeStats {
        match &self.base {
            Some(base) => {
                let mut all = (**base).clone();
                all.merge(&self.stats);
                all
            }
            None => self.stats.clone(),
        }
    }

    /// The same, for a bucket that closes: its statistics move into the row, not a copy (at a
    /// minute boundary every target closes one at once).
    fn into_total(self) -> ProbeStats {
        match self.base {
            Some(base) => {
                let mut all = *base;
                all.merge(&self.stats);
                all
            }
            None => self.stats,
        }
    }
}

/// One resolved probe as an open second keeps it: what [`ProbeStats::record`] reads, in 24
/// bytes (the outcome's kind, not its text).
#[derive(Debug, Clone, Copy)]
struct Kept {
    kind: OutcomeKind,
    late: bool,
    /// RTT in ns; `u64::MAX`: none.
    rtt_ns: u64,
    send_delay_ns: u64,
}

impl Kept {
    fn of(r: &ProbeResult) -> Self {
        let kind = OutcomeKind::of(&r.outcome);
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1);
        Kept {
            kind,
            late: r.late,
            rtt_ns: r.rtt.map_or(u64::MAX, ns),
            send_delay_ns: ns(r.send_delay),
        }
    }

    fn add_to(&self, s: &mut ProbeStats) {
        let rtt = (self.rtt_ns != u64::MAX).then(|| Duration::from_nanos(self.rtt_ns));
        s.record_kind(self.kind, rtt);
        s.late_sends += u64::from(self.late);
        s.max_send_delay = s
            .max_send_delay
            .max(Duration::from_nanos(self.send_delay_ns));
    }
}

/// What an open second holds: its results while there are at most two (one or two probes a
/// second, nearly every target), with where the jitter stream stood before them (16 bytes, not a
/// 40-byte `Jitter`); statistics beyond. An open second of a 1 s target costs 80 bytes instead of
/// a full `ProbeStats` (224 bytes and a histogram allocation), and each target holds three.
#[derive(Debug, Clone)]
enum SecondData {
    Few {
        jitter: JitterPosition,
        kept: [Option<Kept>; 2],
    },
    Many(Box<ProbeStats>),
}

impl SecondData {
    fn new(jitter: JitterPosition) -> Self {
        SecondData::Few {
            jitter,
            kept: [None, None],
        }
    }

    fn record(&mut self, r: &ProbeResult) {
        if let SecondData::Few { kept, .. } = self {
            if let Some(slot) = kept.iter_mut().find(|k| k.is_none()) {
                *slot = Some(Kept::of(r));
                return;
            }
            // A third result: from here on, full statistics.
            *self = SecondData::Many(Box::new(self.stats()));
        }
        if let SecondData::Many(stats) = self {
            stats.record(r);
        }
    }

    fn stats(&self) -> ProbeStats {
        match self {
            SecondData::Few { jitter, kept } => {
                let mut s = ProbeStats {
                    jitter: jitter.continuing(),
                    ..ProbeStats::default()
                };
                for k in kept.iter().flatten() {
                    k.add_to(&mut s);
                }
                s
            }
            SecondData::Many(stats) => (**stats).clone(),
        }
    }

    fn sent(&self) -> u64 {
        match self {
            SecondData::Few { kept, .. } => kept.iter().flatten().count() as u64,
            SecondData::Many(stats) => stats.sent,
        }
    }

    /// The jitter stream after this second's results (the next second continues it).
    fn jitter_after(&self) -> JitterPosition {
        match self {
            SecondData::Few { jitter, kept } => {
                let mut j = jitter.continuing();
                for k in kept.iter().flatten() {
                    if matches!(k.kind, OutcomeKind::Ok | OutcomeKind::Refused)
                        && k.rtt_ns != u64::MAX
                    {
                        j.record(Duration::from_nanos(k.rtt_ns));
                    }
                }
                j.position()
            }
            SecondData::Many(stats) => stats.jitter.position(),
        }
    }
}

/// An open second: its data, and whether it was written provisionally (a flag, not the time:
/// 16 bytes less in each of the three or four open seconds of every target).
#[derive(Debug, Clone)]
struct OpenSecond {
    data: SecondData,
    /// Changed since it was last written.
    dirty: bool,
    /// Written provisionally.
    written: bool,
}

/// The rollup state of one series.
#[derive(Debug, Clone)]
pub struct Rollups {
    series: usize,
    /// Seconds after a second ends until it is closed: the probe timeout plus a margin.
    grace_secs: i64,
    open: VecDeque<(i64, OpenSecond)>,
    minute: Option<(i64, Bucket)>,
    /// The hour of the last minute closed: reported closed once a later one closes, or at the end.
    hour: Option<i64>,
    /// The jitter stream so far, continued by each new bucket.
    running_jitter: JitterPosition,
    /// The last second closed: results for it or earlier are late.
    closed_through: Option<i64>,
    /// Results that arrived for a second already closed (counted, not lost silently).
    pub late_results: u64,
}

impl Rollups {
    /// Rollups for `series` whose probes resolve at most `timeout` after they are sent.
    pub fn new(series: usize, timeout: Duration) -> Self {
        Self {
            series,
            grace_secs: timeout.as_secs() as i64 + 1,
            open: VecDeque::new(),
            minute: None,
            hour: None,
            closed_through: None,
            running_jitter: JitterPosition::default(),
            late_results: 0,
        }
    }

    /// Seconds after a second ends until it is closed (the probe timeout, rounded down, + 1).
    pub fn grace_secs(&self) -> i64 {
        self.grace_secs
    }

    /// Raises the grace to cover probes resolving `timeout` after they are sent (a second
    /// target now feeds this series: a reload that changed its interval or timeout).
    pub fn widen_grace(&mut self, timeout: Duration) {
        self.grace_secs = self.grace_secs.max(timeout.as_secs() as i64 + 1);
    }

    /// This series gets no more results: any that still come are counted late, never written
    /// over the rows already final.
    pub fn retire(&mut self) {
        self.closed_through = Some(i64::MAX);
    }

    /// Merges a minute stored earlier in this session by another series of the same target (one
    /// removed and re-added by a reload) into this series' minute, so its writes carry both
    /// instead of replacing the stored row. Only the minute this series starts in (its first
    /// open second, else `now`) can hold such a row; others are ignored, and so are a second (a
    /// re-added target's seconds all come after the earlier series' last) and an hour (the
    /// writer adds minutes into the stored hour, which has the earlier series' already).
    pub fn seed(
        &mut self,
        resolution: Resolution,
        start: i64,
        stored: &ProbeStats,
        now: SystemTime,
    ) {
        let first = self
            .open
            .front()
            .map_or_else(|| unix_secs(now), |(sec, _)| *sec);
        let slot = match resolution {
            Resolution::Second | Resolution::Hour => return,
            Resolution::Minute => &mut self.minute,
        };
        if resolution.bucket(first) != start {
            return;
        }
        match slot {
            Some((s, b)) if *s == start => {
                let mut base = stored.clone();
                if let Some(old) = b.base.take() {
                    base.merge(&old);
                }
                b.base = Some(Box::new(base));
                b.dirty = true;
            }
            Some(_) => {}
            None => {
                *slot = Some((
                    start,
                    Bucket {
                        base: Some(Box::new(stored.clone())),
                        ..Bucket::default()
                    },
                ))
            }
        }
    }

    /// The last rows this series reported for its open buckets were not stored (the commit
    /// failed): the next flush reports every open bucket again.
    pub fn unwrite(&mut self) {
        for (_, b) in self.open.iter_mut() {
            b.dirty = true;
            b.written = false;
        }
        if let Some((_, b)) = &mut self.minute {
            b.dirty = true;
            b.written_at = None;
        }
    }

    /// Results held in seconds not yet closed (what would be lost if they were never flushed).
    pub fn held_results(&self) -> u64 {
        self.open.iter().map(|(_, b)| b.data.sent()).sum()
    }

    /// Counts one resolved probe in the second it was sent.
    pub fn record(&mut self, r: &ProbeResult) {
        let sec = unix_secs(r.sent_at);
        if self.closed_through.is_some_and(|c| sec <= c) {
            self.late_results += 1;
            return;
        }
        let running = &self.running_jitter;
        // Open seconds are few and nearly always appended in order: a sorted deque costs one
        // allocation per series, where a BTreeMap node held room for eleven buckets.
        let at = match self.open.binary_search_by_key(&sec, |(s, _)| *s) {
            Ok(i) => i,
            Err(i) => {
                if self.open.capacity() == 0 {
                    // The seconds a grace keeps open, and the one being filled: room for
                    // exactly those (doubling would round three up to four, per target).
                    self.open
                        .reserve_exact(usize::try_from(self.grace_secs).unwrap_or(1) + 1);
                }
                let second = OpenSecond {
                    data: SecondData::new(*running),
                    dirty: false,
                    written: false,
                };
                self.open.insert(i, (sec, second));
                i
            }
        };
        let b = &mut self.open[at].1;
        b.data.record(r);
        b.dirty = true;
        // The next bucket continues the RFC 3550 estimate from here (arrival order).
        self.running_jitter = b.data.jitter_after();
    }

    /// Closes seconds that can no longer change at wall time `now` (or all, when `finish`), and
    /// appends every row that changed since the last call: closed rows with `complete`, open ones
    /// provisionally.
    pub fn flush(&mut self, now: SystemTime, finish: bool, out: &mut Vec<RollupRow>) {
        let now = unix_secs(now);
        while let Some(&(sec, _)) = self.open.front() {
            if !finish && sec + 1 + self.grace_secs > now {
                break;
            }
            let Some((sec, bucket)) = self.open.pop_front() else {
                break;
            };
            let unchanged = bucket.written && !bucket.dirty;
            self.close_second(sec, bucket.data.stats(), unchanged, out);
        }
        for (sec, b) in self.open.iter_mut().filter(|(_, b)| b.dirty) {
            let sec = *sec;
            b.dirty = false;
            b.written = true;
            out.push(RollupRow {
                series: self.series,
                resolution: Resolution::Second,
                start: sec,
                stats: b.data.stats(),
                complete: false,
                unchanged: false,
                hour_part: None,
            });
        }
        if finish {
            if let Some((m, b)) = self.minute.take() {
                self.close_minute(m, b, out);
            }
            if let Some(h) = self.hour.take() {
                out.push(self.hour_closed(h));
            }
            return;
        }
        let due = |b: &Bucket| {
            b.dirty
                && b.written_at
                    .is_none_or(|w| now - w >= PROVISIONAL_EVERY_SECS)
        };
        let series = self.series;
        if let Some((start, b)) = self.minute.as_mut().filter(|(_, b)| due(b)) {
            b.dirty = false;
            b.written_at = Some(now);
            out.push(RollupRow {
                series,
                resolution: Resolution::Minute,
                start: *start,
                stats: b.total(),
                complete: false,
                unchanged: false,
                hour_part: None,
            });
        }
    }

    /// The row saying hour `start` is closed for this series.
    fn hour_closed(&self, start: i64) -> RollupRow {
        RollupRow {
            unchanged: true,
            ..self.row(Resolution::Hour, start, ProbeStats::default(), true)
        }
    }

    fn row(
        &self,
        resolution: Resolution,
        start: i64,
        stats: ProbeStats,
        complete: bool,
    ) -> RollupRow {
        RollupRow {
            series: self.series,
            resolution,
            start,
            stats,
            complete,
            unchanged: false,
            hour_part: None,
        }
    }

    fn close_second(
        &mut self,
        sec: i64,
        stats: ProbeStats,
        unchanged: bool,
        out: &mut Vec<RollupRow>,
    ) {
        self.closed_through = Some(sec);
        let minute = Resolution::Minute.bucket(sec);
        if self.minute.as_ref().is_some_and(|(m, _)| *m != minute) {
            if let Some((m, b)) = self.minute.take() {
                self.close_minute(m, b, out);
            }
        }
        let (_, b) = self
            .minute
            .get_or_insert_with(|| (minute, Bucket::default()));
        b.stats.merge(&stats);
        b.dirty = true;
        let mut row = self.row(Resolution::Second, sec, stats, true);
        row.unchanged = unchanged;
        out.push(row);
    }

    fn close_minute(&mut self, minute: i64, bucket: Bucket, out: &mut Vec<RollupRow>) {
        let hour = Resolution::Hour.bucket(minute);
        if let Some(h) = self.hour.filter(|&h| h != hour) {
            out.push(self.hour_closed(h));
        }
        self.hour = Some(hour);
        // Only this series' own part goes up: a seeded base is in the stored hour already.
        let hour_part = bucket
            .base
            .is_some()
            .then(|| Box::new(bucket.stats.clone()));
        out.push(RollupRow {
            hour_part,
            ..self.row(Resolution::Minute, minute, bucket.into_total(), true)
        });
    }
}

#[cfg(test)]
mod compact_tests {
    use super::*;
    use crate::record::{Detail, IcmpError, Outcome};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const T0: u64 = 1_700_000_000 - 1_700_000_000 % 3600;

    /// What every second's statistics are, counted the plain way: a full `ProbeStats` per
    /// second, each continuing the jitter stream as it stood (arrival order).
    fn reference(results: &[ProbeResult]) -> BTreeMap<i64, ProbeStats> {
        let mut by: BTreeMap<i64, ProbeStats> = BTreeMap::new();
        let mut running = crate::stats::Jitter::default();
        for r in results {
            let sec = unix_secs(r.sent_at);
            let b = by.entry(sec).or_insert_with(|| ProbeStats {
                jitter: running.continuing(),
                ..ProbeStats::default()
            });
            b.record(r);
            running = b.jitter.continuing();
        }
        by
    }

    fn outcome(k: u8) -> Outcome {
        match k {
            0..=2 => Outcome::Ok,
            3 => Outcome::Refused,
            4 => Outcome::Timeout,
            5 => Outcome::Unreachable(IcmpError {
                v6: false,
                icmp_type: 3,
                code: 1,
                from: None,
            }),
            _ => Outcome::Error("send: no route".into()),
        }
    }

    proptest! {
        #[test]
        fn compact_open_seconds_give_the_rows_full_statistics_give(
            probes in proptest::collection::vec((0u64..4, 0u8..7, 1u64..50_000, 0u64..3_000, any::<bool>()), 1..120)
        ) {
            // Probes sent over ~20 s, 0–n per second, now and then answered a second late
            // (into a second still open), with every outcome kind.
            let mut t_ms = 0u64;
            let mut results = Vec::new();
            for (i, (gap, kind, rtt_us, delay_us, late)) in probes.iter().enumerate() {
                t_ms += gap * 170;
                let o = outcome(*kind);
                results.push(ProbeResult {
                    target: 0,
                    seq: i as u64,
                    sent_at: UNIX_EPOCH + Duration::from_millis(T0 * 1000 + t_ms),
                    rtt: o.is_reply().then(|| Duration::from_micros(*rtt_us)),
                    outcome: o,
                    detail: Detail::None,
                    send_delay: Duration::from_micros(*delay_us),
                    late: *late,
                });
            }
            // Arrival order: a result may come after one sent up to a second later.
            for i in (1..results.len()).step_by(5) {
                let (a, b) = (&results[i - 1].sent_at, &results[i].sent_at);
                if b.duration_since(*a).unwrap_or_default() < Duration::from_secs(1) {
                    results.swap(i - 1, i);
                }
            }
            let mut r = Rollups::new(0, Duration::from_secs(1));
            for x in &results {
                r.record(x);
            }
            let mut rows = Vec::new();
            r.flush(UNIX_EPOCH + Duration::from_secs(T0 + 1000), true, &mut rows);
            let want = reference(&results);
            let got: BTreeMap<i64, &ProbeStats> = rows
                .iter()
                .filter(|x| x.resolution == Resolution::Second)
                .map(|x| (x.start, &x.stats))
                .collect();
            prop_assert_eq!(got.len(), want.len());
            for (sec, w) in &want {
                let g = got[sec];
                prop_assert_eq!(
                    (g.sent, g.received, g.refused, g.timeouts, g.icmp_errors, g.local_errors, g.late_sends),
                    (w.sent, w.received, w.refused, w.timeouts, w.icmp_errors, w.local_errors, w.late_sends)
                );
                prop_assert_eq!(g.max_send_delay, w.max_send_delay);
                prop_assert_eq!(g.rtt.parts().count, w.rtt.parts().count);
                prop_assert_eq!(g.rtt.parts().sum_ns, w.rtt.parts().sum_ns);
                prop_assert_eq!(g.rtt.summary().map(|x| (x.min, x.max, x.median)), w.rtt.summary().map(|x| (x.min, x.max, x.median)));
                let (ge, gs, gd) = g.jitter.parts();
                let (we, ws, wd) = w.jitter.parts();
                prop_assert!((ge - we).abs() < 1e-6 && (gs - ws).abs() < 1e-6 && gd == wd, "jitter {:?} vs {:?}", (ge, gs, gd), (we, ws, wd));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Detail, Outcome};

    const T0: u64 = 1_700_000_000 - 1_700_000_000 % 3600; // an hour boundary

    fn probe(at_ms: u64, ok: bool, rtt_ms: u64) -> ProbeResult {
        ProbeResult {
            target: 0,
            seq: at_ms,
            sent_at: UNIX_EPOCH + Duration::from_millis(T0 * 1000 + at_ms),
            rtt: ok.then(|| Duration::from_millis(rtt_ms)),
            outcome: if ok { Outcome::Ok } else { Outcome::Timeout },
            detail: Detail::None,
            send_delay: std::time::Duration::ZERO,
            late: false,
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T0 + secs)
    }

    fn complete(rows: &[RollupRow], res: Resolution) -> Vec<&RollupRow> {
        rows.iter()
            .filter(|r| r.resolution == res && r.complete)
            .collect()
    }

    #[test]
    fn seconds_close_after_grace_and_roll_into_minutes_and_hours() {
        let mut r = Rollups::new(0, Duration::from_secs(1));
        let mut rows = Vec::new();
        // Two hours of one probe per second, every 10th lost.
        for s in 0..7200u64 {
            r.record(&probe(s * 1000, s % 10 != 0, 10 + s % 7));
            r.flush(at(s + 1), false, &mut rows);
        }
        r.flush(at(7201), true, &mut rows);
        let secs = complete(&rows, Resolution::Second);
        assert_eq!(secs.len(), 7200);
        assert!(secs.iter().all(|row| row.stats.sent == 1));
        let mins = complete(&rows, Resolution::Minute);
        assert_eq!(mins.len(), 120);
        assert!(mins
            .iter()
            .all(|m| m.stats.sent == 60 && m.stats.received == 54));
        let hours = hours_as_written(&rows);
        assert_eq!(hours.len(), 2);
        let (start, first) = hours.first_key_value().expect("an hour");
        assert_eq!(*start, T0 as i64);
        assert_eq!((first.sent, first.received), (3600, 3240));
        // the hour equals the merge of its seconds
        let mut merged = ProbeStats::default();
        for s in secs.iter().filter(|r| r.start < T0 as i64 + 3600) {
            merged.merge(&s.stats);
        }
        assert_eq!(merged.rtt.summary(), first.rtt.summary());
        assert_eq!(r.late_results, 0);
        // jitter continues across buckets: the hour's estimate equals one stream over all probes
        let mut stream = crate::stats::Jitter::default();
        for s in 0..3600u64 {
            if s % 10 != 0 {
                stream.record(Duration::from_millis(10 + s % 7));
            }
        }
        assert_eq!(first.jitter.rfc3550(), stream.rfc3550());
        assert_eq!(first.jitter.mean_abs_delta(), stream.mean_abs_delta());
    }

    /// The hours a writer builds from `rows`: every complete minute's part added into its hour,
    /// each hour checked to be reported closed once, after its last minute and before any
    /// minute of a later hour.
    fn hours_as_written(rows: &[RollupRow]) -> std::collections::BTreeMap<i64, ProbeStats> {
        let mut hours = std::collections::BTreeMap::<i64, ProbeStats>::new();
        let mut closed = Vec::new();
        for row in rows {
            if row.closes_hour() {
                assert!(
                    hours.contains_key(&row.start),
                    "closed before a minute of it"
                );
                assert!(!closed.contains(&row.start), "closed twice");
                closed.push(row.start);
            } else if row.resolution == Resolution::Minute && row.complete {
                let hour = Resolution::Hour.bucket(row.start);
                assert!(!closed.contains(&hour), "a minute after its hour closed");
                hours.entry(hour).or_default().merge(row.hour_part());
            }
        }
        assert_eq!(closed.len(), hours.len(), "every hour is closed at the end");
        hours
    }

    #[test]
    fn a_second_written_provisionally_and_unchanged_is_only_marked_complete() {
        let mut r = Rollups::new(0, Duration::from_secs(1));
        let mut rows = Vec::new();
        r.record(&probe(100, true, 5));
        r.flush(at(1), false, &mut rows);
        assert!(rows.len() == 1 && !rows[0].complete && !rows[0].unchanged);
        rows.clear();
        r.flush(at(3), false, &mut rows);
        let sec: Vec<_> = rows
            .iter()
            .filter(|x| x.resolution == Resolution::Second)
            .collect();
        assert_eq!(sec.len(), 1);
        assert!(sec[0].complete && sec[0].unchanged, "{sec:?}");
        assert_eq!(sec[0].stats.sent, 1, "the figures still travel with it");
        // One that changed after its provisional write is written whole.
        rows.clear();
        r.record(&probe(3_100, true, 5));
        r.flush(at(4), false, &mut rows);
        r.record(&probe(3_900, false, 0));
        rows.clear();
        r.flush(at(6), false, &mut rows);
        let sec: Vec<_> = rows
            .iter()
            .filter(|x| x.resolution == Resolution::Second && x.start == T0 as i64 + 3)
            .collect();
        assert!(
            sec.len() == 1 && sec[0].complete && !sec[0].unchanged,
            "{sec:?}"
        );
    }

    #[test]
    fn open_minutes_are_rewritten_at_most_every_ten_seconds() {
        let mut r = Rollups::new(0, Duration::from_secs(1));
        let mut rows = Vec::new();
        let mut minute_writes = 0;
        for s in 0..50u64 {
            r.record(&probe(s * 1000 + 100, true, 5));
            rows.clear();
            r.flush(at(s + 1), false, &mut rows);
            minute_writes += rows
                .iter()
                .filter(|x| x.resolution == Resolution::Minute)
                .count();
        }
        // Seconds close from the 3rd flush on; the minute is written then and every 10 s.
        assert!((4..=5).contains(&minute_writes), "{minute_writes}");
    }

    #[test]
    fn open_seconds_are_reported_provisionally_and_late_results_fit_the_grace() {
        let mut r = Rollups::new(0, Duration::from_secs(1));
        let mut rows = Vec::new();
        r.record(&probe(100, true, 5));
        r.flush(at(1), false, &mut rows);
        assert_eq!(rows.len(), 1);
        assert!(
            !rows[0].complete && rows[0].stats.sent == 1,
            "provisional row for second 0"
        );
        rows.clear();
        r.flush(at(1), false, &mut rows);
        assert!(rows.is_empty(), "nothing changed, nothing reported");
        // A timeout for a probe sent in second 0 resolves a second later: still in time.
        r.record(&probe(900, false, 0));
        r.flush(at(2), false, &mut rows);
        r.flush(at(3), false, &mut rows);
        let sec0: Vec<_> = rows
            .iter()
            .filter(|x| x.resolution == Resolution::Second && x.complete)
            .collect();
        assert_eq!(sec0.len(), 1);
        assert_eq!((sec0[0].stats.sent, sec0[0].stats.received), (2, 1));
        r.record(&probe(500, true, 5));
        assert_eq!(r.late_results, 1, "second 0 is closed");
    }

    #[test]
    fn resolutions() {
        assert_eq!(Resolution::parse("1m"), Some(Resolution::Minute));
        assert_eq!(Resolution::parse("5m"), None);
        assert_eq!(Resolution::Hour.bucket(7199), 3600);
        assert_eq!(Resolution::Minute.bucket(-1), -60);
    }
}
