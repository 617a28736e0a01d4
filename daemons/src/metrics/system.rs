//! The process's and the host's resources, read from `/proc` (and `statvfs` for the data directory's
//! file system) on every scrape: nothing runs between scrapes. Where a file cannot be read (another OS,
//! a locked-down `/proc`) its series are left out.

use std::path::PathBuf;

use jobsched::prometheus_client::collector::Collector;
use jobsched::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use jobsched::prometheus_client::metrics::MetricType;
use jobsched::prometheus_client::metrics::counter::ConstCounter;
use jobsched::prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of `/proc` times (USER_HZ, fixed at 100 in the kernel's ABI).
const TICKS: f64 = 100.0;
/// The page size `/proc/self/stat` counts resident memory in.
const PAGE: f64 = 4096.0;

/// Encodes process and host series (`process_*`, `host_*`; see `docs/OPERATIONS.md`).
#[derive(Debug)]
pub struct SystemCollector {
    /// The file system whose space is reported (the data directory's).
    pub disk: PathBuf,
    /// When the process started, seconds since the epoch.
    pub started: f64,
}

fn gauge(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: f64) -> std::fmt::Result {
    let m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

fn counter(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: f64) -> std::fmt::Result {
    let m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

/// `(utime + stime seconds, threads, resident bytes)` from `/proc/self/stat`.
fn self_stat() -> Option<(f64, f64, f64)> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 3.. of proc(5), so field n is f[n - 3].
    let num = |n: usize| f.get(n - 3)?.parse::<f64>().ok();
    Some(((num(14)? + num(15)?) / TICKS, num(20)?, num(24)? * PAGE))
}

fn open_fds() -> Option<f64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as f64)
}

fn max_fds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `(mode, seconds)` of every CPU together, from the first line of `/proc/stat`.
fn host_cpu() -> Option<Vec<(&'static str, f64)>> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let modes = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ];
    Some(
        modes
            .iter()
            .zip(line.split_whitespace())
            .filter_map(|(m, v)| Some((*m, v.parse::<f64>().ok()? / TICKS)))
            .collect(),
    )
}

/// `(MemTotal, MemAvailable)` in bytes.
fn host_memory() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = |key: &str| -> Option<f64> {
        let l = text.lines().find(|l| l.starts_with(key))?;
        Some(l.split_whitespace().nth(1)?.parse::<f64>().ok()? * 1024.0)
    };
    Some((kb("MemTotal:")?, kb("MemAvailable:")?))
}

/// `(device, received bytes, sent bytes)` of every interface but loopback.
fn host_network() -> Option<Vec<(String, f64, f64)>> {
    let text = std::fs::read_to_string("/proc/net/dev").ok()?;
    Some(
        text.lines()
            .skip(2)
            .filter_map(|l| {
                let (dev, rest) = l.split_once(':')?;
                let dev = dev.trim();
                let f: Vec<&str> = rest.split_whitespace().collect();
                (dev != "lo").then(|| {
                    let n = |i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                    (dev.to_owned(), n(0), n(8))
                })
            })
            .collect(),
    )
}

fn load1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Collector for SystemCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        if let Some((cpu, threads, rss)) = self_stat() {
            counter(
                &mut e,
                "process_cpu_seconds",
                "CPU time of this process, user and system",
                cpu,
            )?;
            gauge(
                &mut e,
                "process_threads",
                "Threads of this process",
                threads,
            )?;
            gauge(
                &mut e,
                "process_resident_memory_bytes",
                "Resident memory of this process",
                rss,
            )?;
        }
        if let Some(n) = open_fds() {
            gauge(
                &mut e,
                "process_open_fds",
                "Open file descriptors of this process",
                n,
            )?;
        }
        if let Some(n) = max_fds() {
            gauge(
                &mut e,
                "process_max_fds",
                "The limit of open file descriptors",
                n,
            )?;
        }
        gauge(
            &mut e,
            "process_start_time_seconds",
            "When this process started, seconds since the epoch",
            self.started,
        )?;
        if let Some(modes) = host_cpu() {
            let mut m = e.encode_descriptor(
                "host_cpu_seconds",
                "CPU time of the host's CPUs together, by mode",
                None,
                MetricType::Counter,
            )?;
            for (mode, v) in modes {
                let labels = [("mode", mode)];
                ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
            }
        }
        if let Some((total, available)) = host_memory() {
            gauge(
                &mut e,
                "host_memory_total_bytes",
                "The host's memory",
                total,
            )?;
            gauge(
                &mut e,
                "host_memory_available_bytes",
                "The host's memory available to new work (MemAvailable)",
                available,
            )?;
        }
        if let Some(l) = load1() {
            gauge(
                &mut e,
                "host_load1",
                "The host's load average over a minute",
                l,
            )?;
        }
        if let Ok(st) = nix::sys::statvfs::statvfs(&self.disk) {
            let frag = st.fragment_size() as f64;
            gauge(
                &mut e,
                "host_disk_total_bytes",
                "Size of the file system of the data directory",
                st.blocks() as f64 * frag,
            )?;
            gauge(
                &mut e,
                "host_disk_available_bytes",
                "Space available to this process on the file system of the data directory",
                st.blocks_available() as f64 * frag,
            )?;
        }
        if let Some(devs) = host_network() {
            for (name, help, pick) in [
                (
                    "host_network_receive_bytes",
                    "Bytes received, by interface",
                    0,
                ),
                ("host_network_transmit_bytes", "Bytes sent, by interface", 1),
            ] {
                let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
                for (dev, rx, tx) in &devs {
                    let labels = [("device", dev.as_str())];
                    let v = if pick == 0 { *rx } else { *tx };
                    ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}
