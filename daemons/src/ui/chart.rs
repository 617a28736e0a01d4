//! Charts drawn on the server as SVG: the dashboard's outcome bars. Only numbers and fixed labels go
//! into the markup (no user text), and each bar carries a `<title>` for its tooltip.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

/// One bar: when it starts and the counts of each outcome group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bar {
    /// The start of the hour or day the bar covers.
    pub at: DateTime<Utc>,
    /// Succeeded.
    pub ok: u64,
    /// Failed, timed out or lost.
    pub bad: u64,
    /// Cancelled or skipped.
    pub off: u64,
}

impl Bar {
    fn total(&self) -> u64 {
        self.ok + self.bad + self.off
    }
}

const HEIGHT: f64 = 120.0;
const LABEL: f64 = 16.0;

/// How a bar's time is labelled: `hour` (`14:00`) or `day` (`12-01`); the page's script rewrites the
/// UTC label in the viewer's zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// Hourly bars.
    Hour,
    /// Daily bars.
    Day,
}

/// Stacked bars, one per entry, scaled to the largest; `caption` names the chart for screen readers.
/// Every `label_every`-th bar shows its label under it.
pub fn stacked_bars(caption: &str, bars: &[Bar], span: Span, label_every: usize) -> String {
    let (fmt, name) = match span {
        Span::Hour => ("%H:%M", "hour"),
        Span::Day => ("%m-%d", "day"),
    };
    let max = bars.iter().map(Bar::total).max().unwrap_or(0).max(1) as f64;
    // A fixed width, so every chart has the same proportions (and its labels their size).
    let width = 600.0;
    let slot = width / bars.len().max(1) as f64;
    let gap = (slot * 0.2).clamp(1.0, 6.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {width} {}\" role=\"img\" \
         aria-label=\"{caption}\">",
        HEIGHT + LABEL
    );
    for (i, b) in bars.iter().enumerate() {
        let x = i as f64 * slot + gap / 2.0;
        let mut y = HEIGHT;
        let _ = write!(
            svg,
            "<g><title>{} UTC: {} succeeded, {} failed, {} cancelled</title>",
            b.at.format("%Y-%m-%d %H:%M"),
            b.ok,
            b.bad,
            b.off
        );
        // A thin track so an empty hour still shows as a slot.
        let _ = write!(
            svg,
            "<rect class=\"track\" x=\"{x:.1}\" y=\"0\" width=\"{:.1}\" height=\"{HEIGHT}\"/>",
            slot - gap
        );
        for (class, n) in [("ok", b.ok), ("bad", b.bad), ("off", b.off)] {
            if n == 0 {
                continue;
            }
            let h = (n as f64 / max * (HEIGHT - 4.0)).max(1.5);
            y -= h;
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\"/>",
                slot - gap
            );
        }
        svg.push_str("</g>");
        if label_every > 0 && i % label_every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" class=\"axis\" data-at=\"{}\" data-fmt=\"{name}\">{}</text>",
                x,
                HEIGHT + LABEL - 3.0,
                b.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                b.at.format(fmt)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_say_their_counts() {
        let at: DateTime<Utc> = "2026-12-01T10:00:00Z".parse().unwrap();
        let bars = vec![
            Bar {
                at,
                ok: 3,
                bad: 1,
                off: 0,
            },
            Bar {
                at: at + chrono::TimeDelta::hours(1),
                ok: 0,
                bad: 0,
                off: 0,
            },
        ];
        let svg = stacked_bars("Outcomes", &bars, Span::Hour, 1);
        assert!(
            svg.contains("<title>2026-12-01 10:00 UTC: 3 succeeded, 1 failed, 0 cancelled</title>")
        );
        assert!(svg.contains(">10:00</text>"));
        assert!(svg.contains("class=\"ok\""));
        assert!(svg.contains("class=\"bad\""));
        assert!(!svg.contains("class=\"off\""), "no zero-height bar");
        assert_eq!(svg.matches("class=\"track\"").count(), 2);
    }
}
