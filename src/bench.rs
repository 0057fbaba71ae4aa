//! The per-connection cost benchmark: fresh connections to the embedded target, one request
//! each, one after another, so that the figure is the handshake floor a suite pays per
//! connection (TCP or QUIC, TLS 1.3 without resumption, HTTP setup, one exchange).

use std::time::{Duration, Instant};

use crate::client::tls::{ConnectionTickets, Credentials, TicketJar};
use crate::client::{self, ConnectRequest, WireRequest};
use crate::embedded::EmbeddedTarget;
use crate::pki::Pki;
use misdirect_core::deployment::Role;
use misdirect_core::observe::ExchangeOutcome;
use misdirect_core::protocol::Protocol;

/// Timings of one protocol.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub protocol: Protocol,
    /// Sorted, one per connection.
    pub samples: Vec<Duration>,
    pub wall: Duration,
}

impl Measurement {
    /// The `fraction` quantile (0.5 is the median) by nearest rank.
    pub fn quantile(&self, fraction: f64) -> Duration {
        let last = self.samples.len().saturating_sub(1);
        let rank = ((last as f64) * fraction).round() as usize;
        self.samples
            .get(rank.min(last))
            .copied()
            .unwrap_or_default()
    }
}

/// A failure to benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("failed to set up: {0}")]
    Setup(String),
    #[error("connection {index} over {protocol} failed: {detail}")]
    Connection {
        index: usize,
        protocol: Protocol,
        detail: String,
    },
}

/// Opens `warmup + connections` fresh connections per protocol to a new embedded target and
/// times the last `connections`; every attempt has `deadline`.
pub async fn measure(
    protocols: &[Protocol],
    warmup: usize,
    connections: usize,
    deadline: Duration,
) -> Result<Vec<Measurement>, BenchError> {
    let pki = Pki::generate().map_err(|error| BenchError::Setup(error.to_string()))?;
    let credentials =
        Credentials::from_pki(&pki).map_err(|error| BenchError::Setup(error.to_string()))?;
    let target = EmbeddedTarget::start(&pki, None)
        .await
        .map_err(|error| BenchError::Setup(error.to_string()))?;
    let authority = format!(
        "{}:{}",
        Role::Primary.standard_name(),
        target.address().port()
    );
    let request = WireRequest::get(authority, "/");
    let jar = std::sync::Arc::new(TicketJar::default());
    let mut measurements = Vec::new();
    for &protocol in protocols {
        let mut samples = Vec::with_capacity(connections);
        let mut started = Instant::now();
        for index in 0..warmup + connections {
            if index == warmup {
                samples.clear();
                started = Instant::now();
            }
            let began = Instant::now();
            let connect = ConnectRequest {
                address: target.address(),
                sni: Some(Role::Primary.standard_name()),
                protocol,
                client_certificate: None,
                tickets: std::sync::Arc::new(ConnectionTickets::new(jar.clone(), "bench", None)),
                tls: None,
                own_framing: false,
            };
            let failed = |detail: String| BenchError::Connection {
                index,
                protocol,
                detail,
            };
            let (mut connection, _) = client::connect(&credentials, connect, deadline)
                .await
                .map_err(|error| failed(format!("{error:?}")))?;
            match tokio::time::timeout(deadline, connection.send(&request)).await {
                Ok(ExchangeOutcome::Response(response)) if response.status == 200 => {}
                Ok(other) => return Err(failed(other.to_string())),
                Err(_) => return Err(failed("no response within the deadline".to_owned())),
            }
            samples.push(began.elapsed());
        }
        let wall = started.elapsed();
        samples.sort();
        measurements.push(Measurement {
            protocol,
            samples,
            wall,
        });
    }
    Ok(measurements)
}

/// What h2load said about one run.
#[derive(Debug, Clone, PartialEq)]
pub struct H2loadFigures {
    pub succeeded: u64,
    /// Requests that failed, errored or timed out.
    pub failed: u64,
    pub elapsed: Duration,
}

impl H2loadFigures {
    pub fn requests_per_second(&self) -> f64 {
        self.succeeded as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Runs h2load (Debian's nghttp2-client) with `args` in a process group of its own, killed at
/// `deadline`; what it reported.
pub async fn h2load(args: &[String], deadline: Duration) -> Result<H2loadFigures, BenchError> {
    let mut command = tokio::process::Command::new("h2load");
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let failed = |detail: String| BenchError::Setup(format!("h2load {}: {detail}", args.join(" ")));
    let child = command
        .spawn()
        .map_err(|error| failed(format!("cannot start: {error}")))?;
    let output = tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .map_err(|_| failed(format!("did not finish within {} s", deadline.as_secs())))?
        .map_err(|error| failed(error.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse_h2load(&stdout).ok_or_else(|| {
        failed(format!(
            "no figures in its output: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    })
}

/// Reads `finished in 5.00s, …` and `requests: … N succeeded, N failed, N errored, N timeout`.
fn parse_h2load(output: &str) -> Option<H2loadFigures> {
    let finished = output
        .lines()
        .find_map(|line| line.strip_prefix("finished in "))?;
    let elapsed = finished.split(',').next()?.trim();
    let elapsed = if let Some(ms) = elapsed.strip_suffix("ms") {
        Duration::from_secs_f64(ms.parse::<f64>().ok()? / 1000.0)
    } else if let Some(us) = elapsed.strip_suffix("us") {
        Duration::from_secs_f64(us.parse::<f64>().ok()? / 1_000_000.0)
    } else {
        Duration::from_secs_f64(elapsed.strip_suffix('s')?.parse().ok()?)
    };
    let requests = output
        .lines()
        .find_map(|line| line.strip_prefix("requests: "))?;
    let count = |word: &str| {
        requests.split(',').find_map(|part| {
            let (number, name) = part.trim().split_once(' ')?;
            (name == word).then(|| number.parse::<u64>().ok()).flatten()
        })
    };
    Some(H2loadFigures {
        succeeded: count("succeeded")?,
        failed: count("failed")? + count("errored")? + count("timeout")?,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h2load_figures_are_read() {
        let output = "starting benchmark...\n\
            finished in 5.00s, 97363.40 req/s, 3.16MB/s\n\
            requests: 486817 total, 486917 started, 486817 done, 486817 succeeded, 0 failed, 0 errored, 0 timeout\n";
        let figures = parse_h2load(output).expect("parsed");
        assert_eq!(figures.succeeded, 486_817);
        assert_eq!(figures.failed, 0);
        assert_eq!(figures.elapsed, Duration::from_secs(5));
        let short = "finished in 81.50ms, 12269.94 req/s, 1.2MB/s\n\
            requests: 1000 total, 1000 started, 1000 done, 998 succeeded, 2 failed, 2 errored, 0 timeout\n";
        let figures = parse_h2load(short).expect("parsed");
        assert_eq!(figures.failed, 4);
        assert!((figures.elapsed.as_secs_f64() - 0.0815).abs() < 1e-9);
        assert_eq!(parse_h2load("no server"), None);
    }
}
