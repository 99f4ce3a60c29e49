use super::*;
use crate::alert::{AlertKind, Comparator, Severity};
use crate::record::{Detail, Outcome};
use crate::seconds::RingMap;
use proptest::prelude::*;
use std::time::UNIX_EPOCH;

fn spec(name: &str, metric: Metric, threshold: f64, hold_s: u64, window_s: u64) -> RuleSpec {
    RuleSpec {
        rule: Rule {
            name: name.into(),
            metric,
            op: Comparator::Above,
            threshold,
            hold: Duration::from_secs(hold_s),
            hysteresis: 0.1,
            repeat: None,
            subjects: vec![],
            severity: Severity::Warning,
        },
        window: Duration::from_secs(window_s),
    }
}

fn reply(target: usize, seq: u64, at_ms: u64, rtt_ms: f64) -> ProbeResult {
    ProbeResult {
        target,
        seq,
        sent_at: UNIX_EPOCH + Duration::from_millis(at_ms),
        rtt: Some(Duration::from_secs_f64(rtt_ms / 1000.0)),
        outcome: Outcome::Ok,
        detail: Detail::None,
        send_delay: Duration::ZERO,
        late: false,
    }
}

fn lost(target: usize, seq: u64, at_ms: u64) -> ProbeResult {
    ProbeResult {
        rtt: None,
        outcome: Outcome::Timeout,
        ..reply(target, seq, at_ms, 0.0)
    }
}

/// Drives a model on virtual time: one probe per second (arriving at .100 of each second,
/// RTT from `rtt(second)`), a tick at .500; returns (second, rule, kind) of every alert.
/// A model and the rings it reads, paired as the monitor pairs it with the live view (whose
/// rings keep at least [`MonitorModel::seconds_needed`]).
struct Sim {
    m: MonitorModel,
    rings: RingMap,
}

impl Sim {
    fn result(&mut self, r: &ProbeResult, at: SystemTime, out: &mut Vec<Output>) {
        self.m.result(r, at, &mut self.rings, out);
    }

    fn tick(&mut self, now: Duration, wall: SystemTime, out: &mut Vec<Output>) {
        self.m.tick(now, wall, &self.rings, out);
    }

    fn replace_rules(&mut self, specs: Vec<RuleSpec>) {
        self.m.replace_rules(specs);
        let cap = self.m.seconds_needed();
        self.rings.cap = cap;
        for r in self.rings.rings.values_mut() {
            r.set_cap(cap);
        }
    }
}

impl std::ops::Deref for Sim {
    type Target = MonitorModel;
    fn deref(&self) -> &MonitorModel {
        &self.m
    }
}

impl std::ops::DerefMut for Sim {
    fn deref_mut(&mut self) -> &mut MonitorModel {
        &mut self.m
    }
}

fn drive(
    model: &mut Sim,
    from_s: u64,
    seconds: u64,
    rtt: impl Fn(u64) -> Option<f64>,
) -> Vec<(u64, String, AlertKind)> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for s in from_s..from_s + seconds {
        let at = UNIX_EPOCH + Duration::from_millis(s * 1000 + 100);
        let r = match rtt(s) {
            Some(v) => reply(0, s + 1, s * 1000 + 100, v),
            None => lost(0, s + 1, s * 1000 + 100),
        };
        model.result(&r, at, &mut out);
        let tick = Duration::from_millis(s * 1000 + 500);
        model.tick(tick, UNIX_EPOCH + tick, &mut out);
        for o in out.drain(..) {
            if let Output::Alert(e) = o {
                seen.push((s, e.rule.clone(), e.kind));
            }
        }
    }
    seen
}

fn model_with(specs: Vec<RuleSpec>) -> Sim {
    let mut m = MonitorModel::new(specs, OutageConfig::default());
    m.add_target(0, "lab", "icmp", Duration::from_secs(1));
    let rings = RingMap {
        cap: m.seconds_needed(),
        ..RingMap::default()
    };
    Sim { m, rings }
}

