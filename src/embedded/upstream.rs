//! Mock upstreams for a gateway under test: one origin per tenant on 127.0.0.1, HTTPS with its
//! tenant's certificate (or cleartext HTTP/1.1 for gateways configured so), answering HTTP/1.1
//! or HTTP/2 (by ALPN) with its tenant's name and
//! recording every request it gets (the TLS SNI the gateway sent, the request ID the harness
//! put on it).
//!
//! With them a scenario can say what reached the backends: nothing for a request the gateway
//! must refuse, the right tenant's backend for a coalesced request, the tenant's name in SNI.
//! Over HTTP/2 each sends an ORIGIN frame listing [`UPSTREAM_ORIGIN`], which a gateway must
//! keep to itself. Two path prefixes script their answers: under `/cached/` a response a shared cache may store,
//! under `/refused-once/` a 421 the first time each path arrives, as a backend that finds the
//! gateway's connection misdirected answers.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::ServeError;
use crate::client::tls::{VERSIONS, provider};
use crate::pki::Pki;
use misdirect_core::deployment::{
    CertificateId, REQUEST_ID_HEADER, Role, STORABLE, TENANT_HEADER, UPSTREAM_ORIGIN, refused_once,
    storable,
};
use misdirect_core::observe::UpstreamRequest;
use misdirect_core::wire;

/// What a mock upstream says when it refuses a path's first request.
const REFUSED_ONCE_BODY: &str =
    "misdirected request: this backend refuses the first request for the path\n";
/// Most `/refused-once/` paths an upstream remembers; past it, such paths are served at once.
const MAX_REFUSED_PATHS: usize = 10_000;

/// The `/refused-once/` paths an upstream has refused, kept across its connections.
type RefusedPaths = Arc<Mutex<HashSet<String>>>;

/// The running upstreams of one case; they stop when dropped.
#[derive(Debug)]
pub struct Upstreams {
    addresses: Vec<(Role, SocketAddr)>,
    log: Arc<Mutex<Vec<UpstreamRequest>>>,
    servers: JoinHandle<()>,
}

impl Drop for Upstreams {
    fn drop(&mut self) {
        self.servers.abort();
    }
}

impl Upstreams {
    /// Starts one upstream per tenant on ephemeral ports.
    pub async fn start(pki: &Pki) -> Result<Self, super::StartError> {
        Self::start_on(pki, 0, true).await
    }

    /// Starts one upstream per tenant, on consecutive ports from `first_port` in tenant order
    /// (alpha, bravo, charlie, delta, echo, foxtrot, golf), or on ephemeral ports with 0: a gateway of yours is
    /// configured with these.
    pub async fn start_on(
        pki: &Pki,
        first_port: u16,
        tls: bool,
    ) -> Result<Self, super::StartError> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut listeners = Vec::new();
        let mut addresses = Vec::new();
        for (offset, role) in Role::ALL
            .into_iter()
            .filter(|role| role.tenant().is_some())
            .enumerate()
        {
            // Invariant: every tenant's standard name is covered by one certificate.
            let id = CertificateId::for_server_name(role.standard_name())
                .unwrap_or(CertificateId::Shared);
            let identity = pki.server(id);
            let mut config = ServerConfig::builder_with_provider(provider())
                .with_protocol_versions(VERSIONS)?
                .with_no_client_auth()
                .with_single_cert(identity.chain(), identity.private_key())?;
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            let port = match first_port {
                0 => 0,
                first => first.saturating_add(u16::try_from(offset).unwrap_or(u16::MAX)),
            };
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
            addresses.push((role, listener.local_addr()?));
            listeners.push((
                role,
                listener,
                tls.then(|| TlsAcceptor::from(Arc::new(config))),
            ));
        }
        let shared_log = Arc::clone(&log);
        let servers = tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            for (role, listener, acceptor) in listeners {
                let log = Arc::clone(&shared_log);
                tasks.spawn(accept_loop(role, listener, acceptor, log));
            }
            while tasks.join_next().await.is_some() {}
        });
        Ok(Self {
            addresses,
            log,
            servers,
        })
    }

    /// Every tenant's upstream address.
    pub fn addresses(&self) -> Vec<(Role, SocketAddr)> {
        self.addresses.clone()
    }

    /// The upstreams' log, to read at any time, also after they stopped.
    pub fn log(&self) -> UpstreamLog {
        UpstreamLog(Arc::clone(&self.log))
    }
}

/// A handle on what the upstreams recorded.
#[derive(Debug, Clone)]
pub struct UpstreamLog(Arc<Mutex<Vec<UpstreamRequest>>>);

impl UpstreamLog {
    /// What the upstreams have seen so far of requests whose ID starts with `prefix`.
    pub fn requests(&self, prefix: &str) -> Vec<UpstreamRequest> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|request| {
                request
                    .request_id
                    .as_deref()
                    .is_some_and(|id| id.starts_with(prefix))
            })
            .cloned()
            .collect()
    }
}

