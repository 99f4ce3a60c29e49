//! Human units for traffic, one spelling everywhere (CLI, status lines, TUI, reports): bytes in
//! IEC (KiB, MiB) by default or SI (kB, MB), rates in bytes/s or, for network people, bit/s
//! (always SI: Mbit/s). The dashboard's JavaScript spells bit rates the same way.

/// How traffic is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Units {
    /// Powers of 1000 (kB, MB) instead of 1024 (KiB, MiB).
    pub si: bool,
    /// Rates in bit/s.
    pub bits: bool,
}

fn scaled(v: f64, base: f64, names: &[&str]) -> String {
    let mut v = v;
    let mut i = 0;
    while v.abs() >= base && i + 1 < names.len() {
        v /= base;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", names[0])
    } else if v < 10.0 {
        format!("{v:.2} {}", names[i])
    } else if v < 100.0 {
        format!("{v:.1} {}", names[i])
    } else {
        format!("{v:.0} {}", names[i])
    }
}

impl Units {
    /// A byte count: `512 B`, `1.50 KiB`, `12.3 MiB`, `1.20 GiB`.
    pub fn bytes(&self, v: u64) -> String {
        if self.si {
            scaled(v as f64, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB", "EB"])
        } else {
            scaled(
                v as f64,
                1024.0,
                &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
            )
        }
    }

    /// A rate given in bytes/s: `1.50 MiB/s`, `1.57 MB/s` or `12.6 Mbit/s`; `-` when unknown.
    pub fn rate(&self, bytes_per_sec: Option<f64>) -> String {
        let Some(v) = bytes_per_sec else {
            return "-".into();
        };
        if self.bits {
            scaled(
                v * 8.0,
                1000.0,
                &["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"],
            )
        } else if self.si {
            scaled(v, 1000.0, &["B/s", "kB/s", "MB/s", "GB/s", "TB/s"])
        } else {
            scaled(v, 1024.0, &["B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s"])
        }
    }
}

/// Packets per second: whole numbers, one decimal below 10; `-` when unknown.
pub fn packet_rate(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(0.0) => "0".into(),
        Some(v) if v < 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_rates_in_each_system() {
        let iec = Units::default();
        let si = Units {
            si: true,
            bits: false,
        };
        let bits = Units {
            si: false,
            bits: true,
        };
        assert_eq!(iec.bytes(0), "0 B");
        assert_eq!(iec.bytes(1023), "1023 B");
        assert_eq!(iec.bytes(1536), "1.50 KiB");
        assert_eq!(iec.bytes(300 * 1024 * 1024), "300 MiB");
        assert_eq!(si.bytes(1_500_000), "1.50 MB");
        assert_eq!(iec.rate(Some(1_048_576.0)), "1.00 MiB/s");
        assert_eq!(si.rate(Some(1_000_000.0)), "1.00 MB/s");
        assert_eq!(bits.rate(Some(1_250_000.0)), "10.0 Mbit/s");
        assert_eq!(bits.rate(Some(100.0)), "800 bit/s");
        assert_eq!(iec.rate(None), "-");
        assert_eq!(packet_rate(Some(2.25)), "2.2");
        assert_eq!(packet_rate(Some(1234.4)), "1234");
    }
}