#[test]
fn jitter_rule_fires_at_one_probe_a_second_on_jittery_replies() {
    // ±8 ms around 40 ms, alternating: |ΔRTT| = 16 ms every reply, so the RFC 3550 estimate
    // climbs past 1 ms within a few replies (J += (16 − J)/16: 1.0, 1.9, 2.8 …).
    let mut m = model_with(vec![spec("jit", Metric::Jitter, 1.0, 3, 10)]);
    let alerts = drive(&mut m, 1000, 20, |s| {
        Some(if s % 2 == 0 { 32.0 } else { 48.0 })
    });
    let fired: Vec<_> = alerts
        .iter()
        .filter(|(_, _, k)| *k == AlertKind::Fired)
        .collect();
    assert_eq!(fired.len(), 1, "{alerts:?}");
    // Second reply (1001) gives J = 1.0 ms (not > 1); 1002 gives 1.9: pending from 1002,
    // fires once it has held 3 s.
    assert_eq!(fired[0].0, 1005, "{alerts:?}");
}

#[test]
fn jitter_rule_stays_quiet_on_steady_replies() {
    let mut m = model_with(vec![spec("jit", Metric::Jitter, 1.0, 3, 10)]);
    let alerts = drive(&mut m, 1000, 30, |_| Some(40.0));
    assert!(alerts.is_empty(), "{alerts:?}");
    assert_eq!(
        m.target(0).and_then(TargetModel::jitter),
        Some(Duration::ZERO)
    );
}

#[test]
fn each_rule_is_judged_on_its_own_window() {
    // 10 ms for 60 s, then 50 ms. The 2 s rule (hold 3 s) sees 50 ms two seconds after the
    // step and fires 3 s later; the 60 s rule's average crosses 30 ms only once more than half
    // of its window (the second going on and 60 whole ones) is at 50 ms:
    // 10·(61−k) + 50·k > 30·61 ⇔ k > 30.5.
    let mut m = model_with(vec![
        spec("fast", Metric::LatencyAvg, 30.0, 3, 2),
        spec("slow", Metric::LatencyAvg, 30.0, 0, 60),
    ]);
    let step = 1060;
    let alerts = drive(&mut m, 1000, 120, |s| {
        Some(if s < step { 10.0 } else { 50.0 })
    });
    let fired = |rule: &str| {
        alerts
            .iter()
            .find(|(_, r, k)| r == rule && *k == AlertKind::Fired)
            .map(|(s, ..)| *s)
    };
    // Fast: window (s−3, s] holds seconds s−2, s−1 and s; at the step second it is
    // (10+10+50)/3 = 23, at step+1 (10+50+50)/3 = 37: pending at step+1, fires at step+4.
    assert_eq!(fired("fast"), Some(step + 4), "{alerts:?}");
    // Slow: k = s − step + 1 seconds at 50 ms in its window; k = 31 at s = step + 30.
    assert_eq!(fired("slow"), Some(step + 30), "{alerts:?}");
    // And with the old bug (both rules fed both windows) "slow" would have fired with "fast".
    assert_eq!(alerts.len(), 2, "{alerts:?}");
}

#[test]
fn a_one_second_window_judged_early_in_each_second_still_sees_the_last_second() {
    // Ten replies a second at 10 ms, from +100 ms to +820 ms; the monitor's tick falls
    // at +5 ms, before any of them. The window is the second going on and the whole one
    // before it, so the rule fires: judged on the second going on alone it would never see a
    // value (what CI once hit, depending on the phase of the tick within the second).
    let mut m = model_with(vec![spec("slow", Metric::LatencyAvg, 1.0, 0, 1)]);
    let mut out = Vec::new();
    let mut fired = Vec::new();
    let mut seq = 0;
    for s in 1000u64..1005 {
        let tick = Duration::from_millis(s * 1000 + 5);
        m.tick(tick, UNIX_EPOCH + tick, &mut out);
        fired.extend(out.drain(..).filter_map(|o| match o {
            Output::Alert(e) if e.kind == AlertKind::Fired => Some(s),
            _ => None,
        }));
        for k in 0..10 {
            seq += 1;
            let at = s * 1000 + 100 + k * 80;
            m.result(
                &reply(0, seq, at - 10, 10.0),
                UNIX_EPOCH + Duration::from_millis(at),
                &mut out,
            );
        }
    }
    assert_eq!(fired, [1001], "{out:?}");
}

