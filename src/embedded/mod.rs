//! The servers misdirect runs in-process: the embedded reference target, an HTTP/1.1 + HTTP/2
//! server on a TCP port of 127.0.0.1 and an HTTP/3 server on the UDP port with the same number,
//! implementing the standard deployment, correctly or with one [`Fault`]; and the mock upstreams
//! ([`upstream`]) behind a gateway under test. Successful HTTP/1.1 and HTTP/2 responses advertise
//! the HTTP/3 endpoint with `Alt-Svc`.
//!
//! Requests are decided by the core's [`Policy`]; the shells only move bytes, one concern a file:
//! TLS by SNI (`tls`) with the session-cache fault (`session_cache`), the HTTP/1.1 (`h1`),
//! HTTP/2 (`h2`) and HTTP/3 (`h3`) shells, ORIGIN injection (`origin_frame`), the browser driver
//! page (`driver`) and gateway forwarding (`gateway`). Dropping the [`EmbeddedTarget`] stops the
//! listener and every connection it accepted. Beside it, the chaos target ([`chaos`]) misbehaves
//! on purpose, to prove that no verdict can be earned by a broken server.
//!
//! In the shell, these modules and the clients are the only ones that name protocol crates.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::server::ServerSessionMemoryCache;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::client::tls::Credentials;
use crate::pki::Pki;
use client_cas::ClientCas;
use gateway::{Forward, Gateway};
use misdirect_core::deployment::{Deployment, Role, TENANT_HEADER};
use misdirect_core::fault::Fault;
use misdirect_core::lenient;
use misdirect_core::observe::ServedRequest;
use misdirect_core::origin_script::OriginScript;
use misdirect_core::policy::{
    Answer, ConnectionFacts, ConnectionMemory, Policy, Reply, RequestHead,
};
use misdirect_core::protocol::Protocol;
use tls::TlsBySni;

pub mod chaos;
mod client_cas;
pub mod driver;
mod gateway;
mod h1;
mod h2;
mod h3;
mod lenient_h2;
mod origin_frame;
mod session_cache;
mod tls;
pub mod upstream;

/// Most requests the target and the mock upstreams log: far beyond what a scenario sends, and
/// a client that loops without end is judged on a count that has long passed its limit.
const MAX_LOGGED: usize = 10_000;

/// With [`Fault::DefaultTenantWhenBusy`], how many requests the tenants' handlers take at once
/// (more than a scenario's largest burst, five); past it, the default tenant answers.
const HANDLERS: usize = 8;

/// How long a connection may take to complete its handshake or send a request, or stay idle.
const IDLE: Duration = Duration::from_secs(10);

/// A failure to start the embedded target.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("failed to listen on 127.0.0.1: {0}")]
    Bind(#[from] std::io::Error),
    #[error("failed to build the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("failed to build the client-certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("failed to set up QUIC: {0}")]
    Quic(String),
    #[error("failed to set up the gateway's client: {0}")]
    GatewayClient(String),
}

