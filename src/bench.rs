//! The per-connection cost benchmark: fresh connections to the embedded target, one request
//! each, one after another, so that the figure is the handshake floor a suite pays per
//! connection (TCP or QUIC, TLS 1.3 without resumption, HTTP setup, one exchange).

use std::time::{Duration, Instant};

use crate::client::tls::{ConnectionTickets, Credentials, TicketJar};
use crate::client::{self, AuthorityField, ConnectRequest, WireRequest};
use crate::embedded::EmbeddedTarget;
use crate::pki::Pki;
use misdirect_core::deployment::Role;
use misdirect_core::observe::ExchangeOutcome;
use misdirect_core::protocol::Protocol;
use misdirect_core::scenario::{Scheme, TargetForm};

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
    let request = WireRequest {
        method: "GET".to_owned(),
        scheme: Scheme::Https,
        authority_field: AuthorityField::Once,
        authority,
        host: None,
        form: TargetForm::Origin,
        path: "/".to_owned(),
        headers: Vec::new(),
        body: None,
    };
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
