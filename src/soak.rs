//! `misdirect soak`: load with every response verified. Many connections, each carrying many
//! requests at once (or one request each, for handshake churn), ask a target for names each
//! connection may serve and names it must refuse, for a bounded time and count, optionally at a
//! set rate; the core's [`soak`](misdirect_core::soak) judges each outcome by what its
//! connection is valid for and keeps fixed-size tallies, so memory does not grow with the count.
//!
//! The mix, in turn: the connection's own name twice, then the sibling (covered by the
//! primary's certificate: may be served), then the foreign name (not covered: must be refused);
//! roles the target does not play are left out. Every connection is made for the primary.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::client::tls::{ConnectionTickets, Credentials, TicketJar};
use crate::client::{self, ConnectError, ConnectRequest, Connection, WireRequest};
use misdirect_core::deployment::{Deployment, Role};
use misdirect_core::observe::{Established, ExchangeOutcome};
use misdirect_core::protocol::Protocol;
use misdirect_core::soak::{Asked, Class, Entitlement, Shape, SoakTally};

/// The roles of the mix, in turn.
const MIX: [Role; 4] = [Role::Primary, Role::Primary, Role::Sibling, Role::Foreign];

/// How long a connection slot waits before it tries again after a failed handshake, so that a
/// target that refuses every connection is not hammered in a tight loop.
const BACKOFF: Duration = Duration::from_millis(50);

/// The load to apply.
#[derive(Debug, Clone)]
pub struct Load {
    pub protocol: Protocol,
    pub shape: Shape,
    /// Connections open at once (churn: connections being made at once).
    pub connections: usize,
    /// Requests in flight on each connection (HTTP/2 and HTTP/3; HTTP/1.1 sends one at a time).
    pub streams: usize,
    /// Stop after this many verified requests, if reached before `duration`.
    pub requests: Option<u64>,
    pub duration: Duration,
    /// Requests per second over all connections; `None`: as fast as the target answers.
    pub rate: Option<f64>,
    /// For each handshake and each request.
    pub deadline: Duration,
}

/// Where the load goes and how to speak to it.
#[derive(Debug, Clone)]
pub struct Aim {
    /// TCP for HTTP/1.1 and HTTP/2; UDP for HTTP/3.
    pub address: SocketAddr,
    pub deployment: Deployment,
    pub credentials: Arc<Credentials>,
}

/// Counters a progress display reads while the soak runs.
#[derive(Debug, Default)]
pub struct Live {
    pub requests: AtomicU64,
    pub handshakes: AtomicU64,
    pub refused_421: AtomicU64,
    pub violations: AtomicU64,
    pub failed: AtomicU64,
}

/// What every task of one soak shares.
struct Soak {
    load: Load,
    aim: Aim,
    started: Instant,
    /// The next request's number; it indexes the mix and paces the rate.
    issued: AtomicU64,
    /// Connections opened or attempted, numbered.
    dialled: AtomicU64,
    stopped: AtomicBool,
    tally: Mutex<SoakTally>,
    /// The requests of the mix, each with its authority's index in the tally.
    mix: Vec<(usize, WireRequest)>,
    live: Arc<Live>,
    jar: Arc<TicketJar>,
}

