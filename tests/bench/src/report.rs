//! The outputs: a table for humans, JSON for machines, and an SVG chart of latency against
//! load per scenario (BFF and floor).

use std::fmt::Write as _;

use crate::scenario::ScenarioReport;

/// The human table.
pub fn table(reports: &[ScenarioReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>6} {:>7} {:>7} {:>6}",
        "scenario",
        "rps",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "+p99 ms",
        "cpu µs",
        "floor µs",
        "ratio",
        "calls",
        "rss MB",
        "bytes"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "{:<20} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>8.1} {:>8.1} {:>6.2} {:>7.2} {:>7.1} {:>6}",
            r.scenario,
            r.rps,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.added_p99_ms,
            r.cpu_us_per_req,
            r.floor_cpu_us_per_req,
            r.cpu_us_per_req / r.floor_cpu_us_per_req,
            r.upstream_calls_per_req,
            r.rss_mb,
            r.response_bytes
        );
    }
    if let Some(first) = reports.first() {
        let _ = writeln!(
            out,
            "latency at {} req/s with {} ms upstreams; rps, cpu and calls at saturation with 0 ms upstreams; ratio = cpu / floor cpu",
            first.rate, first.upstream_latency_ms
        );
    }
    out
}

/// One chart per scenario: p99 latency (y) at each fixed rate (x), BFF and floor.
pub fn svg(reports: &[ScenarioReport]) -> String {
    const W: f64 = 300.0;
    const H: f64 = 200.0;
    const PAD: f64 = 40.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n",
        W * reports.len().max(1) as f64,
        H + 30.0
    );
    for (i, r) in reports.iter().enumerate() {
        let x0 = W * i as f64;
        let series = [(&r.bff, "#1f77b4", "BFF"), (&r.floor, "#ff7f0e", "floor")];
        let max_rate = series
            .iter()
            .flat_map(|(m, _, _)| m.latency.iter().map(|l| l.0))
            .fold(1.0, f64::max);
        let max_ms = series
            .iter()
            .flat_map(|(m, _, _)| m.latency.iter().map(|l| l.2))
            .filter(|v| v.is_finite())
            .fold(0.1, f64::max);
        let px = |rate: f64| x0 + PAD + (W - 2.0 * PAD) * rate / max_rate;
        let py = |ms: f64| H - PAD + 10.0 - (H - 2.0 * PAD) * ms / max_ms;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"14\">{} — p99 ms vs req/s</text>",
            x0 + PAD,
            r.scenario
        );
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>",
            x0 + PAD,
            py(0.0),
            x0 + W - PAD,
            py(0.0),
            x0 + PAD,
            py(0.0),
            x0 + PAD,
            py(max_ms)
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\">{max_ms:.1}</text>",
            x0 + 4.0,
            py(max_ms) + 4.0
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\">{max_rate:.0}</text>",
            px(max_rate) - 10.0,
            py(0.0) + 14.0
        );
        for (k, (measured, colour, label)) in series.iter().enumerate() {
            let points: Vec<String> = std::iter::once((0.0, 0.0))
                .chain(measured.latency.iter().map(|l| (l.0, l.2)))
                .filter(|(_, ms)| ms.is_finite())
                .map(|(rate, ms)| format!("{:.1},{:.1}", px(rate), py(ms)))
                .collect();
            let _ = writeln!(
                out,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                points.join(" ")
            );
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{label}</text>",
                x0 + W - PAD - 30.0,
                30.0 + 14.0 * k as f64
            );
        }
    }
    out.push_str("</svg>\n");
    out
}
