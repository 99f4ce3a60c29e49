//! The process's own figures from `/proc/self`, for `/metrics`.

/// Resident memory, CPU time and start time.
pub struct ProcessFigures {
    /// Resident set size.
    pub resident_bytes: u64,
    /// User + system CPU time.
    pub cpu_seconds: f64,
    /// Start, seconds since the Unix epoch.
    pub start_time_s: u64,
}

/// Reads them; `None` where `/proc` is not there or not as expected.
pub fn read() -> Option<ProcessFigures> {
    use nix::unistd::{sysconf, SysconfVar};
    let ticks = sysconf(SysconfVar::CLK_TCK).ok()??.max(1) as f64;
    let page = sysconf(SysconfVar::PAGE_SIZE).ok()??.max(1) as u64;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) is index 11, stime 12, starttime (22) 19.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let start_ticks: u64 = fields.get(19)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(ProcessFigures {
        resident_bytes: resident_pages * page,
        cpu_seconds: (utime + stime) as f64 / ticks,
        start_time_s: boot + (start_ticks as f64 / ticks) as u64,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn figures_of_this_process_are_plausible() {
        let p = super::read().expect("/proc/self");
        assert!(p.resident_bytes > 100_000, "{}", p.resident_bytes);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        assert!(p.start_time_s <= now + 1 && p.start_time_s + 3600 > now);
    }
}
