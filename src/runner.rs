//! Runs cases: for one scenario over one protocol, start the target (if embedded), carry out the
//! steps with the clients, record what happened, and hand the observations to `check`.
//!
//! The runner owns every deadline: each connection and each request has the step deadline, each
//! case the case deadline, so a target that hangs turns into ERROR in bounded time. Cases share
//! nothing but the PKI and credentials, so they run concurrently.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::tls::{ConnectionTickets, Credentials, TicketJar, TlsSetupError};
use crate::client::{self, ConnectError, ConnectRequest, Connection, WireRequest, bounded};
use crate::embedded::upstream::{UpstreamLog, Upstreams};
use crate::embedded::{EmbeddedTarget, StartError, StartOptions};
use crate::pki::{Pki, PkiError};
use crate::under_test::client::run_reference;
use crate::under_test::{Remote, Target};
use misdirect_core::conclude::{self, Ending, Inapplicable};
use misdirect_core::deployment::{Deployment, REQUEST_ID_HEADER, Role};
use misdirect_core::evaluate::Evaluation;
use misdirect_core::fault::Actor;
use misdirect_core::observe::{
    ConnectionRecord, ConnectionResult, Event, Exchange, ExchangeOutcome, Observations, Transcript,
};
use misdirect_core::outcome::{CaseResult, Cited};
use misdirect_core::protocol::Protocol;
use misdirect_core::scenario::{
    Authority, ClientPlan, Connect, PortForm, Request, Route, Scenario, Send, Step,
};

/// Deadlines and parallelism of a run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// For each connection attempt and each request.
    pub step_timeout: Duration,
    /// For a whole case.
    pub case_timeout: Duration,
    /// Cases in flight at once.
    pub concurrency: usize,
}

impl RunOptions {
    /// The same, with at most `limit` cases in flight where a limit is given.
    pub fn at_most(self, limit: Option<usize>) -> Self {
        Self {
            concurrency: limit.map_or(self.concurrency, |limit| self.concurrency.min(limit)),
            ..self
        }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            step_timeout: Duration::from_secs(5),
            case_timeout: Duration::from_secs(30),
            concurrency: 16,
        }
    }
}

/// A failure to prepare a run.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
}

/// One scenario over one protocol.
#[derive(Debug, Clone)]
pub struct Case {
    pub scenario: Arc<Scenario>,
    pub protocol: Protocol,
}

impl Case {
    pub fn id(&self) -> String {
        misdirect_core::outcome::case_id(&self.scenario.id, self.protocol)
    }
}

/// The cases of `scenarios`, one per protocol each scenario names, in order.
pub fn cases(scenarios: &[Arc<Scenario>]) -> Vec<Case> {
    scenarios
        .iter()
        .flat_map(|scenario| {
            scenario.protocols.iter().map(|protocol| Case {
                scenario: Arc::clone(scenario),
                protocol: *protocol,
            })
        })
        .collect()
}

/// Runs cases against one target.
#[derive(Debug)]
pub struct Runner {
    target: Target,
    deployment: Deployment,
    credentials: Credentials,
    /// The run's PKI, for the embedded target, the origin of client cases and mock upstreams.
    pki: Option<Pki>,
    options: RunOptions,
    /// Mock upstreams shared by the gateway cases against a gateway of yours, started once.
    remote_upstreams: tokio::sync::OnceCell<Upstreams>,
}

