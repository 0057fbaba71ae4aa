//! `misdirect audit`: a live edge checked from nothing but a URL. The first connection, made
//! for the URL's host, says what the edge is (its certificate's names, ALPN, ORIGIN frames,
//! Alt-Svc); the core's [`audit`](misdirect_core::audit) plans from that which names to ask
//! for and judges every answer. This module makes the connections and sends the requests:
//! politely (GET or HEAD only, a `User-Agent` that names misdirect, a bounded number of
//! requests at a bounded rate) and under a deadline each.
//!
//! On each protocol, in order: the host on its own connection (the baseline), every name its
//! certificate does not cover on that same connection, then every covered name on it and on a
//! fresh connection of its own (and a second fresh one when the two differ). Then one
//! connection without SNI, and HTTP/3 when the edge advertised it. A connection the edge closes
//! is opened again for the same name: what is judged is the kind of connection a request went
//! on, and every connection is in the evidence.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::client::tls::{ConnectionTickets, Credentials, TicketJar};
use crate::client::{self, ConnectError, ConnectRequest, Connection, WireRequest};
use misdirect_core::audit::{self as judge, Answered, Plan, Uncovered};
use misdirect_core::deployment::san_covers;
use misdirect_core::observe::{Established, Event, ExchangeOutcome, Transcript};
use misdirect_core::outcome::CaseResult;
use misdirect_core::protocol::Protocol;
use misdirect_core::verdict::Verdict;

/// The `User-Agent` of every request, so that the edge's operator sees who asked and why.
pub const USER_AGENT: &str = concat!(
    "misdirect/",
    env!("CARGO_PKG_VERSION"),
    " (audit of 421 Misdirected Request and connection reuse)"
);

/// Resolves a host and port (an Alt-Svc alternative's) into an address, as the user asked:
/// through `--connect-to`, or the system resolver.
pub type Resolve = dyn Fn(&str, u16) -> Result<SocketAddr, String> + Send + Sync;

/// An edge to audit: a URL's host, port and path, and where its TCP listener is.
#[derive(Debug, Clone)]
pub struct Edge {
    pub host: String,
    pub port: u16,
    pub path: String,
    pub address: SocketAddr,
}

impl Edge {
    /// The authority of a request for `name` on this edge's port.
    pub fn authority(&self, name: &str) -> String {
        match self.port {
            443 => name.to_owned(),
            port => format!("{name}:{port}"),
        }
    }
}

/// How an audit asks.
pub struct Settings {
    /// The user's other hostnames, which the certificate may or may not cover.
    pub also: Vec<String>,
    /// Covered names asked, at most.
    pub max_names: usize,
    /// Requests sent to one edge, at most, retries included.
    pub max_requests: usize,
    /// Requests per second, at most.
    pub rate: f64,
    /// The protocols to audit, in order; HTTP/3 only where the edge advertises it.
    pub protocols: Vec<Protocol>,
    /// HEAD instead of GET.
    pub head: bool,
    /// For each handshake and each request.
    pub deadline: Duration,
    /// Hex digits that make the made-up name unique to this audit.
    pub nonce: String,
    pub resolve: Arc<Resolve>,
    /// Set by a signal: no further request goes out, and the audit ends with what it judged.
    pub stop: Arc<AtomicBool>,
}

/// What an audit of one edge found.
#[derive(Debug, Default)]
pub struct Audited {
    pub results: Vec<CaseResult>,
    /// Requests sent.
    pub requests: usize,
}

/// Audits `edge`; with `dry_run`, stops after the first handshake and the plan. `say` hears
/// each fact about the edge (its certificate, ALPN, ORIGIN, Alt-Svc) and the plan as soon as
/// they are known.
pub async fn audit(
    edge: &Edge,
    settings: &Settings,
    credentials: &Credentials,
    dry_run: bool,
    say: &(dyn Fn(&str) + Sync),
) -> Audited {
    let mut auditor = Auditor {
        edge,
        settings,
        credentials,
        pacer: Pacer::new(
            settings.rate,
            settings.max_requests,
            Arc::clone(&settings.stop),
        ),
        jar: Arc::new(TicketJar::default()),
        began: Instant::now(),
        dialled: 0,
        audited: Audited::default(),
        say,
    };
    auditor.run(dry_run).await;
    auditor.audited.requests = auditor.pacer.sent();
    auditor.audited
}

