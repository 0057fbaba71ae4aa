//! One server case's steps: its named connections (opened with the SNI, ALPN, client certificate
//! and ticket the scenario asks for, reopened the same way where HTTP/1.1 allows the target to
//! close), and its requests, sent on the connection each names, every one under the step
//! deadline and recorded as it happens.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinSet;

use super::fixture::ServerFixture;
use super::record::Record;
use super::{Runner, Stop, case_segment, request_prefix};
use crate::client::tls::{ConnectionTickets, TicketJar};
use crate::client::{
    self, AuthorityField, ConnectError, ConnectRequest, Connection, WireRequest, bounded,
};
use misdirect_core::conclude::Inapplicable;
use misdirect_core::deployment::{REQUEST_ID_HEADER, Role};
use misdirect_core::observe::{ConnectionRecord, ConnectionResult, Exchange, ExchangeOutcome};
use misdirect_core::protocol::Protocol;
use misdirect_core::scenario::{
    AuthorityHost, CASE_SEGMENT, Connect, Request, Route, Scenario, Scheme, Send, Step, TlsVersion,
};

/// Longest wait, at a case's end, for the SETTINGS that lead the control streams of an HTTP/3
/// target's connections (and the ORIGIN frames that may follow them); they are normally in long
/// before.
const CONTROL_STREAM_WAIT: Duration = Duration::from_millis(200);

/// Carries out a server scenario's steps against `fixture`, recording into `record`; `Err` when
/// the case stops applying at a step.
pub(super) async fn run(
    runner: &Runner,
    scenario: &Scenario,
    protocol: Protocol,
    fixture: &ServerFixture,
    record: &Arc<Record>,
) -> Result<(), Stop> {
    let mut session = Session {
        runner,
        scenario,
        protocol,
        address: fixture.address,
        h3_port: fixture.h3_port,
        record,
        jar: Arc::new(TicketJar::default()),
        connections: HashMap::new(),
        gateway: scenario.gateway,
        request_prefix: request_prefix(scenario, protocol),
        case_segment: case_segment(&runner.run_mark, scenario, protocol),
    };
    for (index, step) in scenario.steps.iter().enumerate() {
        let proceed = match step {
            Step::Connect(connect) => session.connect(connect).await,
            Step::Send(send) => {
                session.send(index, send).await;
                Ok(())
            }
        };
        if let Err(why) = proceed {
            session.keep_origin_frames().await;
            return Err(Stop::Inapplicable { step: index, why });
        }
    }
    session.keep_origin_frames().await;
    Ok(())
}

/// A connection slot of one case.
enum Slot {
    Open(Connection, Dial),
    Refused(String),
    Failed(String),
}

/// How a named connection was opened, so that an HTTP/1.1 connection the target closed can be
/// opened again the same way.
#[derive(Clone)]
struct Dial {
    sni: Option<String>,
    client_certificate: Option<Role>,
    tickets: Arc<ConnectionTickets>,
    protocol: Protocol,
    address: SocketAddr,
    /// HTTP/2 written by hand: the connection carries a request the h2 crate cannot send.
    own_framing: bool,
    tls: Option<TlsVersion>,
}

struct Session<'a> {
    runner: &'a Runner,
    scenario: &'a Scenario,
    /// The case's protocol.
    protocol: Protocol,
    /// The target's TCP address, and the UDP port of its HTTP/3 endpoint if it has one.
    address: SocketAddr,
    h3_port: Option<u16>,
    record: &'a Arc<Record>,
    jar: Arc<TicketJar>,
    connections: HashMap<String, Slot>,
    /// Put a request ID on every request, for the mock upstreams to record.
    gateway: bool,
    /// Begins every request ID of this case, so that cases sharing upstreams stay apart.
    request_prefix: String,
    /// What `{case}` in a path stands for.
    case_segment: String,
}