impl Runner {
    pub fn new(target: Target, options: RunOptions) -> Result<Self, SetupError> {
        let (deployment, credentials, pki) = match &target {
            Target::Embedded(_) | Target::Command(_) => {
                let pki = Pki::generate()?;
                (
                    Deployment::standard(),
                    Credentials::from_pki(&pki)?,
                    Some(pki),
                )
            }
            Target::Remote(remote) => (
                remote_deployment(remote),
                Credentials::from_trust(&remote.trust)?,
                // The mock upstreams present the certificates a launched gateway was configured
                // with; behind a gateway of yours, certificates of their own.
                match (&remote.pki, remote.upstreams_port) {
                    (Some(pki), _) => Some(pki.clone()),
                    (None, Some(_)) => Some(Pki::generate()?),
                    (None, None) => None,
                },
            ),
        };
        Ok(Self {
            target,
            deployment,
            credentials,
            pki,
            options,
            remote_upstreams: tokio::sync::OnceCell::new(),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Runs every case, `options.concurrency` at a time; results come back in case order.
    pub async fn run_all(self: &Arc<Self>, cases: Vec<Case>) -> Vec<CaseResult> {
        let permits = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for (index, case) in cases.iter().enumerate() {
            let runner = Arc::clone(self);
            let permits = Arc::clone(&permits);
            let case = case.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (index, runner.run_case(&case).await)
            });
        }
        let mut results: Vec<Option<CaseResult>> = vec![None; cases.len()];
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, result)) = joined {
                results[index] = Some(result);
            }
        }
        results
            .into_iter()
            .zip(&cases)
            .map(|(finished, case)| {
                finished.unwrap_or_else(|| {
                    let panicked = Ending::SetupFailed(
                        "the case's task panicked; this is a bug in misdirect".to_owned(),
                    );
                    let evaluation = conclude::conclude(
                        &case.scenario,
                        case.protocol,
                        &self.deployment,
                        &Observations::default(),
                        &panicked,
                    );
                    result(case, evaluation, Duration::ZERO, Transcript::default())
                })
            })
            .collect()
    }

    /// Runs one case and judges it.
    pub async fn run_case(&self, case: &Case) -> CaseResult {
        let (scenario, protocol) = (case.scenario.as_ref(), case.protocol);
        if let Some(evaluation) = conclude::unplayed_role(scenario, &self.deployment) {
            return result(case, evaluation, Duration::ZERO, Transcript::default());
        }
        let started = Instant::now();
        let record = Arc::new(Record::new(started));
        let ending = match tokio::time::timeout(
            self.options.case_timeout,
            self.execute(scenario, protocol, &record),
        )
        .await
        {
            Ok(Ok(())) => Ending::Completed,
            Ok(Err(Stop::Inapplicable { step, why })) => Ending::Inapplicable { step, why },
            Ok(Err(Stop::Setup(error))) => Ending::SetupFailed(error.to_string()),
            Err(_) => {
                record.event(
                    "case",
                    format!(
                        "case deadline of {} s reached",
                        self.options.case_timeout.as_secs()
                    ),
                );
                Ending::Completed
            }
        };
        let duration = started.elapsed();
        let (observations, transcript) = record.take();
        let evaluation =
            conclude::conclude(scenario, protocol, &self.deployment, &observations, &ending);
        result(case, evaluation, duration, transcript)
    }

    async fn execute(
        &self,
        scenario: &Scenario,
        protocol: Protocol,
        record: &Arc<Record>,
    ) -> Result<(), Stop> {
        if let Some(plan) = &scenario.client {
            return self.execute_client(plan, protocol, record).await;
        }
        if let Target::Command(_) = &self.target {
            return Err(Stop::at_start(Inapplicable::NotAServer));
        }
        let mut upstreams = None;
        let (address, _embedded) = match &self.target {
            Target::Embedded(fault) => {
                let Some(pki) = &self.pki else {
                    return Err(Stop::Setup(CaseSetupError::NoPki));
                };
                let started = if scenario.gateway {
                    match Upstreams::start(pki).await {
                        Ok(mocks) => {
                            let addresses = mocks.addresses();
                            upstreams = Some(mocks);
                            let options = StartOptions {
                                upstreams: Some(addresses),
                                ..StartOptions::default()
                            };
                            EmbeddedTarget::start_with(pki, *fault, options).await
                        }
                        Err(error) => return Err(Stop::Setup(CaseSetupError::Upstreams(error))),
                    }
                } else {
                    EmbeddedTarget::start(pki, *fault).await
                };
                match started {
                    Ok(embedded) => {
                        let address = embedded.address();
                        ((address, Some(address.port())), Some(embedded))
                    }
                    Err(error) => return Err(Stop::Setup(CaseSetupError::Target(error))),
                }
            }
            Target::Remote(remote) => {
                match (remote.upstreams_port, &self.pki) {
                    // A gateway of yours proxies to the mock upstreams: they run for every case.
                    (Some(first_port), Some(pki)) => {
                        let started = self
                            .remote_upstreams
                            .get_or_try_init(|| {
                                Upstreams::start_on(pki, first_port, !remote.upstreams_cleartext)
                            })
                            .await;
                        if let Err(error) = started {
                            return Err(Stop::Setup(CaseSetupError::Upstreams(error)));
                        }
                    }
                    _ if scenario.gateway => {
                        return Err(Stop::at_start(Inapplicable::NoMockUpstreams));
                    }
                    _ => {}
                }
                ((remote.address, remote.h3_port), None)
            }
            Target::Command(_) => unreachable!("client targets return above"),
        };
        let (address, h3_port) = address;
        if let Some(upstreams) = upstreams.as_ref().or(self.remote_upstreams.get()) {
            // Read when the case is judged, so that even a case cut short by its deadline
            // reports what reached the backends.
            record.attach_upstream_log(upstreams.log(), format!("{}.{protocol}.", scenario.id));
        }
        let mut session = Session {
            runner: self,
            protocol,
            address,
            h3_port,
            record,
            jar: Arc::new(TicketJar::default()),
            connections: HashMap::new(),
            gateway: scenario.gateway,
            request_prefix: format!("{}.{protocol}.", scenario.id),
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
                session.keep_origin_frames();
                return Err(Stop::Inapplicable { step: index, why });
            }
        }
        session.keep_origin_frames();
        Ok(())
    }

    /// A client scenario: the embedded target plays the origin as the plan scripts it, the client
    /// under test (the reference client, or a command) fetches, and the origin's log is the
    /// observation.
    async fn execute_client(
        &self,
        plan: &ClientPlan,
        protocol: Protocol,
        record: &Arc<Record>,
    ) -> Result<(), Stop> {
        let not_a_client = || Err(Stop::at_start(Inapplicable::NotAClient));
        let Some(pki) = &self.pki else {
            return not_a_client();
        };
        let options = StartOptions {
            script: plan.origin,
            origin_frame: plan.origin_frame.clone(),
            origin_frame_stream: plan.origin_frame_stream,
            client_origin: true,
            ..StartOptions::default()
        };
        let origin = match EmbeddedTarget::start_with(pki, None, options).await {
            Ok(origin) => origin,
            Err(error) => return Err(Stop::Setup(CaseSetupError::Origin(error))),
        };
        let deadline = self.options.step_timeout;
        record.event(
            "origin",
            format!(
                "origin on {} answers as `{}`",
                origin.address(),
                plan.origin.key()
            ),
        );
        match &self.target {
            Target::Embedded(fault) => {
                let fault = fault.filter(|fault| fault.actor() == Actor::Client);
                let lines = run_reference(
                    &self.credentials,
                    origin.address(),
                    protocol,
                    &plan.fetches,
                    fault,
                    deadline,
                )
                .await;
                for line in lines {
                    record.event("client", line);
                }
            }
            Target::Command(command) => {
                if plan
                    .fetches
                    .iter()
                    .any(|fetch| fetch.method != "GET" || fetch.body.is_some())
                {
                    return Err(Stop::at_start(Inapplicable::FetchesBeyondCommand));
                }
                let dir = std::env::temp_dir().join(format!(
                    "misdirect-client-{}-{}",
                    std::process::id(),
                    origin.address().port()
                ));
                let ca = dir.join("ca.pem");
                let written = std::fs::create_dir_all(&dir)
                    .and_then(|()| std::fs::write(&ca, pki.server_ca_pem()));
                if let Err(error) = written {
                    return Err(Stop::Setup(CaseSetupError::ClientCa(error)));
                }
                let rendered =
                    command.render(&plan.fetches, origin.address().port(), &ca, protocol);
                record.event("client", format!("run: {rendered}"));
                // Within the case deadline, so that the origin's log is still read afterwards.
                let budget = (deadline * u32::try_from(plan.fetches.len() + 1).unwrap_or(u32::MAX))
                    .min(self.options.case_timeout.saturating_sub(deadline));
                let run = command.run(rendered, budget).await;
                record.event(
                    "client",
                    format!(
                        "exit {} {}",
                        run.status
                            .map_or("(none)".to_owned(), |code| code.to_string()),
                        run.stderr.trim()
                    ),
                );
                let _ = std::fs::remove_dir_all(&dir);
            }
            Target::Remote(_) => return not_a_client(),
        }
        let served = origin.served();
        for request in &served {
            record.event(
                "origin",
                format!(
                    "connection {} (SNI {}) {} {}{} → {}",
                    request.connection,
                    request.sni.as_deref().unwrap_or("(none)"),
                    request.method,
                    request.authority.as_deref().unwrap_or("(no authority)"),
                    request.path,
                    request.status
                ),
            );
        }
        record.served(served);
        Ok(())
    }

    /// The authority string for `authority` on a target listening on `port`.
    pub fn render_authority(&self, authority: &Authority, port: u16) -> String {
        let mut host = self.deployment.name(authority.role).to_owned();
        if authority.uppercase {
            host = host.to_ascii_uppercase();
        }
        if authority.trailing_dot {
            host.push('.');
        }
        match authority.port {
            PortForm::Target if port == 443 => host,
            PortForm::Target => format!("{host}:{port}"),
            PortForm::Other => format!("{host}:{}", if port == 443 { 8443 } else { 443 }),
            PortForm::LeadingZero => format!("{host}:0{port}"),
            PortForm::Omitted => host,
        }
    }
}