struct Auditor<'a> {
    edge: &'a Edge,
    settings: &'a Settings,
    credentials: &'a Credentials,
    pacer: Pacer,
    jar: Arc<TicketJar>,
    began: Instant,
    dialled: u32,
    audited: Audited,
    say: &'a (dyn Fn(&str) + Sync),
}

/// One exchange, with what it adds to the evidence.
struct Asked {
    outcome: ExchangeOutcome,
    events: Vec<Event>,
    took: Duration,
}

impl Auditor<'_> {
    fn stopped(&self) -> bool {
        self.settings.stop.load(Ordering::Relaxed)
    }

    fn fact(&self, line: &str) {
        (self.say)(line);
    }

    fn event(&self, connection: &str, what: String) -> Event {
        Event {
            at: self.began.elapsed(),
            connection: connection.to_owned(),
            what,
        }
    }

    /// Records a case with its evidence: the events it joined, each once (the exchanges of a
    /// case share their connection's).
    fn push(&mut self, mut result: CaseResult, evidence: Vec<Event>, took: Duration) {
        let mut events: Vec<Event> = Vec::with_capacity(evidence.len());
        for event in evidence {
            if !events.contains(&event) {
                events.push(event);
            }
        }
        result.transcript = Transcript { events };
        result.duration = took;
        self.audited.results.push(result);
    }

    async fn run(&mut self, dry_run: bool) {
        let host = self.edge.host.clone();
        let tcp: Vec<Protocol> = self
            .settings
            .protocols
            .iter()
            .copied()
            .filter(|protocol| *protocol != Protocol::Http3)
            .collect();
        // The first connection: the first TCP protocol the edge speaks.
        let mut first = None;
        for &protocol in &tcp {
            let mut line = Line::new(protocol, Some(host.clone()), self.edge.address);
            match line.open(self).await {
                Ok(established) => {
                    first = Some((line, established));
                    break;
                }
                Err(ConnectError::Unsupported(reason)) => {
                    let title = format!("{host} over {}", protocol.key());
                    let skipped =
                        judge::unable(&host, "connection", protocol, title, Verdict::Skip, reason);
                    self.push(skipped, line.evidence(), Duration::ZERO);
                }
                Err(error) => {
                    let title = format!("a trusted connection to {host}");
                    let failed = judge::unable(
                        &host,
                        "connection",
                        protocol,
                        title,
                        Verdict::Error,
                        connect_error(&error),
                    );
                    self.push(failed, line.evidence(), Duration::ZERO);
                    return;
                }
            }
        }
        let Some((first_line, established)) = first else {
            return;
        };
        self.fact(&format!(
            "{host} at {}: {}, ALPN {}, certificate for {}",
            self.edge.address,
            established.tls_version,
            established.alpn.as_deref().unwrap_or("(none)"),
            established.peer_sans.join(", ")
        ));
        if !established
            .peer_sans
            .iter()
            .any(|san| san_covers(san, &host))
        {
            let reason = format!(
                "the certificate presented for {host} covers only [{}]: a client would refuse it, so there is nothing to audit",
                established.peer_sans.join(", ")
            );
            let title = format!("a certificate that covers {host}");
            let failed = judge::unable(
                &host,
                "connection",
                first_line.protocol,
                title,
                Verdict::Error,
                reason,
            );
            self.push(failed, first_line.evidence(), Duration::ZERO);
            return;
        }
        let mut plan = Plan::new(
            &host,
            &established.peer_sans,
            &self.settings.also,
            &self.settings.nonce,
            self.settings.max_names,
        );
        // The protocols still to audit, the first connection's first; those past the budget
        // are left out whole, the last first.
        let mut remaining: Vec<Protocol> = self
            .settings
            .protocols
            .iter()
            .copied()
            .skip_while(|protocol| *protocol != first_line.protocol)
            .collect();
        let fitting = plan.fit(self.settings.max_requests, remaining.len(), 1);
        for protocol in remaining.split_off(fitting) {
            let title = format!("{host} over {}", protocol.key());
            let reason = format!(
                "left out: the plan takes {} requests per protocol, past --max-requests {}",
                plan.requests_per_protocol(),
                self.settings.max_requests
            );
            let skipped =
                judge::unable(&host, "connection", protocol, title, Verdict::Skip, reason);
            self.push(skipped, Vec::new(), Duration::ZERO);
        }
        for line in describe(&plan, &remaining, self.settings) {
            self.fact(&line);
        }
        if dry_run {
            return;
        }
        // The first protocol goes on the first connection, and alone probes without SNI and
        // reads the Alt-Svc.
        let mut first_line = Some(first_line);
        let mut alternative = None;
        for &protocol in tcp.iter().filter(|protocol| remaining.contains(protocol)) {
            if self.stopped() {
                return;
            }
            let first = first_line.take();
            let is_first = first.is_some();
            let line =
                first.unwrap_or_else(|| Line::new(protocol, Some(host.clone()), self.edge.address));
            let own = self.protocol(line, &plan).await;
            if is_first {
                alternative = match &own {
                    ExchangeOutcome::Response(response) => response.h3_alternative(),
                    _ => None,
                };
                self.without_sni(protocol, &plan, &own).await;
            }
        }
        if remaining.contains(&Protocol::Http3) && !self.stopped() {
            self.http3(alternative, &plan).await;
        }
    }

    /// Every check of the plan over one protocol, on `line` (a connection for the host);
    /// returns what the host itself got.
    async fn protocol(&mut self, mut line: Line, plan: &Plan) -> ExchangeOutcome {
        let host = self.edge.host.clone();
        let protocol = line.protocol;
        let own = line.ask(self, &host).await;
        if let Some(facts) = line.origin_and_alt_svc(&own.outcome) {
            self.fact(&format!("{}: {facts}", protocol.key()));
        }
        let judged = judge::judge_own(&host, protocol, &own.outcome);
        self.push(judged, own.events.clone(), own.took);
        for (name, why) in &plan.uncovered {
            if self.stopped() {
                return own.outcome;
            }
            let asked = line.ask(self, name).await;
            let judged =
                judge::judge_uncovered(&host, name, why, protocol, &asked.outcome, &own.outcome);
            let mut evidence = own.events.clone();
            evidence.extend(asked.events);
            self.push(judged, evidence, asked.took);
        }
        for name in &plan.covered {
            if self.stopped() {
                return own.outcome;
            }
            let shared = line.ask(self, name).await;
            let mut evidence = shared.events;
            let mut took = shared.took;
            let mut fresh_line = Line::new(protocol, Some(name.clone()), line.address);
            let fresh = fresh_line.ask(self, name).await;
            evidence.extend(fresh.events);
            took += fresh.took;
            let (shared, fresh) = (Answered::of(&shared.outcome), Answered::of(&fresh.outcome));
            let again = if shared == fresh {
                None
            } else {
                let mut again_line = Line::new(protocol, Some(name.clone()), line.address);
                let again = again_line.ask(self, name).await;
                evidence.extend(again.events);
                took += again.took;
                Some(Answered::of(&again.outcome))
            };
            let answers = (&shared, &fresh, again.as_ref());
            let judged = judge::judge_covered(&host, name, protocol, answers, &own.outcome);
            self.push(judged, evidence, took);
        }
        own.outcome
    }

    /// A connection without SNI: the edge's default certificate, and a name it does not cover
    /// asked on it (the host, or else the first name that must be refused).
    async fn without_sni(&mut self, protocol: Protocol, plan: &Plan, own: &ExchangeOutcome) {
        let host = self.edge.host.clone();
        let mut line = Line::new(protocol, None, self.edge.address);
        let title = format!("a connection to {host}'s address without SNI");
        let unable = |verdict, reason| {
            judge::unable(
                &host,
                "without-sni",
                protocol,
                title.clone(),
                verdict,
                reason,
            )
        };
        let (name, asked) = match line.open(self).await {
            Ok(established) => {
                let covers = |name: &str| {
                    established
                        .peer_sans
                        .iter()
                        .any(|san| san_covers(san, name))
                };
                let uncovered = plan.uncovered.iter().map(|(name, _)| name.clone());
                let Some(name) = std::iter::once(host.clone())
                    .chain(uncovered)
                    .find(|name| !covers(name))
                else {
                    let reason = format!(
                        "without SNI the edge presents a certificate for {}, which covers every name asked",
                        established.peer_sans.join(", ")
                    );
                    self.push(
                        unable(Verdict::Skip, reason),
                        line.evidence(),
                        Duration::ZERO,
                    );
                    return;
                };
                let asked = line.ask(self, &name).await;
                (name, asked)
            }
            Err(ConnectError::Refused(detail)) => {
                let outcome = ExchangeOutcome::HandshakeRefused { detail };
                let asked = Asked {
                    outcome,
                    events: Vec::new(),
                    took: Duration::ZERO,
                };
                (host.clone(), asked)
            }
            Err(error @ (ConnectError::Unsupported(_) | ConnectError::Untrusted(_))) => {
                let reason = format!(
                    "without SNI: {}; no client would send a request on that connection",
                    connect_error(&error)
                );
                self.push(
                    unable(Verdict::Skip, reason),
                    line.evidence(),
                    Duration::ZERO,
                );
                return;
            }
            Err(ConnectError::Failed(detail)) => {
                self.push(
                    unable(Verdict::Error, detail),
                    line.evidence(),
                    Duration::ZERO,
                );
                return;
            }
        };
        let judged = judge::judge_uncovered(
            &host,
            &name,
            &Uncovered::WithoutSni,
            protocol,
            &asked.outcome,
            own,
        );
        let mut evidence = line.evidence();
        evidence.extend(asked.events);
        self.push(judged, evidence, asked.took);
    }

    /// The plan over HTTP/3, where the edge's Alt-Svc advertised it.
    async fn http3(&mut self, alternative: Option<(String, u16)>, plan: &Plan) {
        let host = self.edge.host.clone();
        let skip = |reason: String| {
            judge::unable(
                &host,
                "connection",
                Protocol::Http3,
                format!("{host} over h3"),
                Verdict::Skip,
                reason,
            )
        };
        let Some((alt_host, port)) = alternative else {
            let reason = "no Alt-Svc of the edge's advertises HTTP/3".to_owned();
            self.push(skip(reason), Vec::new(), Duration::ZERO);
            return;
        };
        let address = if alt_host.is_empty() {
            Ok(SocketAddr::new(self.edge.address.ip(), port))
        } else {
            let resolve = Arc::clone(&self.settings.resolve);
            let asked = alt_host.clone();
            tokio::task::spawn_blocking(move || resolve(&asked, port))
                .await
                .unwrap_or_else(|error| Err(error.to_string()))
        };
        let address = match address {
            Ok(address) => address,
            Err(reason) => {
                let reason = format!("the Alt-Svc alternative {alt_host}:{port}: {reason}");
                self.push(skip(reason), Vec::new(), Duration::ZERO);
                return;
            }
        };
        self.fact(&format!("h3 at {address} (Alt-Svc)"));
        let mut line = Line::new(Protocol::Http3, Some(host.clone()), address);
        match line.open(self).await {
            Ok(_) => {
                self.protocol(line, plan).await;
            }
            Err(error) => {
                let verdict = match error {
                    ConnectError::Unsupported(_) => Verdict::Skip,
                    _ => Verdict::Error,
                };
                let title = format!("{host} over h3, as its Alt-Svc advertises");
                let failed = judge::unable(
                    &host,
                    "connection",
                    Protocol::Http3,
                    title,
                    verdict,
                    connect_error(&error),
                );
                self.push(failed, line.evidence(), Duration::ZERO);
            }
        }
    }
}

