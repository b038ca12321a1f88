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
    let _ = writeln!(
        out,
        "rps, cpu and calls: at saturation with 0 ms upstreams; ratio = cpu / floor cpu; \
         latency: at the headline point (highest rate, highest upstream latency below)\n"
    );
    let _ = writeln!(
        out,
        "{:<20} {:>9} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}",
        "scenario",
        "upstream",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "floor50",
        "floor99",
        "floor999",
        "+p99 ms",
        "errors"
    );
    for r in reports {
        for (bff, floor) in r.bff.latency.iter().zip(&r.floor.latency) {
            let _ = writeln!(
                out,
                "{:<20} {:>6} ms {:>7.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>7}",
                r.scenario,
                bff.upstream_ms,
                bff.rate,
                bff.p50_ms,
                bff.p99_ms,
                bff.p999_ms,
                floor.p50_ms,
                floor.p99_ms,
                floor.p999_ms,
                bff.p99_ms - floor.p99_ms,
                bff.errors + floor.errors
            );
        }
    }
    for r in reports {
        let (Some(bounded), Some(unbounded)) = (r.bff.overload, r.floor.overload) else {
            continue;
        };
        let _ = writeln!(
            out,
            "\n{:<26} {:>5} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7}",
            "overload (closed loop)",
            "conns",
            "admit/s",
            "p50 ms",
            "p99 ms",
            "shed",
            "shed p50",
            "shed p99",
            "failed",
            "rss MB"
        );
        for (label, point) in [("with admission control", bounded), ("without", unbounded)] {
            let _ = writeln!(
                out,
                "{:<26} {:>5} {:>9.0} {:>8.2} {:>8.2} {:>8} {:>8.3} {:>8.3} {:>7} {:>7.1}",
                label,
                point.connections,
                point.admitted_rps,
                point.admitted_p50_ms,
                point.admitted_p99_ms,
                point.shed,
                point.shed_p50_ms,
                point.shed_p99_ms,
                point.failed,
                point.rss_mb
            );
        }
    }
    out
}

/// One chart per scenario: p99 latency (y) against arrival rate (x), one line per target
/// (BFF solid, floor dashed) and upstream latency (colour).
pub fn svg(reports: &[ScenarioReport]) -> String {
    const W: f64 = 320.0;
    const H: f64 = 220.0;
    const PAD: f64 = 40.0;
    const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n",
        W * reports.len().max(1) as f64,
        H + 20.0
    );
    for (i, r) in reports.iter().enumerate() {
        let x0 = W * i as f64;
        let points = || r.bff.latency.iter().chain(&r.floor.latency);
        let max_rate = points().map(|l| l.rate).fold(1.0, f64::max);
        let max_ms = points()
            .map(|l| l.p99_ms)
            .filter(|v| v.is_finite())
            .fold(0.1, f64::max);
        let px = |rate: f64| x0 + PAD + (W - 2.0 * PAD) * rate / max_rate;
        let py = |ms: f64| H - PAD - (H - 2.0 * PAD) * ms / max_ms;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"14\">{}: p99 ms against req/s</text>",
            x0 + PAD,
            r.scenario
        );
        let _ = writeln!(
            out,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#999\"/>\
             <line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{3}\" stroke=\"#999\"/>",
            x0 + PAD,
            py(0.0),
            x0 + W - PAD,
            py(max_ms)
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\">{max_ms:.1}</text><text x=\"{}\" y=\"{}\">{max_rate:.0}</text>",
            x0 + 4.0,
            py(max_ms) + 4.0,
            px(max_rate) - 10.0,
            py(0.0) + 14.0
        );
        let mut upstreams: Vec<u64> = points().map(|l| l.upstream_ms).collect();
        upstreams.sort_unstable();
        upstreams.dedup();
        let mut legend = 0.0;
        for (k, &upstream_ms) in upstreams.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            for (measured, label, dash) in [(&r.bff, "BFF", ""), (&r.floor, "floor", "4 3")] {
                let line: Vec<String> = std::iter::once((0.0, 0.0))
                    .chain(
                        measured
                            .latency
                            .iter()
                            .filter(|l| l.upstream_ms == upstream_ms && l.p99_ms.is_finite())
                            .map(|l| (l.rate, l.p99_ms)),
                    )
                    .map(|(rate, ms)| format!("{:.1},{:.1}", px(rate), py(ms)))
                    .collect();
                let _ = writeln!(
                    out,
                    "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" \
                     stroke-dasharray=\"{dash}\" points=\"{}\"/>",
                    line.join(" ")
                );
                let _ = writeln!(
                    out,
                    "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{label}, {upstream_ms} ms upstreams</text>",
                    x0 + PAD + 8.0,
                    30.0 + legend
                );
                legend += 13.0;
            }
        }
    }
    out.push_str("</svg>\n");
    out
}