/// Why a case's run stopped before its last step.
enum Stop {
    /// From step `step` on, the case does not apply to the target.
    Inapplicable { step: usize, why: Inapplicable },
    /// The harness could not set the case up.
    Setup(CaseSetupError),
}

impl Stop {
    fn at_start(why: Inapplicable) -> Self {
        Self::Inapplicable { step: 0, why }
    }
}

/// What the harness could not set up for a case: its verdict is ERROR with this reason.
#[derive(Debug, thiserror::Error)]
enum CaseSetupError {
    #[error("the embedded target has no PKI")]
    NoPki,
    #[error("failed to start the mock upstreams: {0}")]
    Upstreams(StartError),
    #[error("failed to start the embedded target: {0}")]
    Target(StartError),
    #[error("failed to start the origin: {0}")]
    Origin(StartError),
    #[error("failed to write the CA for the client: {0}")]
    ClientCa(std::io::Error),
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
    client_certificate: bool,
    tickets: Arc<ConnectionTickets>,
    protocol: Protocol,
    address: SocketAddr,
}

struct Session<'a> {
    runner: &'a Runner,
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
}

impl Session<'_> {
    /// Opens a connection; `Err` says why the case does not apply from here on.
    async fn connect(&mut self, connect: &Connect) -> Result<(), Inapplicable> {
        let (protocol, address) = self.route(&connect.route)?;
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
        };
        self.record.event(
            &connect.name,
            format!(
                "connect {} {} SNI {} ALPN {}{}{}",
                if protocol == Protocol::Http3 {
                    "udp"
                } else {
                    "tcp"
                },
                address,
                dial.sni.as_deref().unwrap_or("(none)"),
                String::from_utf8_lossy(protocol.alpn()),
                if connect.client_certificate {
                    ", with client certificate"
                } else {
                    ""
                },
                connect
                    .resume
                    .as_ref()
                    .map(|source| format!(", resuming the session of {source}"))
                    .unwrap_or_default(),
            ),
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

    /// Copies the ORIGIN frames each open connection received into its record.
    fn keep_origin_frames(&self) {
        for (name, slot) in &self.connections {
            if let Slot::Open(connection, _) = slot {
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
            Err(ConnectError::Failed(detail)) => {
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
        let port = self.address.port();
        let wires: Vec<WireRequest> = send
            .requests
            .iter()
            .map(|request| self.wire(request, port))
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
                    .event(name, format!("← {outcome} for {}", wire.authority));
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
                        && matches!(outcome, ExchangeOutcome::ConnectionClosed { .. })
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
                .event(name, format!("← {outcome} for {}", wire.authority));
            outcomes.push(outcome);
        }
        outcomes
    }

    fn wire(&self, request: &Request, port: u16) -> WireRequest {
        WireRequest {
            method: request.method.clone(),
            authority: self.runner.render_authority(&request.authority, port),
            host: request
                .host
                .as_ref()
                .map(|host| self.runner.render_authority(host, port)),
            form: request.form,
            path: request.path.clone(),
            headers: request.headers.clone(),
            body: request.body.clone().map(Bytes::from),
        }
    }
}

fn describe_request(wire: &WireRequest) -> String {
    let mut line = format!(
        "→ {} {} authority {}",
        wire.method,
        wire.request_target(),
        wire.authority
    );
    if let Some(host) = &wire.host {
        line.push_str(&format!(" Host {host}"));
    }
    if let Some(body) = &wire.body {
        line.push_str(&format!(" ({} byte body)", body.len()));
    }
    line
}

/// Observations and transcript of one case, filled in from concurrent tasks.
struct Record {
    started: Instant,
    state: Mutex<(Observations, Transcript)>,
    /// Where the mock upstreams of a gateway case log, and the prefix of this case's request IDs.
    upstream_log: Mutex<Option<(UpstreamLog, String)>>,
}

impl Record {
    fn new(started: Instant) -> Self {
        Self {
            started,
            state: Mutex::new((Observations::default(), Transcript::default())),
            upstream_log: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Observations, Transcript)> {
        // Only pushes happen under the lock, so the data stays consistent after a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn event(&self, connection: &str, what: String) {
        let at = self.started.elapsed();
        self.lock().1.events.push(Event {
            at,
            connection: connection.to_owned(),
            what,
        });
    }

    fn connection(&self, record: ConnectionRecord) {
        self.lock().0.connections.push(record);
    }

    fn exchange(&self, exchange: Exchange) {
        self.lock().0.exchanges.push(exchange);
    }

    fn origin_frames(&self, connection: &str, frames: Vec<misdirect_core::wire::h2::OriginFrame>) {
        if let Some(record) = self
            .lock()
            .0
            .connections
            .iter_mut()
            .rev()
            .find(|record| record.name == connection)
        {
            record.origin_frames = frames;
        }
    }

    fn served(&self, requests: Vec<misdirect_core::observe::ServedRequest>) {
        self.lock().0.served = requests;
    }

    fn attach_upstream_log(&self, log: UpstreamLog, prefix: String) {
        *self
            .upstream_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((log, prefix));
    }

    /// The last HTTP/3 alternative advertised in a response on `connection`.
    fn h3_alternative(&self, connection: &str) -> Option<(String, u16)> {
        self.lock()
            .0
            .exchanges
            .iter()
            .rev()
            .filter(|exchange| exchange.connection == connection)
            .find_map(|exchange| match &exchange.outcome {
                ExchangeOutcome::Response(response) => response.h3_alternative(),
                _ => None,
            })
    }

    fn take(&self) -> (Observations, Transcript) {
        let (mut observations, transcript) = std::mem::take(&mut *self.lock());
        if let Some((log, prefix)) = &*self
            .upstream_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            observations.upstream_requests = log.requests(prefix);
        }
        (observations, transcript)
    }
}

/// The roles a server of yours plays: those its names map, less the mTLS tenant when no client
/// certificate was given to present to it.
fn remote_deployment(remote: &Remote) -> Deployment {
    let mut deployment = remote.deployment.clone();
    if remote.trust.client_identity.is_none() {
        deployment.unmap(
            Role::Mtls,
            "no client certificate was given for the mTLS tenant (`client_certificate:` in the \
             profile, or --client-cert and --client-key)",
        );
    }
    deployment
}

fn result(
    case: &Case,
    evaluation: Evaluation,
    duration: Duration,
    transcript: Transcript,
) -> CaseResult {
    let scenario = &case.scenario;
    CaseResult {
        scenario: scenario.id.clone(),
        suite: scenario.suite().to_owned(),
        name: scenario.name().to_owned(),
        title: scenario.title.clone(),
        description: scenario.description.clone(),
        protocol: case.protocol,
        requirements: scenario
            .requirements
            .iter()
            .map(|requirement| Cited {
                id: requirement.id.clone(),
                level: requirement.level,
                section: requirement.section.clone(),
            })
            .collect(),
        location: scenario.span.location(),
        verdict: evaluation.verdict,
        findings: evaluation.findings,
        duration,
        transcript,
    }
}
