//! Figures: collecting runs, the median/min/max table, machine facts, RSS.

use std::fmt::Write as _;

/// One measured figure over several runs.
pub struct Figure {
    pub name: String,
    pub unit: &'static str,
    pub values: Vec<f64>,
}

impl Figure {
    pub fn new(name: impl Into<String>, unit: &'static str) -> Self {
        Figure {
            name: name.into(),
            unit,
            values: Vec::new(),
        }
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    pub fn median(&self) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return f64::NAN;
        }
        if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        }
    }
}

fn fmt(x: f64) -> String {
    if x.abs() >= 1000.0 {
        let s = format!("{:.0}", x);
        let mut out = String::new();
        for (i, c) in s.chars().rev().enumerate() {
            if i > 0 && i % 3 == 0 && c != '-' {
                out.push(',');
            }
            out.push(c);
        }
        out.chars().rev().collect()
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// Prints the markdown table of figures.
pub fn table(title: &str, params: &str, figures: &[Figure]) {
    let mut s = String::new();
    let _ = writeln!(s, "\n### {title}\n\n{params}\n");
    let _ = writeln!(
        s,
        "| figure | median | min | max | unit |\n|---|---:|---:|---:|---|"
    );
    for f in figures {
        let v = f.sorted();
        let (min, max) = (
            v.first().copied().unwrap_or(f64::NAN),
            v.last().copied().unwrap_or(f64::NAN),
        );
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            f.name,
            fmt(f.median()),
            fmt(min),
            fmt(max),
            f.unit
        );
    }
    #[allow(clippy::print_stdout)]
    {
        println!("{s}");
    }
}

/// Prints one JSON line describing a run.
pub fn json_line(
    workload: &str,
    run: usize,
    params: serde_json::Value,
    figures: serde_json::Value,
) {
    let line = serde_json::json!({
        "workload": workload,
        "run": run,
        "machine": machine(),
        "version": env!("CARGO_PKG_VERSION"),
        "params": params,
        "figures": figures,
    });
    #[allow(clippy::print_stdout)]
    {
        println!("{line}");
    }
}

fn machine() -> serde_json::Value {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let mem_kib = status_kib("/proc/meminfo", "MemTotal:").unwrap_or(0);
    serde_json::json!({"cpus": cpus, "cpu": model, "mem_gib": mem_kib / 1024 / 1024})
}

fn status_kib(file: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resident set size of this process, MiB.
pub fn rss_mib() -> f64 {
    status_kib("/proc/self/status", "VmRSS:").unwrap_or(0) as f64 / 1024.0
}

/// Peak resident set size of this process, MiB.
pub fn peak_rss_mib() -> f64 {
    status_kib("/proc/self/status", "VmHWM:").unwrap_or(0) as f64 / 1024.0
}

/// CPU time (user + system) of this process, seconds.
pub fn cpu_secs() -> f64 {
    stat_cpu_secs("/proc/self/stat")
}

/// CPU time (user + system) of process `pid`, seconds (0 if it is gone).
pub fn proc_cpu_secs(pid: u32) -> f64 {
    stat_cpu_secs(&format!("/proc/{pid}/stat"))
}

fn stat_cpu_secs(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}
