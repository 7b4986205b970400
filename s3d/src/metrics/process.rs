//! The process's own figures, under the names Prometheus' client libraries use:
//! CPU seconds, resident and virtual memory, open and allowed descriptors, start time.
//! Read from `/proc/self` at each scrape (Linux only, as the server is).

use super::text::{Exposition, Kind};

pub(crate) fn write(e: &mut Exposition) {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as f64;
    // Fields after the command name (which may hold spaces), numbered as in proc(5) from 3.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> f64 {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    e.single(
        "process_cpu_seconds_total",
        Kind::Counter,
        "User and system CPU time spent, in seconds.",
        (field(14) + field(15)) / ticks,
    );
    e.single(
        "process_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory size in bytes.",
        field(24) * page,
    );
    e.single(
        "process_virtual_memory_bytes",
        Kind::Gauge,
        "Virtual memory size in bytes.",
        field(23),
    );
    let boot = std::fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    e.single(
        "process_start_time_seconds",
        Kind::Gauge,
        "Start time of the process since the Unix epoch, in seconds.",
        boot + field(22) / ticks,
    );
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    e.single(
        "process_open_fds",
        Kind::Gauge,
        "Open file descriptors.",
        open as f64,
    );
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the limit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        e.single(
            "process_max_fds",
            Kind::Gauge,
            "The most file descriptors the process may open.",
            limit.rlim_cur as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let mut e = Exposition::default();
        write(&mut e);
        let text = e.finish();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} "))?.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
        };
        assert!(value("process_resident_memory_bytes") > 1e6);
        assert!(value("process_open_fds") >= 3.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(
            start <= now + 1.0 && start > now - 86_400.0 * 30.0,
            "{start}"
        );
    }
}
