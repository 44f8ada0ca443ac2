//! CPU time of this process from `/proc` (no `getrusage`: the workspace forbids `unsafe`).

use std::fs;

/// Linux exports `utime`/`stime` in `USER_HZ` ticks, which is 100 on every
/// mainstream architecture (it is fixed ABI, independent of `CONFIG_HZ`).
const USER_HZ: f64 = 100.0;

/// A CPU-time sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSample {
    /// User time of the whole process, seconds (10 ms resolution).
    pub user_s: f64,
    /// System time of the whole process, seconds (10 ms resolution).
    pub sys_s: f64,
    /// On-CPU time of the calling thread, nanoseconds (`/proc/thread-self/schedstat`), if readable.
    pub thread_ns: Option<u64>,
}

impl CpuSample {
    /// Samples now; zeros if `/proc` is unavailable.
    pub fn now() -> CpuSample {
        let (user_s, sys_s) =
            fs::read_to_string("/proc/self/stat").ok().and_then(|s| parse_stat(&s)).unwrap_or_default();
        let thread_ns = fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()));
        CpuSample { user_s, sys_s, thread_ns }
    }

    /// `self - earlier`.
    pub fn since(&self, earlier: &CpuSample) -> CpuSample {
        CpuSample {
            user_s: (self.user_s - earlier.user_s).max(0.0),
            sys_s: (self.sys_s - earlier.sys_s).max(0.0),
            thread_ns: match (self.thread_ns, earlier.thread_ns) {
                (Some(a), Some(b)) => Some(a.saturating_sub(b)),
                _ => None,
            },
        }
    }
}

/// CPU time, seconds: the whole machine's busy time (`/proc/stat`) and this
/// process's plus its reaped children's (`utime+stime+cutime+cstime`).
/// The difference is load from other processes: benchmark noise.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineSample {
    /// Busy time of all CPUs, seconds.
    pub machine_busy_s: f64,
    /// This process and its waited-for children, seconds.
    pub ours_s: f64,
}

impl MachineSample {
    /// Samples now; zeros if `/proc` is unavailable.
    pub fn now() -> MachineSample {
        let machine_busy_s = fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("cpu "))?;
                let v: Vec<f64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
                // user nice system idle iowait irq softirq steal ...: busy excludes idle and iowait.
                Some(v.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, x)| x).sum::<f64>())
            })
            .unwrap_or(0.0)
            / USER_HZ;
        let ours_s = fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let rest = s.get(s.rfind(')')? + 1..)?.to_string();
                let f: Vec<f64> = rest.split_whitespace().skip(11).take(4).filter_map(|x| x.parse().ok()).collect();
                (f.len() == 4).then(|| f.iter().sum::<f64>())
            })
            .unwrap_or(0.0)
            / USER_HZ;
        MachineSample { machine_busy_s, ours_s }
    }

    /// Average cores used by other processes between `earlier` and now, over `wall_s`.
    pub fn other_cores_since(&self, earlier: &MachineSample, wall_s: f64) -> f64 {
        let other = (self.machine_busy_s - earlier.machine_busy_s) - (self.ours_s - earlier.ours_s);
        (other / wall_s.max(1e-9)).max(0.0)
    }
}

/// `(utime, stime)` in seconds from the text of `/proc/<pid>/stat`.
fn parse_stat(s: &str) -> Option<(f64, f64)> {
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = s.get(s.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: f64 = fields.get(15 - 3)?.parse().ok()?;
    Some((utime / USER_HZ, stime / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let s = "1234 (a b) R 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0 1 0 100 0 0";
        assert_eq!(parse_stat(s), Some((2.5, 0.3)));
    }

    #[test]
    fn sampling_this_process_works() {
        let a = CpuSample::now();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        let d = CpuSample::now().since(&a);
        assert!(d.user_s >= 0.0 && d.sys_s >= 0.0);
    }
}