/// The plan in words, before any request goes out (and all that `--dry-run` shows).
fn describe(plan: &Plan, protocols: &[Protocol], settings: &Settings) -> Vec<String> {
    let names = |names: &mut dyn Iterator<Item = String>| {
        let names: Vec<String> = names.collect();
        if names.is_empty() {
            "(none)".to_owned()
        } else {
            names.join(", ")
        }
    };
    let protocols: Vec<String> = protocols
        .iter()
        .map(|protocol| match protocol {
            Protocol::Http3 => "h3 where Alt-Svc advertises it".to_owned(),
            other => other.key().to_owned(),
        })
        .collect();
    let mut lines = vec![
        format!(
            "plan: over {}, then once without SNI; at most {} requests, {}/s, {} with User-Agent {USER_AGENT}",
            protocols.join(", "),
            settings.max_requests,
            settings.rate,
            if settings.head { "HEAD" } else { "GET" },
        ),
        format!(
            "  must be refused on the host's connection: {}",
            names(&mut plan.uncovered.iter().map(|(name, why)| match why {
                Uncovered::Also => format!("{name} (yours)"),
                Uncovered::MadeUp => format!("{name} (made up)"),
                Uncovered::WithoutSni => name.clone(),
            }))
        ),
        format!(
            "  covered by its certificate, compared with fresh connections: {}",
            names(&mut plan.covered.iter().cloned())
        ),
    ];
    if !plan.left_out.is_empty() {
        lines.push(format!(
            "  left out: {}",
            names(
                &mut plan
                    .left_out
                    .iter()
                    .map(|(name, why)| format!("{name} ({why})"))
            )
        ));
    }
    lines
}

