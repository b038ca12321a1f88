//! The benchmark tool, end to end in smoke mode: every scenario reports every figure, with
//! no failed requests, and no BFF makes more upstream calls than the hand-written floor.
//! No timing is asserted.

use std::process::Command;

use serde_json::Value;

#[test]
fn smoke_mode_reports_every_scenario_completely() {
    let json = std::env::temp_dir().join(format!(
        "switchyard-bench-smoke-{}.json",
        std::process::id()
    ));
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard-bench"))
        .args(["--smoke", "--json"])
        .arg(&json)
        .output()
        .expect("the benchmark binary runs");
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("JSON written")).expect("valid JSON");
    let svg = std::fs::read_to_string(json.with_extension("svg")).expect("chart written");
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_file(json.with_extension("svg"));
    assert!(svg.starts_with("<svg"));

    let scenarios = report.as_array().expect("one object per scenario");
    let names: Vec<&str> = scenarios
        .iter()
        .filter_map(|s| s["scenario"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "web-dashboard-n5",
            "web-dashboard-n50",
            "mobile-dashboard",
            "iot-readings-20"
        ]
    );
    for scenario in scenarios {
        let name = &scenario["scenario"];
        for field in [
            "rps",
            "p50_ms",
            "p99_ms",
            "p999_ms",
            "added_p99_ms",
            "cpu_us_per_req",
            "floor_cpu_us_per_req",
            "upstream_calls_per_req",
            "rss_mb",
            "response_bytes",
        ] {
            assert!(
                scenario[field].as_f64().is_some(),
                "{name}: {field} missing or not a number"
            );
        }
        assert!(scenario["rps"].as_f64() > Some(0.0), "{name}");
        assert!(scenario["response_bytes"].as_u64() > Some(0), "{name}");
        for target in ["bff", "floor"] {
            assert_eq!(
                scenario[target]["errors"], 0,
                "{name} {target}: failed requests"
            );
            let swept: Vec<u64> = scenario[target]["latency"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|point| point["p99_ms"].as_f64().is_some())
                .filter_map(|point| point["upstream_ms"].as_u64())
                .collect();
            assert_eq!(
                swept,
                [0, 2],
                "{name} {target}: latency measured with 0 and 2 ms upstreams"
            );
        }
        let bff_calls = scenario["upstream_calls_per_req"]
            .as_f64()
            .unwrap_or(f64::MAX);
        let floor_calls = scenario["floor"]["upstream_calls_per_req"]
            .as_f64()
            .unwrap_or(0.0);
        assert!(bff_calls > 0.0, "{name}: no upstream calls");
        assert!(
            bff_calls <= floor_calls + 0.01,
            "{name}: the BFF made {bff_calls} upstream calls per request, the floor {floor_calls}"
        );
    }
}
