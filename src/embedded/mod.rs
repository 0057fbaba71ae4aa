//! The embedded reference target: an in-process HTTP/1.1 + HTTP/2 server on a TCP port of
//! 127.0.0.1 and an HTTP/3 server (`h3.rs`) on the UDP port with the same number, implementing
//! the standard deployment, correctly or with one [`Fault`]. Successful HTTP/1.1 and HTTP/2
//! responses advertise the HTTP/3 endpoint with `Alt-Svc`.
//!
//! TLS: the certificate is chosen by SNI (no SNI or an unknown name gets the `shared` default);
//! the mTLS tenant's name gets a configuration that requires a client certificate. All
//! configurations share one session cache, as virtual hosts on one port of a real server do, so
//! that resumption under another SNI is really attempted; rustls refuses it (RFC 6066 §3), except
//! under [`Fault::ResumptionBypass`], which unbinds the cached sessions from their SNI.
//!
//! Requests are decided by [`Policy`]; this module only moves bytes. Dropping the
//! [`EmbeddedTarget`] stops the listener and every connection it accepted.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use rustls::server::{
    Acceptor, ServerSessionMemoryCache, StoresServerSessions, WebPkiClientVerifier,
};
use rustls::{RootCertStore, ServerConfig};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use crate::client::tls::{ConnectionTickets, Credentials, TicketJar, VERSIONS, provider};
use crate::client::{self, ConnectRequest, WireRequest};
use crate::pki::Pki;
use misdirect_core::deployment::{
    CertificateId, Deployment, REQUEST_ID_HEADER, Role, TENANT_HEADER,
};
use misdirect_core::fault::Fault;
use misdirect_core::observe::ExchangeOutcome;
pub use misdirect_core::observe::ServedRequest;
use misdirect_core::origin_script::OriginScript;
use misdirect_core::policy::{
    Answer, ConnectionFacts, ConnectionMemory, Policy, Reply, RequestHead,
};
use misdirect_core::protocol::Protocol;
use misdirect_core::scenario::TargetForm;
use misdirect_core::wire;

mod h3;

/// How long a connection may take to complete its handshake or send a request, or stay idle.
const IDLE: Duration = Duration::from_secs(10);
/// Largest HTTP/1.1 request head and body the target reads (431 and 413 beyond).
const MAX_REQUEST_HEAD: usize = 64 * 1024;
pub(super) const MAX_REQUEST_BODY: usize = 1024 * 1024;

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