fn connect_error(error: &ConnectError) -> String {
    match error {
        ConnectError::Refused(detail) => format!("the edge refused the handshake: {detail}"),
        ConnectError::Unsupported(detail)
        | ConnectError::Untrusted(detail)
        | ConnectError::Failed(detail) => detail.clone(),
    }
}

/// Connections made for one name (or without SNI) over one protocol: one at a time, opened
/// again when the edge closes it.
struct Line {
    protocol: Protocol,
    sni: Option<String>,
    address: SocketAddr,
    connection: Option<Connection>,
    /// How each connection of the line was made (or failed to be), the current one last.
    opened: Vec<Event>,
    /// Requests the current connection carried.
    carried: usize,
    label: String,
}

impl Line {
    fn new(protocol: Protocol, sni: Option<String>, address: SocketAddr) -> Self {
        Self {
            protocol,
            sni,
            address,
            connection: None,
            opened: Vec::new(),
            carried: 0,
            label: String::new(),
        }
    }

    /// The connections made so far, for a case's evidence.
    fn evidence(&self) -> Vec<Event> {
        self.opened.clone()
    }

    async fn open(&mut self, auditor: &mut Auditor<'_>) -> Result<Established, ConnectError> {
        auditor.dialled += 1;
        self.label = format!(
            "#{} {} {}",
            auditor.dialled,
            self.protocol.key(),
            self.sni
                .as_deref()
                .map_or_else(|| "no SNI".to_owned(), |sni| format!("SNI {sni}"))
        );
        let request = ConnectRequest {
            address: self.address,
            sni: self.sni.as_deref(),
            protocol: self.protocol,
            client_certificate: None,
            tickets: Arc::new(ConnectionTickets::new(
                Arc::clone(&auditor.jar),
                &self.label,
                None,
            )),
            tls: None,
            own_framing: false,
        };
        let result = client::connect(auditor.credentials, request, auditor.settings.deadline).await;
        let what = match &result {
            Ok((_, established)) => format!(
                "connected to {}: {}, ALPN {}, certificate for {}",
                self.address,
                established.tls_version,
                established.alpn.as_deref().unwrap_or("(none)"),
                established.peer_sans.join(", ")
            ),
            Err(error) => format!(
                "no connection to {}: {}",
                self.address,
                connect_error(error)
            ),
        };
        self.opened.push(auditor.event(&self.label, what));
        self.carried = 0;
        result.map(|(connection, established)| {
            self.connection = Some(connection);
            established
        })
    }