/// Runs one soak until its budget is spent or `stop` is set; what it counted, with its wall time.
pub async fn soak(aim: Aim, load: Load, live: Arc<Live>, stop: Arc<AtomicBool>) -> SoakTally {
    let roles: Vec<Role> = [Role::Primary, Role::Sibling, Role::Foreign]
        .into_iter()
        .filter(|role| aim.deployment.is_mapped(*role))
        .collect();
    let port = aim.address.port();
    let authority = |role: Role| match port {
        443 => aim.deployment.name(role).to_owned(),
        port => format!("{}:{port}", aim.deployment.name(role)),
    };
    let authorities: Vec<(Role, String)> =
        roles.iter().map(|role| (*role, authority(*role))).collect();
    let mix = MIX
        .into_iter()
        .filter_map(|role| {
            let index = roles.iter().position(|mapped| *mapped == role)?;
            Some((index, WireRequest::get(authority(role), "/soak")))
        })
        .collect();
    let soak = Arc::new(Soak {
        tally: Mutex::new(SoakTally::new(load.protocol, load.shape, &authorities)),
        load,
        aim,
        started: Instant::now(),
        issued: AtomicU64::new(0),
        dialled: AtomicU64::new(0),
        stopped: AtomicBool::new(false),
        mix,
        live,
        jar: Arc::new(TicketJar::default()),
    });
    let mut slots = JoinSet::new();
    for _ in 0..soak.load.connections {
        let soak = Arc::clone(&soak);
        slots.spawn(async move {
            match soak.load.shape {
                Shape::Streams => soak.keep_connected().await,
                Shape::Churn => soak.churn().await,
            }
        });
    }
    // The budget's end, or a stop signal, ends the slots; each request has its deadline, so
    // they end within one deadline of it.
    let watch = {
        let soak = Arc::clone(&soak);
        async move {
            while !stop.load(Ordering::Relaxed) && soak.started.elapsed() < soak.load.duration {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            soak.stopped.store(true, Ordering::Relaxed);
        }
    };
    tokio::select! {
        () = watch => {}
        () = async { while slots.join_next().await.is_some() {} } => {}
    }
    soak.stopped.store(true, Ordering::Relaxed);
    let grace = soak.load.deadline * 2;
    let _ = tokio::time::timeout(grace, async { while slots.join_next().await.is_some() {} }).await;
    slots.abort_all();
    let mut tally = soak
        .tally
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    tally.wall = soak.started.elapsed();
    tally
}

/// An open connection and what its requests are entitled to on it.
struct Opened {
    connection: Connection,
    facts: Facts,
}

/// What the tally needs of the connection a request travelled on.
#[derive(Debug, Clone)]
struct Facts {
    number: u64,
    sni: String,
    /// Per authority of the tally.
    entitlements: Vec<Entitlement>,
}

/// How a request goes out: on a multiplexed connection's handle, or on the connection itself.
enum Via<'a> {
    Multiplexed(client::Multiplexer),
    Serial(&'a mut Connection),
}

/// What ended a connection's requests.
enum Ended {
    /// The budget is spent or the soak was stopped.
    Budget,
    /// The connection can carry no more requests: open another.
    Lost,
}

impl Soak {
    /// Claims the next request's number, or `None` when the budget is spent; waits for its turn
    /// when a rate is set.
    async fn claim(&self) -> Option<u64> {
        // A target that fails every request at once must not starve the timers: each request
        // starts with a turn for the other tasks, and the clock is read here, not only by the
        // watch.
        tokio::task::yield_now().await;
        if self.stopped.load(Ordering::Relaxed) || self.started.elapsed() >= self.load.duration {
            return None;
        }
        let number = self.issued.fetch_add(1, Ordering::Relaxed);
        if self.load.requests.is_some_and(|most| number >= most) {
            return None;
        }
        if let Some(rate) = self.load.rate {
            let due = self.started + Duration::from_secs_f64(number as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        (!self.stopped.load(Ordering::Relaxed)).then_some(number)
    }

    /// Gives a claimed number back, for a request that was not processed and goes again.
    fn unclaim(&self) {
        self.issued.fetch_sub(1, Ordering::Relaxed);
    }

    /// Opens a connection for the primary; a failure is counted and waited out.
    async fn open(&self) -> Option<Opened> {
        let number = self.dialled.fetch_add(1, Ordering::Relaxed);
        let sni = self.aim.deployment.name(Role::Primary).to_owned();
        let attempt = ConnectRequest {
            address: self.aim.address,
            sni: Some(&sni),
            protocol: self.load.protocol,
            client_certificate: None,
            tickets: Arc::new(ConnectionTickets::new(Arc::clone(&self.jar), "soak", None)),
            tls: None,
            own_framing: false,
        };
        match client::connect(&self.aim.credentials, attempt, self.load.deadline).await {
            Ok((connection, established)) => {
                self.live.handshakes.fetch_add(1, Ordering::Relaxed);
                self.tally().handshake();
                let entitlements = self.entitlements(&sni, &established);
                Some(Opened {
                    connection,
                    facts: Facts {
                        number,
                        sni,
                        entitlements,
                    },
                })
            }
            Err(ConnectError::Unsupported(detail)) => {
                // It will not change its mind: the soak does not apply.
                self.tally().unsupported(&detail);
                self.stopped.store(true, Ordering::Relaxed);
                None
            }
            Err(
                ConnectError::Refused(detail)
                | ConnectError::Failed(detail)
                | ConnectError::Untrusted(detail),
            ) => {
                self.live.failed.fetch_add(1, Ordering::Relaxed);
                self.tally().connect_failed(&detail);
                tokio::time::sleep(BACKOFF).await;
                None
            }
        }
    }

    fn entitlements(&self, sni: &str, established: &Established) -> Vec<Entitlement> {
        let tally = self.tally();
        tally
            .authorities
            .iter()
            .map(|authority| {
                let host = self.aim.deployment.name(authority.role);
                Entitlement::of(host, Some(sni), &established.peer_sans)
            })
            .collect()
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, SoakTally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one request of the mix and counts its outcome; whether the connection can carry
    /// another.
    async fn exchange(&self, facts: &Facts, number: u64, via: Via<'_>) -> bool {
        let (authority, request) = &self.mix[usize::try_from(number).unwrap_or(0) % self.mix.len()];
        let began = Instant::now();
        let (outcome, closed) = match via {
            Via::Multiplexed(multiplexer) => (
                client::bounded(self.load.deadline, multiplexer.send(request)).await,
                false,
            ),
            Via::Serial(connection) => {
                let outcome = client::bounded(self.load.deadline, connection.send(request)).await;
                (outcome, connection.closed().is_some())
            }
        };
        let asked = Asked {
            at: self.started.elapsed(),
            connection: facts.number,
            sni: Some(&facts.sni),
            authority: *authority,
            entitlement: facts.entitlements[*authority],
            latency: began.elapsed(),
        };
        let class = self.tally().record(asked, &outcome);
        let counter = match class {
            Class::Refused421 => Some(&self.live.refused_421),
            Class::Violation(_) => Some(&self.live.violations),
            // A connection that failed a request is not trusted with another.
            Class::Failed => {
                self.live.requests.fetch_add(1, Ordering::Relaxed);
                self.live.failed.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            Class::Unprocessed => {
                self.unclaim();
                return false;
            }
            Class::Served | Class::RefusedOther => None,
        };
        self.live.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let lost = matches!(
            outcome,
            ExchangeOutcome::ConnectionError { .. } | ExchangeOutcome::ConnectionClosed { .. }
        );
        !lost && !closed
    }

    /// One connection slot of the streams shape: a connection kept open and loaded, and a new
    /// one whenever the target retires it.
    async fn keep_connected(self: Arc<Self>) {
        loop {
            if self.stopped.load(Ordering::Relaxed) {
                return;
            }
            let Some(opened) = self.open().await else {
                continue;
            };
            let ended = match opened.connection.multiplexer() {
                Some(multiplexer) => Arc::clone(&self).multiplex(opened, multiplexer).await,
                None => self.one_at_a_time(opened).await,
            };
            if matches!(ended, Ended::Budget) {
                return;
            }
        }
    }

    /// `streams` requests in flight on one HTTP/2 or HTTP/3 connection, which stays open
    /// (owned here) until they end.
    async fn multiplex(self: Arc<Self>, opened: Opened, multiplexer: client::Multiplexer) -> Ended {
        let lost = Arc::new(AtomicBool::new(false));
        let mut streams = JoinSet::new();
        for _ in 0..self.load.streams {
            let (soak, facts, lost, multiplexer) = (
                Arc::clone(&self),
                opened.facts.clone(),
                Arc::clone(&lost),
                multiplexer.clone(),
            );
            streams.spawn(async move {
                while !lost.load(Ordering::Relaxed) {
                    let Some(number) = soak.claim().await else {
                        return Ended::Budget;
                    };
                    let via = Via::Multiplexed(multiplexer.clone());
                    if !soak.exchange(&facts, number, via).await {
                        lost.store(true, Ordering::Relaxed);
                    }
                }
                Ended::Lost
            });
        }
        let mut ended = Ended::Lost;
        while let Some(stream) = streams.join_next().await {
            if matches!(stream, Ok(Ended::Budget)) {
                ended = Ended::Budget;
            }
        }
        drop(opened);
        ended
    }

    /// One request at a time on an HTTP/1.1 connection (keep-alive).
    async fn one_at_a_time(&self, mut opened: Opened) -> Ended {
        loop {
            let Some(number) = self.claim().await else {
                return Ended::Budget;
            };
            let via = Via::Serial(&mut opened.connection);
            if !self.exchange(&opened.facts, number, via).await {
                return Ended::Lost;
            }
        }
    }

    /// One slot of the churn shape: a new connection for every request.
    async fn churn(self: Arc<Self>) {
        loop {
            let Some(number) = self.claim().await else {
                return;
            };
            let Some(mut opened) = self.open().await else {
                self.unclaim();
                continue;
            };
            let via = match opened.connection.multiplexer() {
                Some(multiplexer) => Via::Multiplexed(multiplexer),
                None => Via::Serial(&mut opened.connection),
            };
            self.exchange(&opened.facts, number, via).await;
        }
    }
}