async fn accept_loop(
    role: Role,
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    log: Arc<Mutex<Vec<UpstreamRequest>>>,
) {
    let refused = RefusedPaths::default();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let acceptor = acceptor.clone();
                let (log, refused) = (Arc::clone(&log), Arc::clone(&refused));
                connections.spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(60), serve(role, tcp, acceptor, log, refused)).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(
    role: Role,
    tcp: TcpStream,
    acceptor: Option<TlsAcceptor>,
    log: Arc<Mutex<Vec<UpstreamRequest>>>,
    refused: RefusedPaths,
) -> Result<(), ServeError> {
    // Without this, session tickets sent after the handshake hold the response back until the
    // gateway's delayed ACK (Nagle), some 40 ms per request.
    let _ = tcp.set_nodelay(true);
    match acceptor {
        Some(acceptor) => {
            let tls = acceptor.accept(tcp).await?;
            let (_, session) = tls.get_ref();
            let seen = Seen {
                tls: true,
                sni: session.server_name().map(str::to_owned),
                alpn: session
                    .alpn_protocol()
                    .map(|alpn| String::from_utf8_lossy(alpn).into_owned()),
            };
            serve_io(role, tls, seen, log, refused).await
        }
        None => {
            let seen = Seen {
                tls: false,
                sni: None,
                alpn: None,
            };
            serve_io(role, tcp, seen, log, refused).await
        }
    }
}

/// What the upstream knows of the gateway's connection.
struct Seen {
    tls: bool,
    sni: Option<String>,
    alpn: Option<String>,
}

async fn serve_io<S: AsyncRead + AsyncWrite + Unpin>(
    role: Role,
    mut tls: S,
    seen: Seen,
    log: Arc<Mutex<Vec<UpstreamRequest>>>,
    refused: RefusedPaths,
) -> Result<(), ServeError> {
    let sni = seen.sni.clone();
    let tenant = role.tenant().unwrap_or("none");
    let body = format!("tenant={tenant} upstream={tenant}\n");
    // Whether a request for `path` is the first for a `/refused-once/` path, which is refused.
    let refuse_first = |path: &str| {
        refused_once(path) && {
            let mut paths = refused.lock().unwrap_or_else(PoisonError::into_inner);
            paths.len() < MAX_REFUSED_PATHS && paths.insert(path.to_owned())
        }
    };
    let record =
        |request_id: Option<String>, method: String, host: Option<String>, path: String| {
            let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
            if log.len() < super::MAX_LOGGED {
                log.push(UpstreamRequest {
                    upstream: tenant.to_owned(),
                    tls: seen.tls,
                    sni: sni.clone(),
                    alpn: seen.alpn.clone(),
                    request_id,
                    method,
                    host,
                    path,
                });
            }
        };
    if seen.alpn.as_deref() == Some("h2") {
        // Gateways that speak HTTP/2 to their backends (Envoy, HAProxy, Caddy) get it, with an
        // ORIGIN frame that the gateway must not pass on to its clients (RFC 8336 §2.2).
        let origin = wire::h2::origin_frame(0, &[UPSTREAM_ORIGIN.to_owned()]);
        let io = super::origin_frame::InjectAfterFirstFrame::new(tls, origin);
        let mut connection = h2::server::handshake(io).await?;
        while let Some(accepted) = connection.accept().await {
            let (request, mut respond) = accepted?;
            let header = |name: &str| {
                request
                    .headers()
                    .get(name)
                    .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            };
            record(
                header(REQUEST_ID_HEADER),
                request.method().as_str().to_owned(),
                request
                    .uri()
                    .authority()
                    .map(|authority| authority.as_str().to_owned())
                    .or_else(|| header("host")),
                request
                    .uri()
                    .path_and_query()
                    .map_or_else(|| "/".to_owned(), |path| path.as_str().to_owned()),
            );
            let path = request.uri().path();
            if refuse_first(path) {
                let response = http::Response::builder()
                    .status(421)
                    .header(http::header::CONTENT_TYPE, "text/plain")
                    .body(())?;
                let mut stream = respond.send_response(response, false)?;
                stream.send_data(
                    bytes::Bytes::from_static(REFUSED_ONCE_BODY.as_bytes()),
                    true,
                )?;
                continue;
            }
            let mut response = http::Response::builder()
                .status(200)
                .header(http::header::CONTENT_TYPE, "text/plain")
                .header(TENANT_HEADER, tenant);
            if storable(path) {
                response = response.header(http::header::CACHE_CONTROL, STORABLE);
            }
            let response = response.body(())?;
            let mut stream = respond.send_response(response, false)?;
            stream.send_data(bytes::Bytes::from(body.clone()), true)?;
        }
        return Ok(());
    }
    let mut buffer = Vec::new();
    while let super::h1::Read::Request(request) =
        super::h1::read_request(&mut tls, &mut buffer).await?
    {
        record(
            request.header(REQUEST_ID_HEADER),
            request.method.clone(),
            request.header("host"),
            request.target.clone(),
        );
        let path = wire::h1::absolute_form(&request.target)
            .and_then(|(_, authority)| request.target.split_once(authority))
            .map_or(request.target.as_str(), |(_, path)| path);
        if refuse_first(path) {
            let response = format!(
                "HTTP/1.1 421 Misdirected Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{REFUSED_ONCE_BODY}",
                REFUSED_ONCE_BODY.len()
            );
            tls.write_all(response.as_bytes()).await?;
            tls.flush().await?;
            continue;
        }
        let cache_control = if storable(path) {
            format!("cache-control: {STORABLE}\r\n")
        } else {
            String::new()
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n{TENANT_HEADER}: {tenant}\r\n{cache_control}content-length: {}\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(response.as_bytes()).await?;
        tls.flush().await?;
    }
    let _ = tls.shutdown().await;
    let _ = tls.read(&mut [0u8; 1]).await;
    Ok(())
}