    /// Asks for `name` on this line's connection, opening it (again) if it is not open, and
    /// once more on a new one when the edge had closed it before the request went out or
    /// closed a connection that had carried other requests before answering. The events
    /// start with the connection the request went on.
    async fn ask(&mut self, auditor: &mut Auditor<'_>, name: &str) -> Asked {
        let began = Instant::now();
        let mut events = Vec::new();
        let mut outcome = None;
        for _ in 0..2 {
            let closed = self
                .connection
                .as_ref()
                .is_none_or(|connection| connection.closed().is_some());
            if !closed {
                events.extend(self.opened.last().cloned());
            } else {
                let opened = self.open(auditor).await;
                events.extend(self.opened.last().cloned());
                match opened {
                    Ok(_) => {}
                    Err(ConnectError::Refused(detail)) => {
                        outcome = Some(ExchangeOutcome::HandshakeRefused { detail });
                        break;
                    }
                    Err(error) => {
                        outcome = Some(ExchangeOutcome::NotSent {
                            detail: connect_error(&error),
                        });
                        break;
                    }
                }
            }
            let sent = self.send(auditor, name).await;
            events.push(auditor.event(&self.label, sent.1));
            // A connection that had carried a request before may have been closed as that
            // one's consequence, or for idling, as this one went out (RFC 9112 §9.3.1 lets a
            // client retry an idempotent request then): only a fresh connection's close answers
            // this request.
            let retry = match sent.0 {
                ExchangeOutcome::Unsendable { .. } => true,
                ExchangeOutcome::ConnectionClosed { .. } | ExchangeOutcome::Dropped { .. } => {
                    self.carried > 1
                }
                _ => false,
            };
            outcome = Some(sent.0);
            if !retry {
                break;
            }
            self.connection = None;
        }
        Asked {
            outcome: outcome.unwrap_or_else(|| ExchangeOutcome::NotSent {
                detail: "no connection".to_owned(),
            }),
            events,
            took: began.elapsed(),
        }
    }