impl Session<'_> {
    /// Opens a connection; `Err` says why the case does not apply from here on.
    async fn connect(&mut self, connect: &Connect) -> Result<(), Inapplicable> {
        let (protocol, address) = self.route(&connect.route)?;
        let own_framing = protocol == Protocol::Http2
            && self
                .scenario
                .steps
                .iter()
                .filter_map(|step| match step {
                    Step::Send(send) if send.connection == connect.name => Some(send),
                    _ => None,
                })
                .flat_map(|send| &send.requests)
                .any(|request| self.wire(request, self.address).needs_own_framing());
        let dial = Dial {
            sni: connect
                .sni
                .map(|role| self.runner.deployment.name(role).to_owned()),
            client_certificate: connect.client_certificate,
            tickets: Arc::new(ConnectionTickets::new(
                Arc::clone(&self.jar),
                &connect.name,
                connect.resume.as_deref(),
            )),
            protocol,
            address,
            own_framing,
            tls: connect.tls,
        };
        self.record.event(
            &connect.name,
            format!(
                "connect {} {} SNI {} ALPN {}{}{}{}",
                if protocol == Protocol::Http3 {
                    "udp"
                } else {
                    "tcp"
                },
                address,
                dial.sni.as_deref().unwrap_or("(none)"),
                String::from_utf8_lossy(protocol.alpn()),
                connect
                    .client_certificate
                    .map(|tenant| format!(", with the client certificate of {tenant}'s CA"))
                    .unwrap_or_default(),
                connect
                    .tls
                    .map(|version| format!(", TLS {} only", version.key()))
                    .unwrap_or_default(),
                connect
                    .resume
                    .as_ref()
                    .map(|source| format!(", resuming the session of {source}"))
                    .unwrap_or_default(),
            ) + if own_framing {
                " (HTTP/2 frames written by hand)"
            } else {
                ""
            },
        );
        let (result, slot) = self
            .dial(&connect.name, dial.clone())
            .await
            .map_err(|reason| Inapplicable::ProtocolNotSpoken { protocol, reason })?;
        if let Some(source) = &connect.resume
            && !dial.tickets.offered()
        {
            return Err(Inapplicable::NoSessionTicket {
                source: source.clone(),
            });
        }
        self.record.connection(ConnectionRecord {
            name: connect.name.clone(),
            sni: dial.sni.clone(),
            resume_source: connect.resume.clone(),
            resumption_offered: dial.tickets.offered(),
            result,
            origin_frames: Vec::new(),
        });
        self.connections.insert(connect.name.clone(), slot);
        Ok(())
    }

    /// Copies the ORIGIN frames each open connection received into its record. Over HTTP/3 they
    /// travel on the control stream, beside the responses: the target's SETTINGS, which lead
    /// that stream, are waited for first.
    async fn keep_origin_frames(&self) {
        // One wait for all of them: a target that never sends SETTINGS costs it once per case.
        let until = tokio::time::Instant::now() + CONTROL_STREAM_WAIT;
        for (name, slot) in &self.connections {
            if let Slot::Open(connection, _) = slot {
                connection
                    .settle(until.saturating_duration_since(tokio::time::Instant::now()))
                    .await;
                let frames = connection.origin_frames();
                for frame in &frames {
                    self.record.event(
                        name,
                        format!(
                            "received ORIGIN on stream {} flags 0x{:x}: [{}]",
                            frame.stream,
                            frame.flags,
                            frame.origins.join(", ")
                        ),
                    );
                }
                if !frames.is_empty() {
                    self.record.origin_frames(name, frames);
                }
            }
        }
    }

    /// The protocol and address a connection takes; `Err` when the target offers no such
    /// endpoint.
    fn route(&self, route: &Route) -> Result<(Protocol, SocketAddr), Inapplicable> {
        let endpoint = |protocol: Protocol| match (protocol, self.h3_port) {
            (Protocol::Http3, Some(port)) => {
                Ok((protocol, SocketAddr::new(self.address.ip(), port)))
            }
            (Protocol::Http3, None) => Err(Inapplicable::NoHttp3Endpoint),
            (protocol, _) => Ok((protocol, self.address)),
        };
        match route {
            Route::Case => endpoint(self.protocol),
            Route::Protocol(protocol) => endpoint(*protocol),
            Route::AltSvc(source) => {
                let (host, port) =
                    self.record
                        .h3_alternative(source)
                        .ok_or_else(|| Inapplicable::NoAltSvc {
                            source: source.clone(),
                        })?;
                // Only the target's own address: another host would need DNS, and misdirect
                // connects nowhere the user did not name.
                let own_address = host.is_empty()
                    || host
                        .trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .ok()
                        == Some(self.address.ip());
                if !own_address {
                    return Err(Inapplicable::AltSvcElsewhere {
                        source: source.clone(),
                        host,
                    });
                }
                Ok((Protocol::Http3, SocketAddr::new(self.address.ip(), port)))
            }
        }
    }

    /// Runs one connection attempt and records it in the transcript; `Err` when the target does
    /// not speak the protocol.
    async fn dial(&self, name: &str, dial: Dial) -> Result<(ConnectionResult, Slot), String> {
        let attempt = client::connect(
            &self.runner.credentials,
            ConnectRequest {
                address: dial.address,
                sni: dial.sni.as_deref(),
                protocol: dial.protocol,
                client_certificate: dial.client_certificate,
                tickets: Arc::clone(&dial.tickets),
                tls: dial.tls,
                own_framing: dial.own_framing,
            },
            self.runner.options.step_timeout,
        )
        .await;
        Ok(match attempt {
            Ok((connection, established)) => {
                self.record.event(
                    name,
                    format!(
                        "established {} ALPN {} {}certificate SANs [{}]",
                        established.tls_version,
                        established.alpn.as_deref().unwrap_or("(none)"),
                        if established.resumed {
                            "resumed session, "
                        } else {
                            ""
                        },
                        established.peer_sans.join(", ")
                    ),
                );
                (
                    ConnectionResult::Established(established),
                    Slot::Open(connection, dial),
                )
            }
            Err(ConnectError::Unsupported(reason)) => {
                self.record.event(name, reason.clone());
                return Err(reason);
            }
            Err(ConnectError::Refused(detail)) => {
                self.record
                    .event(name, format!("handshake refused: {detail}"));
                (
                    ConnectionResult::Refused {
                        detail: detail.clone(),
                    },
                    Slot::Refused(detail),
                )
            }
            Err(ConnectError::Failed(detail) | ConnectError::Untrusted(detail)) => {
                self.record
                    .event(name, format!("connection failed: {detail}"));
                (
                    ConnectionResult::Failed {
                        detail: detail.clone(),
                    },
                    Slot::Failed(detail),
                )
            }
        })
    }

    /// An HTTP/1.1 connection the target has closed is opened again the same way: closing after
    /// a response (above all after a 421) is allowed in HTTP/1.1, and the scenario's next
    /// request is still meant for a connection with that SNI and certificate.
    async fn reopen_if_closed(&mut self, name: &str) {
        let Some(Slot::Open(connection, dial)) = self.connections.get(name) else {
            return;
        };
        let Some(reason) = connection.closed() else {
            return;
        };
        self.record.event(name, format!("reconnect: {reason}"));
        let dial = dial.clone();
        let slot = match self.dial(name, dial).await {
            Ok((_, slot)) => slot,
            Err(reason) => Slot::Failed(reason),
        };
        self.connections.insert(name.to_owned(), slot);
    }

    async fn send(&mut self, step: usize, send: &Send) {
        let address = self.address;
        let wires: Vec<WireRequest> = send
            .requests
            .iter()
            .map(|request| self.wire(request, address))
            .collect();
        let deadline = self.runner.options.step_timeout;
        for round in 0..send.rounds {
            let wires: Vec<WireRequest> = wires
                .iter()
                .enumerate()
                .map(|(index, wire)| {
                    let mut wire = wire.clone();
                    if self.gateway {
                        let id = format!("{}s{step}.r{index}.n{round}", self.request_prefix);
                        wire.headers.push((REQUEST_ID_HEADER.to_owned(), id));
                    }
                    wire
                })
                .collect();
            let outcomes = self.exchange_round(send, &wires, deadline).await;
            // After a timeout an HTTP/1.1 connection is out of step with its responses.
            let timed_out_h1 = matches!(self.connections.get(&send.connection), Some(Slot::Open(_, dial)) if dial.protocol == Protocol::Http1)
                && outcomes
                    .iter()
                    .any(|outcome| matches!(outcome, ExchangeOutcome::TimedOut { .. }));
            if timed_out_h1 {
                self.connections.insert(
                    send.connection.clone(),
                    Slot::Failed("an earlier request on this connection timed out".to_owned()),
                );
            }
            for (index, (wire, outcome)) in wires.iter().zip(outcomes).enumerate() {
                self.record.exchange(Exchange {
                    step,
                    request: index,
                    round,
                    connection: send.connection.clone(),
                    method: wire.method.clone(),
                    authority: wire.authority.clone(),
                    host: wire.host.clone(),
                    request_id: wire
                        .headers
                        .iter()
                        .find(|(name, _)| name == REQUEST_ID_HEADER)
                        .map(|(_, value)| value.clone()),
                    outcome,
                });
            }
        }
    }

    /// Sends one round of a step: all at once on a multiplexed connection when the step is a
    /// burst, else one after another (reopening a closed HTTP/1.1 connection before each).
    async fn exchange_round(
        &mut self,
        send: &Send,
        wires: &[WireRequest],
        deadline: Duration,
    ) -> Vec<ExchangeOutcome> {
        let name = &send.connection;
        let multiplexer = match self.connections.get(name) {
            Some(Slot::Open(connection, _)) if send.concurrent => connection.multiplexer(),
            _ => None,
        };
        if let Some(sender) = multiplexer {
            for wire in wires {
                self.record.event(name, describe_request(wire));
            }
            let mut tasks = JoinSet::new();
            for (index, wire) in wires.iter().enumerate() {
                let sender = sender.clone();
                let wire = wire.clone();
                tasks.spawn(async move { (index, bounded(deadline, sender.send(&wire)).await) });
            }
            let mut outcomes = vec![
                ExchangeOutcome::NotSent {
                    detail: "the request task failed".to_owned()
                };
                wires.len()
            ];
            while let Some(joined) = tasks.join_next().await {
                if let Ok((index, outcome)) = joined {
                    outcomes[index] = outcome;
                }
            }
            for (wire, outcome) in wires.iter().zip(&outcomes) {
                self.record
                    .event(name, format!("← {outcome} for {}", shown_authority(wire)));
            }
            return outcomes;
        }
        let mut outcomes = Vec::new();
        for wire in wires {
            self.reopen_if_closed(name).await;
            self.record.event(name, describe_request(wire));
            let outcome = match self.connections.get_mut(name) {
                Some(Slot::Open(connection, dial)) => {
                    let outcome = bounded(deadline, connection.send(wire)).await;
                    let stale = dial.protocol == Protocol::Http1
                        && matches!(
                            outcome,
                            ExchangeOutcome::ConnectionClosed { .. }
                                | ExchangeOutcome::Dropped { .. }
                        )
                        && matches!(wire.method.as_str(), "GET" | "HEAD" | "OPTIONS");
                    if stale {
                        // An HTTP/1.1 server may close an idle connection (after a 421, say)
                        // without `Connection: close`; a request that met only the close was
                        // never processed and is sent again on a new one (RFC 9112 §9.3.1).
                        self.record
                            .event(name, format!("← {outcome}; sending it again"));
                        self.reopen_if_closed(name).await;
                        match self.connections.get_mut(name) {
                            Some(Slot::Open(connection, _)) => {
                                bounded(deadline, connection.send(wire)).await
                            }
                            _ => outcome,
                        }
                    } else {
                        outcome
                    }
                }
                Some(Slot::Refused(detail)) => ExchangeOutcome::HandshakeRefused {
                    detail: detail.clone(),
                },
                Some(Slot::Failed(detail)) => ExchangeOutcome::NotSent {
                    detail: detail.clone(),
                },
                None => ExchangeOutcome::NotSent {
                    detail: format!("no connection named {name}"),
                },
            };
            self.record
                .event(name, format!("← {outcome} for {}", shown_authority(wire)));
            outcomes.push(outcome);
        }
        outcomes
    }

    fn wire(&self, request: &Request, address: SocketAddr) -> WireRequest {
        let render = |authority| self.runner.render_authority(authority, address);
        WireRequest {
            method: request.method.clone(),
            scheme: request.scheme,
            authority: render(&request.authority),
            authority_field: match (&request.authority.host, &request.second_authority) {
                (AuthorityHost::Nothing, _) => AuthorityField::Absent,
                (_, Some(second)) => AuthorityField::Twice(render(second)),
                (_, None) => AuthorityField::Once,
            },
            host: request.host.as_ref().map(render),
            form: request.form,
            path: request.path.replace(CASE_SEGMENT, &self.case_segment),
            headers: request.headers.clone(),
            body: request.body.clone().map(Bytes::from),
        }
    }
}

/// The request's authority as the transcript shows it: `(none)` for a request without one.
fn shown_authority(wire: &WireRequest) -> &str {
    if wire.authority.is_empty() {
        "(none)"
    } else {
        &wire.authority
    }
}

fn describe_request(wire: &WireRequest) -> String {
    let mut line = format!(
        "→ {} {} authority {}",
        wire.method,
        wire.request_target(),
        shown_authority(wire)
    );
    if let AuthorityField::Twice(second) = &wire.authority_field {
        line.push_str(&format!(" and again {second}"));
    }
    if let Some(host) = &wire.host {
        line.push_str(&format!(" Host {host}"));
    }
    if wire.scheme != Scheme::Https {
        line.push_str(&format!(" scheme {}", wire.scheme.key()));
    }
    if let Some(body) = &wire.body {
        line.push_str(&format!(" ({} byte body)", body.len()));
    }
    line
}