#[test]
fn loss_and_p95_windows_slide() {
    let mut m = model_with(vec![
        spec("loss", Metric::Loss, 0.5, 0, 4),
        spec("p95", Metric::LatencyP95, 100.0, 0, 4),
    ]);
    // Window (s−5, s]: lost 1002..=1005 → 3 of 5 lost at 1004 (fires), 2 of 5 at 1008
    // (below 0.5 − 10 %: resolves). The 300 ms reply at 1008 is the p95 of its window until
    // it leaves at 1013.
    let alerts = drive(&mut m, 1000, 14, |s| match s {
        1002..=1005 => None,
        1008 => Some(300.0),
        _ => Some(10.0),
    });
    let kinds: Vec<_> = alerts
        .iter()
        .map(|(s, r, k)| (*s, r.as_str(), *k))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1004, "loss", AlertKind::Fired),
            (1008, "loss", AlertKind::Resolved),
            (1008, "p95", AlertKind::Fired),
            (1013, "p95", AlertKind::Resolved),
        ],
        "{alerts:?}"
    );
}

#[test]
fn reload_plan_keeps_changes_and_stops() {
    let running = vec![(0, "a"), (1, "b"), (2, "c")];
    let plan = plan_reload(&running, &["a", "c2", "c", "d"]);
    assert_eq!(plan.keep, vec![0, 2]);
    assert_eq!(plan.stop, vec![1]);
    assert_eq!(plan.start, vec![1, 3]);
    // Duplicates: a second "a" starts again.
    let plan = plan_reload(&running, &["a", "a"]);
    assert_eq!(plan.keep, vec![0]);
    assert_eq!(plan.start, vec![1]);
    assert_eq!(plan.stop, vec![1, 2]);
}