/// Why serving one connection ended early; it only ends that connection.
type ServeError = Box<dyn std::error::Error + Send + Sync>;

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
        let quic_config = h3::server_config(pki, fault, sessions.clone())?;
        let (listener, endpoint) = bind_pair(options.port, quic_config).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::new(pki, fault, address.port(), sessions, options)?);
        let loop_shared = Arc::clone(&shared);
        let accept_loop = tokio::spawn(async move {
            let shared = loop_shared;
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    Some(incoming) = endpoint.accept() => {
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
        match quinn::Endpoint::server(quic.clone(), address) {
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
    /// `Alt-Svc` advertising the HTTP/3 endpoint.
    alt_svc: String,
    /// In gateway mode, where each tenant's requests go.
    gateway: Option<Gateway>,
    script: OriginScript,
    pub(super) origin_frame: Option<Vec<Role>>,
    origin_frame_stream: u32,
    /// Whether it plays the origin for a client under test, and serves the driver page.
    serves_driver: bool,
    /// Numbers connections as they are accepted.
    connections: std::sync::atomic::AtomicU64,
    log: Mutex<Vec<ServedRequest>>,
    deployment: Deployment,
    sessions: Arc<ServerSessionMemoryCache>,
    /// One configuration per certificate, without and with a required client certificate.
    configs: Vec<(CertificateId, bool, Arc<ServerConfig>)>,
    /// Inputs to rebuild a configuration per connection (only [`Fault::ResumptionBypass`]).
    pki_material: Vec<(CertificateId, ServerConfigMaterial)>,
    client_roots: Arc<RootCertStore>,
}

#[derive(Clone)]
struct ServerConfigMaterial {
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: Arc<rustls_pki_types::PrivateKeyDer<'static>>,
}

impl Shared {
    fn new(
        pki: &Pki,
        fault: Option<Fault>,
        port: u16,
        sessions: Arc<ServerSessionMemoryCache>,
        options: StartOptions,
    ) -> Result<Self, StartError> {
        let gateway = options
            .upstreams
            .map(|upstreams| {
                Ok::<_, StartError>(Gateway {
                    upstreams,
                    credentials: Credentials::from_pki(pki)
                        .map_err(|error| StartError::Quic(error.to_string()))?,
                    send_sni: fault != Some(Fault::GatewayNoUpstreamSni),
                })
            })
            .transpose()?;
        let mut client_roots = RootCertStore::empty();
        client_roots.add(pki.client_ca.certificate.clone())?;
        let client_roots = Arc::new(client_roots);
        let pki_material: Vec<_> = CertificateId::ALL
            .into_iter()
            .map(|id| {
                let identity = pki.server(id);
                (
                    id,
                    ServerConfigMaterial {
                        chain: identity.chain(),
                        key: Arc::new(identity.private_key()),
                    },
                )
            })
            .collect();
        let mut shared = Self {
            policy: Policy::new(fault),
            fault,
            port,
            alt_svc: format!("h3=\":{port}\"; ma=86400"),
            gateway,
            script: options.script,
            origin_frame: options.origin_frame,
            origin_frame_stream: options.origin_frame_stream,
            serves_driver: options.client_origin,
            connections: std::sync::atomic::AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            deployment: Deployment::standard(),
            sessions,
            configs: Vec::new(),
            pki_material,
            client_roots,
        };
        for id in CertificateId::ALL {
            for demand in [false, true] {
                let config = shared.build_config(id, demand, shared.sessions.clone())?;
                shared.configs.push((id, demand, config));
            }
        }
        Ok(shared)
    }

    fn build_config(
        &self,
        id: CertificateId,
        demand_client_certificate: bool,
        sessions: Arc<dyn StoresServerSessions>,
    ) -> Result<Arc<ServerConfig>, StartError> {
        // Invariant: `new` collects material for every `CertificateId`.
        let material = &self
            .pki_material
            .iter()
            .find(|(candidate, _)| *candidate == id)
            .expect("material exists for every certificate id")
            .1;
        let builder =
            ServerConfig::builder_with_provider(provider()).with_protocol_versions(VERSIONS)?;
        let builder = if demand_client_certificate {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(self.client_roots.clone(), provider())
                    .build()?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config =
            builder.with_single_cert(material.chain.clone(), material.key.clone_key())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config.session_storage = sessions;
        Ok(Arc::new(config))
    }

    /// The configuration for a ClientHello with this SNI.
    fn config_for(
        &self,
        sni: Option<&str>,
        id: CertificateId,
        demand: bool,
    ) -> Result<Arc<ServerConfig>, StartError> {
        if self.fault == Some(Fault::ResumptionBypass) {
            let sessions = Arc::new(SniUnboundSessions {
                inner: self.sessions.clone(),
                sni: sni.map(str::to_owned),
            });
            return self.build_config(id, demand, sessions);
        }
        // Invariant: `new` builds a configuration for every certificate and demand.
        Ok(self
            .configs
            .iter()
            .find(|(candidate, candidate_demand, _)| {
                *candidate == id && *candidate_demand == demand
            })
            .map(|(_, _, config)| config.clone())
            .expect("a configuration exists for every certificate and demand"))
    }
}

async fn serve(tcp: TcpStream, shared: Arc<Shared>) -> Result<(), ServeError> {
    let _ = tcp.set_nodelay(true);
    let start =
        tokio::time::timeout(IDLE, LazyConfigAcceptor::new(Acceptor::default(), tcp)).await??;
    let sni = start.client_hello().server_name().map(str::to_owned);
    let certificate = sni
        .as_deref()
        .and_then(CertificateId::for_server_name)
        .unwrap_or(CertificateId::Shared);
    let demand = sni
        .as_deref()
        .and_then(|name| shared.deployment.role_of(name))
        .is_some_and(Role::requires_client_certificate);
    let config = shared.config_for(sni.as_deref(), certificate, demand)?;
    let tls = tokio::time::timeout(IDLE, start.into_stream(config)).await??;
    let (_, session) = tls.get_ref();
    let facts = ConnectionFacts {
        sni,
        certificate,
        client_certificate: session
            .peer_certificates()
            .is_some_and(|chain| !chain.is_empty()),
        handshake_demanded_client_certificate: demand,
        local_port: shared.port,
        connection: shared.next_connection(),
    };
    if session.alpn_protocol() == Some(b"h2".as_slice()) {
        serve_h2(tls, facts, shared).await
    } else {
        serve_h1(tls, &facts, &shared).await
    }
}

async fn serve_h2(
    tls: TlsStream<TcpStream>,
    facts: ConnectionFacts,
    shared: Arc<Shared>,
) -> Result<(), ServeError> {
    let origin = wire::h2::origin_frame(
        shared.origin_frame_stream,
        &shared.advertised_origins(&facts),
    );
    let io = InjectAfterFirstFrame::new(tls, origin);
    let mut connection = tokio::time::timeout(IDLE, h2::server::handshake(io)).await??;
    let facts = Arc::new(facts);
    let memory = Arc::new(Mutex::new(ConnectionMemory::default()));
    // Set before an answer that closes the connection is sent, so that a request the client
    // sends after seeing that answer is refused even if it arrives before the GOAWAY goes out.
    let closing = Arc::new(AtomicBool::new(false));
    // Each request is answered in a task of its own, so that the connection keeps being polled
    // (and request bodies keep arriving) while one request waits, e.g. for an upstream.
    let mut handlers = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = connection.accept() => {
                let Some(Ok((request, respond))) = accepted else { break };
                let (facts, shared, memory, closing) = (Arc::clone(&facts), Arc::clone(&shared), Arc::clone(&memory), Arc::clone(&closing));
                handlers.spawn(async move { answer_h2(request, respond, &facts, &shared, &memory, &closing).await });
            }
            Some(joined) = handlers.join_next(), if !handlers.is_empty() => {
                if let Ok(Ok(true)) = joined {
                    connection.graceful_shutdown();
                }
            }
            // An idle client is dropped after `IDLE`, like the HTTP/1.1 shell does; a request
            // still being answered keeps the connection.
            () = tokio::time::sleep(IDLE), if handlers.is_empty() => break,
        }
    }
    Ok(())
}

/// Answers one HTTP/2 request; true when the connection is to be closed after it.
async fn answer_h2(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    facts: &ConnectionFacts,
    shared: &Shared,
    memory: &Mutex<ConnectionMemory>,
    closing: &AtomicBool,
) -> Result<bool, ServeError> {
    if closing.load(Ordering::SeqCst) {
        respond.send_reset(h2::Reason::REFUSED_STREAM);
        return Ok(false);
    }
    let head = request_head(Protocol::Http2, &request);
    let (parts, mut body) = request.into_parts();
    let request = http::Request::from_parts(parts, ());
    let mut bytes = Vec::new();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(IDLE, body.data()).await {
        let _ = body.flow_control().release_capacity(chunk.len());
        if bytes.len() + chunk.len() > MAX_REQUEST_BODY {
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    let forward = Forward::from_parts(&request, bytes);
    match shared.respond(facts, memory, &head, forward).await {
        Reply::Malformed(_) => {
            respond.send_reset(h2::Reason::PROTOCOL_ERROR);
            Ok(false)
        }
        Reply::Respond(answer) => {
            let mut response = response_head(&answer);
            if answer.status < 300 {
                response = response.header(http::header::ALT_SVC, shared.alt_svc.as_str());
            }
            if answer.close {
                closing.store(true, Ordering::SeqCst);
            }
            let mut stream = respond.send_response(response.body(())?, false)?;
            stream.send_data(Bytes::from(answer.body), true)?;
            Ok(answer.close)
        }
    }
}

/// What the policy needs of a request the h2 or h3 crate parsed.
fn request_head<B>(protocol: Protocol, request: &http::Request<B>) -> RequestHead {
    RequestHead {
        protocol,
        method: request.method().as_str().to_owned(),
        authority: request
            .uri()
            .authority()
            .map(|authority| authority.as_str().to_owned()),
        host: header_values(request.headers(), http::header::HOST),
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

async fn serve_h1(
    mut tls: TlsStream<TcpStream>,
    facts: &ConnectionFacts,
    shared: &Shared,
) -> Result<(), ServeError> {
    let memory = Mutex::new(ConnectionMemory::default());
    let mut buffer = Vec::new();
    loop {
        let request = match read_h1_request(&mut tls, &mut buffer).await? {
            H1Read::Request(request) => request,
            H1Read::Closed => return Ok(()),
            H1Read::Refuse(status, reason) => {
                let answer = Answer::refusal(status, format!("{reason}\n"), true);
                return write_h1(&mut tls, &answer, true, None).await;
            }
        };
        let head = RequestHead {
            protocol: Protocol::Http1,
            method: request.method.clone(),
            authority: absolute_form_authority(&request.target),
            host: request.headers_named("host"),
        };
        let forward = Forward::from_h1(&request);
        let answer = match shared.respond(facts, &memory, &head, forward).await {
            Reply::Respond(answer) => answer,
            Reply::Malformed(reason) => {
                Answer::refusal(400, format!("bad request: {reason}\n"), true)
            }
        };
        let client_closes = request
            .headers_named("connection")
            .iter()
            .any(|value| value.eq_ignore_ascii_case("close"));
        let close = answer.close || client_closes;
        let alt_svc = (answer.status < 300).then_some(shared.alt_svc.as_str());
        write_h1(&mut tls, &answer, close, alt_svc).await?;
        if close {
            return Ok(());
        }
    }
}

/// One HTTP/1.1 request as the embedded target and the mock upstreams read it.
pub(crate) struct H1Request {
    pub(crate) method: String,
    pub(crate) target: String,
    headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl H1Request {
    /// The first value of a header field.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    }

    /// Every value of a header field, list elements split at commas.
    fn headers_named(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .flat_map(|(_, value)| value.split(','))
            .map(|value| value.trim().to_owned())
            .collect()
    }
}

/// What reading the next HTTP/1.1 request gave.
pub(crate) enum H1Read {
    Request(H1Request),
    /// The peer closed the connection between requests.
    Closed,
    /// A request the reader will not take, with the status to refuse it with.
    Refuse(u16, &'static str),
}

/// Reads one request (head and `Content-Length` body) from `io`; `buffer` keeps bytes read past
/// it. Heads over 64 KiB, bodies over 1 MiB, chunked or contradictory framing are refused.
pub(crate) async fn read_h1_request<S: AsyncRead + Unpin>(
    io: &mut S,
    buffer: &mut Vec<u8>,
) -> Result<H1Read, ServeError> {
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        if buffer.len() > MAX_REQUEST_HEAD {
            return Ok(H1Read::Refuse(431, "request head too large"));
        }
        if fill(io, buffer).await? == 0 {
            return Ok(H1Read::Closed);
        }
    };
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut fields);
    if !matches!(
        parsed.parse(&buffer[..head_end]),
        Ok(httparse::Status::Complete(_))
    ) {
        return Ok(H1Read::Refuse(400, "bad request: unparsable request head"));
    }
    let mut request = H1Request {
        method: parsed.method.unwrap_or("").to_owned(),
        target: parsed.path.unwrap_or("").to_owned(),
        headers: parsed
            .headers
            .iter()
            .map(|header| {
                (
                    header.name.to_owned(),
                    String::from_utf8_lossy(header.value).trim().to_owned(),
                )
            })
            .collect(),
        body: Vec::new(),
    };
    buffer.drain(..head_end);
    let codings = request.headers_named("transfer-encoding");
    if !codings.is_empty() {
        // A gateway streams a body of unknown length chunked (RFC 9112 §7.1); any other
        // coding is refused rather than mis-framed.
        if codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
            return Ok(H1Read::Refuse(
                400,
                "bad request: unsupported transfer coding",
            ));
        }
        return Ok(match read_chunked_body(io, buffer).await? {
            Some(body) => {
                request.body = body;
                H1Read::Request(request)
            }
            None => H1Read::Refuse(400, "bad request: malformed chunked body"),
        });
    }
    let length = match request.headers_named("content-length").as_slice() {
        [] => 0,
        [one] => match one.parse::<usize>() {
            Ok(length) if length <= MAX_REQUEST_BODY => length,
            Ok(_) => return Ok(H1Read::Refuse(413, "request body too large")),
            Err(_) => {
                return Ok(H1Read::Refuse(
                    400,
                    "bad request: an invalid Content-Length",
                ));
            }
        },
        _ => {
            return Ok(H1Read::Refuse(
                400,
                "bad request: more than one Content-Length",
            ));
        }
    };
    while buffer.len() < length {
        if fill(io, buffer).await? == 0 {
            return Ok(H1Read::Closed);
        }
    }
    request.body = buffer.drain(..length).collect();
    Ok(H1Read::Request(request))
}

/// Reads a chunked body (trailers discarded); `None` when it is malformed or over 1 MiB.
async fn read_chunked_body<S: AsyncRead + Unpin>(
    io: &mut S,
    buffer: &mut Vec<u8>,
) -> Result<Option<Vec<u8>>, ServeError> {
    let mut body = Vec::new();
    loop {
        let line = loop {
            if let Some(end) = buffer.windows(2).position(|window| window == b"\r\n") {
                let line = String::from_utf8_lossy(&buffer[..end]).into_owned();
                buffer.drain(..end + 2);
                break line;
            }
            if buffer.len() > MAX_REQUEST_HEAD || fill(io, buffer).await? == 0 {
                return Ok(None);
            }
        };
        let size_text = line.split(';').next().unwrap_or("").trim().to_owned();
        let Ok(size) = usize::from_str_radix(&size_text, 16) else {
            return Ok(None);
        };
        if size == 0 {
            // Trailer fields up to the empty line.
            loop {
                match buffer.windows(2).position(|window| window == b"\r\n") {
                    Some(0) => {
                        buffer.drain(..2);
                        return Ok(Some(body));
                    }
                    Some(end) => {
                        buffer.drain(..end + 2);
                    }
                    None if buffer.len() > MAX_REQUEST_HEAD || fill(io, buffer).await? == 0 => {
                        return Ok(None);
                    }
                    None => {}
                }
            }
        }
        if size > MAX_REQUEST_BODY - body.len() {
            return Ok(None);
        }
        while buffer.len() < size + 2 {
            if fill(io, buffer).await? == 0 {
                return Ok(None);
            }
        }
        if &buffer[size..size + 2] != b"\r\n" {
            return Ok(None);
        }
        body.extend(buffer.drain(..size + 2).take(size));
    }
}

/// Reads more bytes under the idle deadline; 0 means the peer closed.
async fn fill<S: AsyncRead + Unpin>(io: &mut S, buffer: &mut Vec<u8>) -> Result<usize, ServeError> {
    let mut chunk = [0u8; 16 * 1024];
    let read = tokio::time::timeout(IDLE, io.read(&mut chunk)).await??;
    buffer.extend_from_slice(&chunk[..read]);
    Ok(read)
}

/// Writes one HTTP/1.1 response; with `close`, announces and performs the close.
async fn write_h1(
    tls: &mut TlsStream<TcpStream>,
    answer: &Answer,
    close: bool,
    alt_svc: Option<&str>,
) -> Result<(), ServeError> {
    let mut response = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
        answer.status,
        reason_phrase(answer.status),
        answer.content_type,
        answer.body.len()
    );
    if let Some(label) = answer.tenant.and_then(Role::tenant) {
        response.push_str(&format!("{TENANT_HEADER}: {label}\r\n"));
    }
    if let Some(cache_control) = answer.cache_control {
        response.push_str(&format!("cache-control: {cache_control}\r\n"));
    }
    if let Some(alt_svc) = alt_svc {
        response.push_str(&format!("alt-svc: {alt_svc}\r\n"));
    }
    if close {
        response.push_str("connection: close\r\n");
    }
    response.push_str("\r\n");
    response.push_str(&answer.body);
    tls.write_all(response.as_bytes()).await?;
    tls.flush().await?;
    if close {
        tls.shutdown().await?;
    }
    Ok(())
}

/// The server's side of an HTTP/2 connection as the h2 crate writes it, with extra bytes (an
/// ORIGIN frame) slipped in right after the first frame, the server's SETTINGS: RFC 8336
/// Appendix B asks for ORIGIN as early as possible, and the h2 crate cannot send it.
struct InjectAfterFirstFrame<S> {
    inner: S,
    first: wire::h2::FirstFrame,
    /// The bytes to slip in and how many went out; `None` once done.
    pending: Option<(Vec<u8>, usize)>,
    first_done: bool,
}

impl<S> InjectAfterFirstFrame<S> {
    fn new(inner: S, bytes: Vec<u8>) -> Self {
        Self {
            inner,
            first: wire::h2::FirstFrame::default(),
            pending: Some((bytes, 0)),
            first_done: false,
        }
    }
}

impl<S: AsyncWrite + Unpin> InjectAfterFirstFrame<S> {
    /// Writes out the injected bytes once the first frame is through.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.first_done {
            return Poll::Ready(Ok(()));
        }
        while let Some((bytes, offset)) = &mut self.pending {
            if *offset == bytes.len() {
                self.pending = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*offset..]) {
                Poll::Ready(Ok(written)) => *offset += written,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for InjectAfterFirstFrame<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for InjectAfterFirstFrame<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if let Poll::Ready(Err(error)) = this.poll_pending(cx) {
            return Poll::Ready(Err(error));
        }
        if this.pending.is_some() && this.first_done {
            return Poll::Pending;
        }
        if this.first_done {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        let within = this.first.within_first_frame(buf);
        match Pin::new(&mut this.inner).poll_write(cx, &buf[..within]) {
            Poll::Ready(Ok(written)) => {
                if this.first.passed(&buf[..written]) {
                    this.first_done = true;
                }
                Poll::Ready(Ok(written))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Where a browser under test is sent first: a page on the origin that fetches the URLs given in
/// its query (`?u=<url>&u=<url>…`), one after another. Browsers cannot be told to fetch a list of
/// URLs in order, and a page of another origin may not reach loopback (Private Network Access).
pub const DRIVER_PATH: &str = "/misdirect/driver";

fn driver_page(path: &str) -> Option<Answer> {
    let query = path.strip_prefix(DRIVER_PATH)?.strip_prefix('?')?;
    let urls: Vec<String> = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("u="))
        .map(percent_decode)
        .filter(|url| url.starts_with("https://") && !url.contains(['\'', '"', '<', '>', '\\']))
        .collect();
    let fetches: String = urls
        .iter()
        .map(|url| {
            format!("try{{await fetch('{url}',{{mode:'no-cors',cache:'no-store'}})}}catch(e){{}}")
        })
        .collect();
    Some(Answer {
        status: 200,
        tenant: None,
        body: format!(
            "<!doctype html><title>misdirect</title><script>(async()=>{{{fetches}document.title='done'}})()</script>\n"
        ),
        cache_control: Some("no-store"),
        close: false,
        content_type: "text/html",
    })
}

/// Decodes `%XX` escapes of a query value.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let decoded = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a gateway passes on of a request besides its head.
pub(super) struct Forward {
    pub(super) path: String,
    pub(super) request_id: Option<String>,
    pub(super) body: Bytes,
}

impl Forward {
    /// From an HTTP/2 or HTTP/3 request head and its body.
    pub(super) fn from_parts(request: &http::Request<()>, body: Vec<u8>) -> Self {
        Self {
            path: request
                .uri()
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |path| path.as_str().to_owned()),
            request_id: request
                .headers()
                .get(REQUEST_ID_HEADER)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
            body: Bytes::from(body),
        }
    }

    fn from_h1(request: &H1Request) -> Self {
        let path = match absolute_form_authority(&request.target) {
            Some(authority) => request
                .target
                .split_once(authority.as_str())
                .map_or_else(|| "/".to_owned(), |(_, rest)| rest.to_owned()),
            None => request.target.clone(),
        };
        Self {
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path
            },
            request_id: request.header(REQUEST_ID_HEADER),
            body: Bytes::from(request.body.clone()),
        }
    }
}

/// The embedded target's gateway side: it proxies each request it serves to its tenant's upstream
/// over HTTPS, as a reverse proxy in front of per-tenant backends does.
struct Gateway {
    upstreams: Vec<(Role, SocketAddr)>,
    credentials: Credentials,
    /// Whether the upstream connection carries the tenant's name in SNI.
    send_sni: bool,
}

impl Gateway {
    async fn forward(&self, role: Role, head: &RequestHead, forward: &Forward) -> Answer {
        let Some(address) = self
            .upstreams
            .iter()
            .find(|(candidate, _)| *candidate == role)
            .map(|(_, address)| *address)
        else {
            return Answer::refusal(502, format!("bad gateway: no upstream for {role}\n"), false);
        };
        // HTTP/1.1 downstream goes upstream as HTTP/1.1, HTTP/2 and HTTP/3 as HTTP/2, so that
        // both kinds of backend connection are exercised.
        let upstream_protocol = match head.protocol {
            Protocol::Http1 => Protocol::Http1,
            Protocol::Http2 | Protocol::Http3 => Protocol::Http2,
        };
        let connect = ConnectRequest {
            address,
            sni: self.send_sni.then_some(role.standard_name()),
            protocol: upstream_protocol,
            client_certificate: false,
            tickets: Arc::new(ConnectionTickets::new(
                Arc::new(TicketJar::default()),
                "upstream",
                None,
            )),
        };
        let mut connection = match client::connect(&self.credentials, connect, IDLE).await {
            Ok((connection, _)) => connection,
            Err(error) => return Answer::refusal(502, format!("bad gateway: {error:?}\n"), false),
        };
        // The gateway's Host is the request's authority (RFC 9113 §8.3.1).
        let authority = head
            .authority
            .clone()
            .or_else(|| head.host.first().cloned())
            .unwrap_or_else(|| role.standard_name().to_owned());
        let request = WireRequest {
            method: head.method.clone(),
            authority,
            host: None,
            form: TargetForm::Origin,
            path: forward.path.clone(),
            headers: forward
                .request_id
                .iter()
                .map(|id| (REQUEST_ID_HEADER.to_owned(), id.clone()))
                .collect(),
            body: (!forward.body.is_empty()).then(|| forward.body.clone()),
        };
        match tokio::time::timeout(IDLE, connection.send(&request)).await {
            Ok(ExchangeOutcome::Response(response)) => Answer {
                status: response.status,
                tenant: response.tenant.as_deref().and_then(|label| {
                    Role::ALL
                        .into_iter()
                        .find(|role| role.tenant() == Some(label))
                }),
                body: format!("{}\n", response.body_excerpt.trim_end()),
                cache_control: None,
                close: false,
                content_type: "text/plain",
            },
            Ok(other) => Answer::refusal(502, format!("bad gateway: {other}\n"), false),
            Err(_) => Answer::refusal(504, "gateway timeout\n".to_owned(), false),
        }
    }
}

impl Shared {
    /// The origins the ORIGIN frame of an HTTP/2 connection lists: scripted, or the policy's.
    fn advertised_origins(&self, facts: &ConnectionFacts) -> Vec<String> {
        self.advertised_origins_for(facts)
    }

    /// The same, for the HTTP/3 shell.
    pub(super) fn advertised_origins_for(&self, facts: &ConnectionFacts) -> Vec<String> {
        match &self.origin_frame {
            Some(roles) => roles
                .iter()
                .map(|role| format!("https://{}:{}", role.standard_name(), self.port))
                .collect(),
            None => self.policy.advertised_origins(facts),
        }
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
        let reply = self.decide_and_forward(facts, memory, head, &forward).await;
        let status = match &reply {
            Reply::Respond(answer) => answer.status,
            Reply::Malformed(_) => 0,
        };
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ServedRequest {
                connection: facts.connection,
                sni: facts.sni.clone(),
                certificate: facts
                    .certificate
                    .sans()
                    .iter()
                    .map(|san| (*san).to_owned())
                    .collect(),
                method: head.method.clone(),
                authority: head
                    .authority
                    .clone()
                    .or_else(|| head.host.first().cloned()),
                path: forward.path.clone(),
                body: forward.body.to_vec(),
                status,
                protocol: head.protocol,
            });
        reply
    }

    async fn decide_and_forward(
        &self,
        facts: &ConnectionFacts,
        memory: &Mutex<ConnectionMemory>,
        head: &RequestHead,
        forward: &Forward,
    ) -> Reply {
        if self.serves_driver
            && let Some(page) = driver_page(&forward.path)
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
            let _ = gateway.forward(role, head, forward).await;
        }
        match decide() {
            Reply::Respond(answer) if answer.status < 300 => match answer.tenant {
                Some(role) if self.fault != Some(Fault::GatewayForwardsMisdirected) => {
                    let mut upstream = gateway.forward(role, head, forward).await;
                    upstream.close = answer.close;
                    Reply::Respond(upstream)
                }
                _ => Reply::Respond(answer),
            },
            other => other,
        }
    }
}

pub(super) fn header_values(
    headers: &http::HeaderMap,
    name: http::header::HeaderName,
) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect()
}

/// The authority of an absolute-form request target (`https://host:port/path`).
fn absolute_form_authority(target: &str) -> Option<String> {
    let rest = target
        .strip_prefix("https://")
        .or_else(|| target.strip_prefix("http://"))?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Content Too Large",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        _ => "",
    }
}

/// The session cache seen through [`Fault::ResumptionBypass`]: every cached session is handed
/// out as if it had been established under the SNI of the connection asking for it, so rustls'
/// SNI check on resumption (RFC 6066 §3) never sees a mismatch. This emulates servers whose
/// session cache or ticket keys are not bound to the virtual host.
#[derive(Debug)]
struct SniUnboundSessions {
    inner: Arc<ServerSessionMemoryCache>,
    sni: Option<String>,
}

impl SniUnboundSessions {
    /// A stored session begins with its SNI: `1, length, name` or `0` for none. This is rustls
    /// 0.23's private encoding of `ServerSessionValue`; should it change, the session no longer
    /// decodes, nothing resumes, and the `fault::resumption-bypass` trial of `cargo test` fails.
    fn rebind(&self, value: Vec<u8>) -> Vec<u8> {
        let rest = match value.first() {
            Some(0) => &value[1..],
            Some(1) => match value.get(1) {
                Some(&length) if value.len() >= 2 + usize::from(length) => {
                    &value[2 + usize::from(length)..]
                }
                _ => return value,
            },
            _ => return value,
        };
        let mut rebound = Vec::with_capacity(value.len() + 64);
        match self.sni.as_deref().filter(|sni| sni.len() <= 255) {
            Some(sni) => {
                rebound.push(1);
                rebound.push(u8::try_from(sni.len()).unwrap_or(u8::MAX));
                rebound.extend_from_slice(sni.as_bytes());
            }
            None => rebound.push(0),
        }
        rebound.extend_from_slice(rest);
        rebound
    }
}

impl StoresServerSessions for SniUnboundSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.inner.put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.get(key).map(|value| self.rebind(value))
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.take(key).map(|value| self.rebind(value))
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_page_fetches_its_urls_in_order() {
        let page = driver_page("/misdirect/driver?u=https://a.test:1/fetch/0&u=https%3A//b.test:1/fetch/1&u=javascript:x")
            .unwrap();
        assert_eq!(page.content_type, "text/html");
        let first = page.body.find("https://a.test:1/fetch/0").unwrap();
        let second = page.body.find("https://b.test:1/fetch/1").unwrap();
        assert!(first < second);
        assert!(!page.body.contains("javascript:x"));
        assert!(driver_page("/fetch/0").is_none());
    }

    #[test]
    fn absolute_form_authority_is_extracted() {
        assert_eq!(
            absolute_form_authority("https://c.test:4433/x?y"),
            Some("c.test:4433".into())
        );
        assert_eq!(absolute_form_authority("/x"), None);
    }

    #[test]
    fn sessions_are_rebound_to_the_current_sni() {
        let unbound = SniUnboundSessions {
            inner: ServerSessionMemoryCache::new(4),
            sni: Some("t2.w.test".into()),
        };
        let mut stored = vec![1, 9];
        stored.extend_from_slice(b"t1.w.test");
        stored.extend_from_slice(&[7, 7]);
        let mut expected = vec![1, 9];
        expected.extend_from_slice(b"t2.w.test");
        expected.extend_from_slice(&[7, 7]);
        assert_eq!(unbound.rebind(stored), expected);
    }
}
