//! This process's CPU time and resident memory, read from Linux's `/proc`.
//!
//! `/proc/self/stat` gives user and system time in clock ticks; the tick
//! is `USER_HZ`, fixed at 100 in the kernel's user-space ABI on every
//! architecture we run on (proc(5), "times(2)"). `/proc/self/status`
//! gives `VmRSS` in kB.
//!
//! Reads untrusted input: no (kernel files; a surprise gives `None`).

use serde::{Deserialize, Serialize};

const USER_HZ: f64 = 100.0;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    /// User plus system CPU seconds since the process started.
    pub cpu_seconds: Option<f64>,
    /// Resident set size in bytes.
    pub resident_bytes: Option<u64>,
}

pub fn current() -> ProcessStats {
    ProcessStats {
        cpu_seconds: std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| cpu_seconds(&s)),
        resident_bytes: std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| resident_bytes(&s)),
    }
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: field 3 (state) is index 0, so field N is N - 3.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "1234 (camp (us) mail) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 9 0 100 1000 200";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(cpu_seconds("garbage"), None);
        assert_eq!(
            resident_bytes("Name:\tx\nVmRSS:\t  2048 kB\n"),
            Some(2048 * 1024)
        );
        let now = current();
        assert!(now.cpu_seconds.is_some() && now.resident_bytes.is_some());
    }
}