#[test]
fn reload_keeps_target_state_and_firing_rules() {
    let rules = vec![spec("slow", Metric::LatencyAvg, 30.0, 0, 2)];
    let mut m = model_with(rules.clone());
    let alerts = drive(&mut m, 1000, 5, |_| Some(50.0));
    assert_eq!(alerts.len(), 1);
    // Same rules again (and one more): no re-fire, the firing alert is still known.
    let mut more = rules.clone();
    more.push(spec("loss", Metric::Loss, 0.5, 0, 2));
    m.replace_rules(more);
    assert_eq!(m.firing(), vec![("slow".to_string(), "lab".to_string())]);
    let alerts = drive(&mut m, 1005, 5, |_| Some(50.0));
    assert!(alerts.is_empty(), "{alerts:?}");
    // It resolves when latency drops.
    let alerts = drive(&mut m, 1010, 3, |_| Some(5.0));
    assert_eq!(alerts[0].2, AlertKind::Resolved);
    // A removed target is forgotten everywhere, and what fired for it is resolved at the next
    // tick (nothing stays firing forever for a target no longer monitored).
    let _ = drive(&mut m, 1013, 3, |_| Some(50.0));
    assert_eq!(m.firing().len(), 1);
    m.remove_target(0);
    let mut out = Vec::new();
    let tick = Duration::from_millis(1_016_500);
    m.tick(tick, UNIX_EPOCH + tick, &mut out);
    let resolved: Vec<_> = out
        .drain(..)
        .filter_map(|o| match o {
            Output::Alert(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(
        (
            resolved[0].rule.as_str(),
            resolved[0].subject.as_str(),
            resolved[0].kind
        ),
        ("slow", "lab", AlertKind::Resolved)
    );
    assert!(
        resolved[0].gone && resolved[0].value == 50.0,
        "{:?}",
        resolved[0]
    );
    assert!(
        resolved[0]
            .to_string()
            .starts_with("RESOLVED slow lab: no longer monitored (last latency_avg 50.00 ms)"),
        "{}",
        resolved[0]
    );
    assert!(m.firing().is_empty());
    m.tick(tick, UNIX_EPOCH + tick, &mut out);
    assert!(out.is_empty(), "resolved once: {out:?}");
    m.result(&reply(0, 99, 1_016_100, 1.0), UNIX_EPOCH, &mut out);
    assert_eq!(m.unknown_results, 1);
}

#[test]
fn drops_are_counted_per_stage() {
    let mut m = model_with(vec![]);
    m.count_dropped(DropStage::Monitor, 3);
    m.count_dropped(DropStage::Monitor, 2);
    m.set_dropped(DropStage::Recorder, 7);
    assert_eq!(m.dropped(DropStage::Monitor), 5);
    assert_eq!(m.dropped(DropStage::Recorder), 7);
}

#[test]
fn outages_come_out_as_they_start_and_end() {
    let mut m = model_with(vec![spec("down", Metric::Outage, 0.5, 0, 10)]);
    let alerts = drive(&mut m, 1000, 10, |s| {
        (!(1003..1006).contains(&s)).then_some(5.0)
    });
    let kinds: Vec<_> = alerts.iter().map(|(s, _, k)| (*s, *k)).collect();
    // At 1 s the third failure in a row is the evidence: down at 1005, up at the next answer.
    assert_eq!(
        kinds,
        vec![(1005, AlertKind::Fired), (1006, AlertKind::Resolved)]
    );
    let mut m = model_with(vec![spec("down", Metric::Outage, 0.5, 0, 10)]);
    let alerts = drive(&mut m, 1000, 10, |s| {
        (!(1003..1005).contains(&s)).then_some(5.0)
    });
    assert!(alerts.is_empty(), "two lost probes are loss: {alerts:?}");
}

#[test]
fn lateness_is_kept_per_target() {
    let mut m = model_with(vec![]);
    let mut out = Vec::new();
    let mut r = reply(0, 1, 1000, 1.0);
    r.send_delay = Duration::from_millis(3);
    r.late = true;
    m.result(&r, UNIX_EPOCH + Duration::from_secs(1), &mut out);
    m.result(
        &reply(0, 2, 2000, 1.0),
        UNIX_EPOCH + Duration::from_secs(2),
        &mut out,
    );
    let l = m
        .target(0)
        .map(TargetModel::lateness)
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (l.late_sends, l.sends, l.max),
        (1, 2, Duration::from_millis(3))
    );
    assert_eq!(m.lateness_total(), (1, 2, Duration::from_millis(3)));
}

/// Brute force: the same figures from every result kept.
fn brute(
    results: &[(i64, Option<f64>)],
    now: i64,
    window: i64,
) -> (u64, u64, Option<f64>, Option<u64>) {
    let inside: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s > now - window - 1 && *s <= now)
        .collect();
    let sent = inside.len() as u64;
    let rtts: Vec<f64> = inside.iter().filter_map(|(_, r)| *r).collect();
    let avg = (!rtts.is_empty()).then(|| rtts.iter().sum::<f64>() / rtts.len() as f64);
    let mut sk = LatencySketch::default();
    for r in &rtts {
        sk.record((r * 1e6) as u64);
    }
    (sent, rtts.len() as u64, avg, sk.quantile(0.95))
}

proptest! {
    /// Sliding sums equal sums recomputed from scratch, whatever the arrival pattern (gaps,
    /// bursts).
    #[test]
    fn sliding_windows_equal_brute_force(
        steps in proptest::collection::vec((0i64..4, proptest::option::of(1u32..500)), 1..200),
        w1 in 1u64..8, w2 in 1u64..30,
    ) {
        let mut m = model_with(vec![
            spec("a", Metric::LatencyP95, 1e9, 0, w1),
            spec("b", Metric::LatencyAvg, 1e9, 0, w2),
        ]);
        let mut kept: Vec<(i64, Option<f64>)> = Vec::new();
        let mut sec = 10_000i64;
        let mut out = Vec::new();
        for (i, (gap, rtt)) in steps.iter().enumerate() {
            sec += gap;
            let r = match rtt {
                Some(v) => reply(0, i as u64 + 1, 0, f64::from(*v)),
                None => lost(0, i as u64 + 1, 0),
            };
            let rtt_ms = r.rtt.map(|d| d.as_nanos() as f64 / 1e6);
            m.result(&r, UNIX_EPOCH + Duration::from_secs(sec as u64), &mut out);
            kept.push((sec, rtt_ms));
            let t = m.target(0).expect("target");
            for (wi, &len) in m.lens.iter().enumerate() {
                let (sent, rtts, avg, p95) = brute(&kept, sec, len);
                let w = &t.windows[wi];
                prop_assert_eq!(w.sent, sent, "window {} at {}", len, sec);
                prop_assert_eq!(w.rtts, rtts);
                let got = t.value(Metric::LatencyAvg, wi, 0);
                match (got, avg) {
                    (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-6 * b.max(1.0)),
                    (a, b) => prop_assert_eq!(a.is_some(), b.is_some()),
                }
                if m.hist_lens[wi] {
                    prop_assert_eq!(w.hist.as_ref().and_then(|h| h.quantile(0.95)), p95);
                } else {
                    prop_assert!(w.hist.is_none(), "no histogram without a p95 rule");
                }
            }
        }
    }
}

#[test]
fn a_flooded_second_saturates_and_still_leaves_the_window_cleanly() {
    let mut m = model_with(vec![spec("p95", Metric::LatencyP95, 1e9, 0, 2)]);
    let mut out = Vec::new();
    let at = UNIX_EPOCH + Duration::from_secs(5000);
    for seq in 1..=70_000u64 {
        m.result(&reply(0, seq, 5_000_000, 1.0), at, &mut out);
    }
    let t = m.target(0).expect("target");
    let wi = m.lens.iter().position(|&l| l == 2).expect("2 s window");
    assert_eq!(t.windows[wi].sent, u64::from(u16::MAX));
    assert_eq!(
        t.windows[wi].hist.as_ref().map_or(0, |h| h.count()),
        u64::from(u16::MAX)
    );
    // Three seconds later the flood has left every window: nothing drifts, nothing underflows.
    let later = UNIX_EPOCH + Duration::from_secs(5003);
    m.tick(Duration::from_secs(3), later, &mut out);
    let t = m.target(0).expect("target");
    assert_eq!(t.windows[wi].sent, 0);
    assert_eq!(t.windows[wi].hist.as_ref().map_or(0, |h| h.count()), 0);
    assert_eq!(
        t.lateness().sends,
        70_000,
        "lateness still counts every result"
    );
}

#[test]
fn a_new_window_at_reload_starts_from_the_seconds_already_kept() {
    let mut m = model_with(vec![spec("slow", Metric::LatencyAvg, 30.0, 0, 2)]);
    let _ = drive(&mut m, 1000, 20, |_| Some(50.0));
    // A 10 s window appears: the ring already holds its seconds, so it is full at once, not
    // ten seconds later.
    m.replace_rules(vec![
        spec("slow", Metric::LatencyAvg, 30.0, 0, 2),
        spec("slow10", Metric::LatencyAvg, 30.0, 0, 10),
    ]);
    let mut out = Vec::new();
    let tick = Duration::from_millis(1_020_500);
    m.tick(tick, UNIX_EPOCH + tick, &mut out);
    let t = m.target(0).expect("target");
    let wi = m.lens.iter().position(|&l| l == 10).expect("10 s window");
    assert_eq!(
        t.windows[wi].sent, 10,
        "seconds 1010-1020, the last one without a probe yet"
    );
    let fired: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Alert(e) => Some(e.rule.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(fired, ["slow10"]);
}

#[test]
fn windows_follow_the_ring_through_a_stall_longer_than_it() {
    // The monitor stalled for longer than the ring keeps: the windows start again from what
    // the ring holds, without underflow or drift.
    let mut m = model_with(vec![spec("slow", Metric::LatencyAvg, 1e9, 0, 5)]);
    let _ = drive(&mut m, 1000, 10, |_| Some(5.0));
    let _ = drive(&mut m, 1100, 10, |_| Some(7.0));
    let t = m.target(0).expect("target");
    let wi = m.lens.iter().position(|&l| l == 5).expect("5 s window");
    assert_eq!(t.windows[wi].sent, 6, "seconds 1104-1109");
    assert_eq!(t.value(Metric::LatencyAvg, wi, 0), Some(7.0));
}

#[test]
fn an_outage_going_on_shows_its_probes_so_far() {
    let Sim { mut m, mut rings } = model_with(vec![]);
    let mut out = Vec::new();
    for seq in 1..=5u64 {
        m.result(
            &lost(0, seq, 1_000_000 + seq * 1000),
            UNIX_EPOCH + Duration::from_secs(1000 + seq),
            &mut rings,
            &mut out,
        );
    }
    let ongoing: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Outage { outage, .. } if outage.ongoing => Some(outage.clone()),
            _ => None,
        })
        .collect();
    // Down from the third lost probe on, and each notice counts what it holds.
    assert_eq!(
        ongoing
            .iter()
            .map(|o| (o.sent, o.received))
            .collect::<Vec<_>>(),
        [(3, 0), (4, 0), (5, 0)]
    );
    assert!(ongoing.iter().all(|o| o.end > o.start));
}