/// Why serving one connection ended early; it only ends that connection, and nobody reads it
/// but a debugger: what the peer saw is what is observed.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the peer was idle past the deadline")]
    Idle(#[from] tokio::time::error::Elapsed),
    #[error(transparent)]
    Setup(#[from] StartError),
    #[error(transparent)]
    Http(#[from] http::Error),
    #[error(transparent)]
    H2(#[from] ::h2::Error),
    #[error(transparent)]
    H3Stream(#[from] ::h3::error::StreamError),
    #[error(transparent)]
    H3Connection(#[from] ::h3::error::ConnectionError),
    #[error(transparent)]
    Quic(#[from] quinn::ConnectionError),
    #[error(transparent)]
    QuicWrite(#[from] quinn::WriteError),
    #[error(transparent)]
    QuicRead(#[from] quinn::ReadToEndError),
    #[error(transparent)]
    QuicStreamClosed(#[from] quinn::ClosedStream),
    #[error(transparent)]
    QuicVarInt(#[from] quinn::VarIntBoundsExceeded),
}

/// A running embedded target; stops when dropped.
pub struct EmbeddedTarget {
    address: SocketAddr,
    accept_loop: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmbeddedTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedTarget")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// How an embedded target is started.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// TCP and UDP port on 127.0.0.1; 0 picks one free on both.
    pub port: u16,
    /// Gateway mode: where each tenant's requests go.
    pub upstreams: Option<Vec<(Role, SocketAddr)>>,
    /// How it answers as a mock origin for a client under test.
    pub script: OriginScript,
    /// The origins its HTTP/2 ORIGIN frames list instead of the tenants it serves.
    pub origin_frame: Option<Vec<Role>>,
    /// The stream its HTTP/2 ORIGIN frames go on: 0, or another to test that clients ignore them.
    pub origin_frame_stream: u32,
    /// It plays the origin for a client under test: it also serves the driver page that sends a
    /// browser through the scenario's URLs.
    pub client_origin: bool,
    /// Its TCP port offers no ALPN, as servers that predate it: clients speak HTTP/1.1.
    pub without_alpn: bool,
    /// It listens on TCP only, for a case that speaks no HTTP/3: no UDP socket, no QUIC endpoint
    /// and its receive buffers, and no `Alt-Svc` advertising one.
    pub tcp_only: bool,
}

impl Drop for EmbeddedTarget {
    fn drop(&mut self) {
        // The accept loop owns every connection task, so aborting it stops them all.
        self.accept_loop.abort();
    }
}

impl EmbeddedTarget {
    /// Listens on an ephemeral port of 127.0.0.1.
    pub async fn start(pki: &Pki, fault: Option<Fault>) -> Result<Self, StartError> {
        Self::start_with(pki, fault, StartOptions::default()).await
    }

    /// Listens on TCP and UDP of 127.0.0.1 as `options` say.
    pub async fn start_with(
        pki: &Pki,
        fault: Option<Fault>,
        options: StartOptions,
    ) -> Result<Self, StartError> {
        let sessions = ServerSessionMemoryCache::new(1024);
        let client_cas = Arc::new(ClientCas::new(pki)?);
        let (listener, endpoint) = if options.tcp_only {
            (
                TcpListener::bind((Ipv4Addr::LOCALHOST, options.port)).await?,
                None,
            )
        } else {
            let quic_config = h3::server_config(pki, &client_cas, fault, sessions.clone())?;
            let (listener, endpoint) = bind_pair(options.port, quic_config).await?;
            (listener, Some(endpoint))
        };
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::new(
            pki,
            fault,
            address.port(),
            (sessions, client_cas),
            options,
        )?);
        let loop_shared = Arc::clone(&shared);
        let accept_loop = tokio::spawn(async move {
            let shared = loop_shared;
            let mut connections = tokio::task::JoinSet::new();
            let quic_incoming = || async {
                match &endpoint {
                    Some(endpoint) => endpoint.accept().await,
                    None => std::future::pending().await,
                }
            };
            loop {
                tokio::select! {
                    Some(incoming) = quic_incoming() => {
                        let shared = Arc::clone(&shared);
                        connections.spawn(async move {
                            let _ = tokio::time::timeout(Duration::from_secs(120), h3::serve(incoming, shared)).await;
                        });
                    }
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else {
                            // Out of descriptors or similar: back off instead of spinning.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        let shared = Arc::clone(&shared);
                        connections.spawn(async move {
                            // A connection that misbehaves only ends itself.
                            let _ = tokio::time::timeout(Duration::from_secs(120), serve(tcp, shared)).await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(Self {
            address,
            accept_loop,
            shared,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every request it has answered so far, in order.
    pub fn served(&self) -> Vec<ServedRequest> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A TCP listener and a QUIC endpoint on the same port number; with port 0, tries ephemeral
/// ports until one is free for UDP too.
async fn bind_pair(
    port: u16,
    quic: quinn::ServerConfig,
) -> Result<(TcpListener, quinn::Endpoint), StartError> {
    let attempts = if port == 0 { 20 } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let address = listener.local_addr()?;
        match crate::quic_endpoints::endpoint(address, Some(quic.clone())) {
            Ok(endpoint) => return Ok((listener, endpoint)),
            Err(error) => last_error = Some(error),
        }
    }
    Err(StartError::Bind(
        last_error.unwrap_or_else(|| std::io::Error::other("no port pair")),
    ))
}

/// What every connection of one target shares.
struct Shared {
    policy: Policy,
    fault: Option<Fault>,
    port: u16,
    /// `Alt-Svc` advertising the HTTP/3 endpoint, when it has one.
    alt_svc: Option<String>,
    /// In gateway mode, where each tenant's requests go.
    gateway: Option<Gateway>,
    script: OriginScript,
    origin_frame: Option<Vec<Role>>,
    origin_frame_stream: u32,
    /// Whether it plays the origin for a client under test, and serves the driver page.
    serves_driver: bool,
    /// Numbers connections as they are accepted.
    connections: AtomicU64,
    /// Requests being decided right now (counted with [`Fault::DefaultTenantWhenBusy`] only).
    busy_handlers: AtomicUsize,
    log: Mutex<Vec<ServedRequest>>,
    deployment: Deployment,
    tls: TlsBySni,
    /// Which mTLS tenant's CA issued a client's certificate (the QUIC side asks).
    client_cas: Arc<ClientCas>,
}

impl Shared {
    fn new(
        pki: &Pki,
        fault: Option<Fault>,
        port: u16,
        (sessions, client_cas): (Arc<ServerSessionMemoryCache>, Arc<ClientCas>),
        options: StartOptions,
    ) -> Result<Self, StartError> {
        let gateway = options
            .upstreams
            .map(|upstreams| {
                Ok::<_, StartError>(Gateway {
                    upstreams,
                    credentials: Credentials::from_pki(pki)
                        .map_err(|error| StartError::GatewayClient(error.to_string()))?,
                    send_sni: fault != Some(Fault::GatewayNoUpstreamSni),
                    cache: Mutex::default(),
                    cache_by_path: fault == Some(Fault::CacheKeyWithoutHost),
                    relays_backend_421: matches!(
                        fault,
                        Some(Fault::GatewayRelaysBackend421 | Fault::GatewayStoresBackend421)
                    ),
                    stores_backend_421: fault == Some(Fault::GatewayStoresBackend421),
                })
            })
            .transpose()?;
        Ok(Self {
            policy: Policy::new(fault),
            fault,
            port,
            alt_svc: (!options.tcp_only).then(|| format!("h3=\":{port}\"; ma=86400")),
            gateway,
            script: options.script,
            origin_frame: options.origin_frame,
            origin_frame_stream: options.origin_frame_stream,
            serves_driver: options.client_origin,
            connections: AtomicU64::new(0),
            busy_handlers: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            deployment: Deployment::standard(),
            tls: TlsBySni::new(
                pki,
                Arc::clone(&client_cas),
                fault,
                sessions,
                !options.without_alpn,
            )?,
            client_cas,
        })
    }
}

/// Serves one accepted TCP connection: the TLS handshake, then HTTP/2 or HTTP/1.1 by ALPN.
async fn serve(tcp: TcpStream, shared: Arc<Shared>) -> Result<(), ServeError> {
    let handshake = shared.tls.accept(tcp, &shared.deployment).await?;
    let facts = ConnectionFacts {
        sni: handshake.sni,
        certificate: handshake.certificate,
        client_certificate: handshake.client_certificate,
        handshake_demanded_client_certificate: handshake.demanded_client_certificate,
        tls13: handshake.tls13,
        local_port: shared.port,
        connection: shared.next_connection(),
    };
    if handshake.h2 {
        h2::serve(handshake.tls, facts, shared).await
    } else {
        h1::serve(handshake.tls, &facts, &shared).await
    }
}

/// What the policy needs of a request the h2 or h3 crate parsed.
fn request_head<B>(protocol: Protocol, request: &http::Request<B>) -> RequestHead {
    RequestHead {
        protocol,
        method: request.method().as_str().to_owned(),
        scheme: request.uri().scheme_str().map(str::to_owned),
        authority: request
            .uri()
            .authority()
            .map(|authority| authority.as_str().to_owned()),
        host: header_values(request.headers(), http::header::HOST),
        // Only a lenient parser in front of the h2 crate passes a second authority on.
        repeated_authority: request
            .headers()
            .get(lenient::ROUTED_AUTHORITY)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
    }
}

/// The status and headers of an answer, as h2 and h3 send them.
fn response_head(answer: &Answer) -> http::response::Builder {
    let mut response = http::Response::builder()
        .status(answer.status)
        .header(http::header::CONTENT_TYPE, answer.content_type);
    if let Some(label) = answer.tenant.and_then(Role::tenant) {
        response = response.header(TENANT_HEADER, label);
    }
    if let Some(cache_control) = answer.cache_control {
        response = response.header(http::header::CACHE_CONTROL, cache_control);
    }
    response
}

impl Shared {
    /// The origins the ORIGIN frames of an HTTP/2 or HTTP/3 connection list: scripted, or the
    /// policy's.
    fn advertised_origins(&self, facts: &ConnectionFacts) -> Vec<String> {
        match &self.origin_frame {
            Some(roles) => roles
                .iter()
                .map(|role| format!("https://{}:{}", role.standard_name(), self.port))
                .collect(),
            None => self.policy.advertised_origins(facts),
        }
    }

    /// The origins the ORIGIN frame of an HTTP/2 or HTTP/3 connection lists: the advertised
    /// ones, and with [`Fault::GatewayRelaysOriginFrame`] those the SNI tenant's upstream listed.
    async fn connection_origins(&self, facts: &ConnectionFacts) -> Vec<String> {
        let mut origins = self.advertised_origins(facts);
        if let Some(gateway) = self
            .gateway
            .as_ref()
            .filter(|_| self.fault == Some(Fault::GatewayRelaysOriginFrame))
        {
            // A proxy that passes its upstream's ORIGIN frame on: the SNI's tenant's.
            let tenant = facts
                .sni
                .as_deref()
                .and_then(|sni| self.deployment.role_of(sni));
            if let Some(tenant) = tenant.filter(|role| role.tenant().is_some()) {
                origins.extend(gateway.upstream_origins(tenant).await);
            }
        }
        origins
    }

    /// The number the next accepted connection gets.
    fn next_connection(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed)
    }

    /// Decides a request (the origin script first, then the policy), in gateway mode has the
    /// tenant's upstream answer what is served, and logs it.
    async fn respond(
        &self,
        facts: &ConnectionFacts,
        memory: &Mutex<ConnectionMemory>,
        head: &RequestHead,
        forward: Forward,
    ) -> Reply {
        let reply = if self.fault == Some(Fault::DefaultTenantWhenBusy) {
            self.decide_in_pool(facts, memory, head, &forward).await
        } else {
            self.decide_and_forward(facts, memory, head, &forward).await
        };
        let status = match &reply {
            Reply::Respond(answer) => answer.status,
            Reply::Malformed(_) => 0,
        };
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() >= MAX_LOGGED {
            return reply;
        }
        log.push(ServedRequest {
            connection: facts.connection,
            sni: facts.sni.clone(),
            certificate: facts
                .certificate
                .sans()
                .iter()
                .map(|san| (*san).to_owned())
                .collect(),
            method: head.method.clone(),
            authority: head.authority.clone(),
            host: head.host.clone(),
            path: forward.path.clone(),
            body: forward.body.to_vec(),
            status,
            protocol: head.protocol,
        });
        reply
    }

    /// [`Fault::DefaultTenantWhenBusy`]: a request takes a handler from a pool of
    /// [`HANDLERS`] and holds it while it is decided; one that finds the pool empty is answered
    /// by the default tenant, whatever it asked for. The yield is where a real handler waits for
    /// its backend, and lets the requests that arrived with this one take their handlers.
    async fn decide_in_pool(
        &self,
        facts: &ConnectionFacts,
        memory: &Mutex<ConnectionMemory>,
        head: &RequestHead,
        forward: &Forward,
    ) -> Reply {
        struct Held<'a>(&'a AtomicUsize);
        impl Drop for Held<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let overflowed = self.busy_handlers.fetch_add(1, Ordering::AcqRel) >= HANDLERS;
        let _held = Held(&self.busy_handlers);
        tokio::task::yield_now().await;
        if overflowed {
            let asked = head.authority.as_ref().or(head.host.first());
            let authority = asked.map_or("", String::as_str);
            return Reply::Respond(Answer::served(Role::Primary, authority));
        }
        self.decide_and_forward(facts, memory, head, forward).await
    }

    async fn decide_and_forward(
        &self,
        facts: &ConnectionFacts,
        memory: &Mutex<ConnectionMemory>,
        head: &RequestHead,
        forward: &Forward,
    ) -> Reply {
        if self.serves_driver
            && let Some(page) = driver::driver_page(&forward.path)
        {
            return Reply::Respond(page);
        }
        let decide = || {
            let mut memory = memory.lock().unwrap_or_else(PoisonError::into_inner);
            let earlier = memory.count_request();
            if let Some(reason) = self.script.refuses(facts, head, earlier, &self.policy) {
                return Reply::Respond(Answer::refusal(
                    421,
                    format!("misdirected request: {reason}\n"),
                    false,
                ));
            }
            self.policy.decide(facts, &mut memory, head)
        };
        let Some(gateway) = &self.gateway else {
            return decide();
        };
        if self.fault == Some(Fault::GatewayForwardsMisdirected)
            && let Some(role) = self.policy.requested_role(head)
        {
            // Forward first, decide afterwards: the backend has processed whatever is refused.
            let _ = gateway.forward(role, head, forward, None).await;
        }
        match decide() {
            Reply::Respond(answer) if answer.status < 300 => match answer.tenant {
                Some(role) if self.fault != Some(Fault::GatewayForwardsMisdirected) => {
                    let sni_as_host = (self.fault == Some(Fault::GatewayHostFromSni))
                        .then_some(facts.sni.as_deref())
                        .flatten();
                    let mut upstream = gateway.fetch(role, head, forward, sni_as_host).await;
                    upstream.close = answer.close;
                    Reply::Respond(upstream)
                }
                _ => Reply::Respond(answer),
            },
            other => other,
        }
    }
}

fn header_values(headers: &http::HeaderMap, name: http::header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect()
}
