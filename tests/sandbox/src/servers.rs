//! What the test support for real servers (Redis, NATS, a Kafka-protocol broker) shares:
//! whether a server's binary is installed, and free loopback ports.

use std::net::TcpListener;
use std::process::{Command, Stdio};

/// Whether `binary` runs here (`binary probe` succeeds). When it does not, `test` is
/// told it is skipped, except under `CI=true`, where that is a failure naming `install`.
pub fn installed(binary: &str, probe: &str, test: &str, install: &str) -> bool {
    let found = Command::new(binary)
        .arg(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: {binary} is not installed, and CI=true requires it ({install})"
        );
        eprintln!("{test}: skipped, {binary} is not installed");
    }
    found
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// Waits (at most `seconds`) until something accepts connections on `port`.
pub fn wait_for_port(port: u16, seconds: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}