    /// One request on the open connection: its outcome, and the line that records it.
    async fn send(&mut self, auditor: &Auditor<'_>, name: &str) -> (ExchangeOutcome, String) {
        let edge = auditor.edge;
        let mut request = WireRequest::get(edge.authority(name), &edge.path);
        if auditor.settings.head {
            request.method = "HEAD".to_owned();
        }
        request.headers = vec![
            ("user-agent".to_owned(), USER_AGENT.to_owned()),
            ("accept".to_owned(), "*/*".to_owned()),
        ];
        let asked = format!(
            "{} https://{}{}",
            request.method, request.authority, request.path
        );
        let outcome = match (auditor.pacer.admit().await, self.connection.as_mut()) {
            (Err(spent), _) => ExchangeOutcome::NotSent { detail: spent },
            (Ok(()), None) => ExchangeOutcome::NotSent {
                detail: "no connection".to_owned(),
            },
            (Ok(()), Some(connection)) => {
                self.carried += 1;
                let deadline = auditor.settings.deadline;
                let outcome = client::bounded(deadline, connection.send(&request)).await;
                connection
                    .settle(deadline.min(Duration::from_millis(200)))
                    .await;
                outcome
            }
        };
        let line = format!("{asked} → {outcome}");
        (outcome, line)
    }

    /// The ORIGIN set and Alt-Svc the edge sent with its first answer, in words, if any.
    fn origin_and_alt_svc(&self, outcome: &ExchangeOutcome) -> Option<String> {
        let origin = self
            .connection
            .as_ref()
            .and_then(Connection::origin_set)
            .map(|origins| format!("ORIGIN {}", origins.join(" ")));
        let alt_svc = match outcome {
            ExchangeOutcome::Response(response) => response
                .alt_svc
                .as_ref()
                .map(|alt_svc| format!("Alt-Svc {alt_svc}")),
            _ => None,
        };
        let said: Vec<String> = origin.into_iter().chain(alt_svc).collect();
        (!said.is_empty()).then(|| said.join("; "))
    }
}

/// Paces an audit's requests and counts them against its budget.
struct Pacer {
    interval: Duration,
    budget: usize,
    stop: Arc<AtomicBool>,
    /// When the next request may go, and how many went.
    state: Mutex<(Instant, usize)>,
}

impl Pacer {
    fn new(rate: f64, budget: usize, stop: Arc<AtomicBool>) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / rate),
            budget,
            stop,
            state: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Waits for the next request's turn, or says why there is none.
    async fn admit(&self) -> Result<(), String> {
        let wait = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let (next, sent) = &mut *state;
            if *sent >= self.budget {
                return Err(format!("--max-requests {} reached", self.budget));
            }
            *sent += 1;
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at - now
        };
        tokio::time::sleep(wait).await;
        if self.stop.load(Ordering::Relaxed) {
            return Err("interrupted".to_owned());
        }
        Ok(())
    }

    fn sent(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1
    }
}
