//! The chaos target: hostile servers on loopback that prove misdirect's verdicts cannot be
//! earned by a broken target. Each [`Chaos`] behaviour breaks one thing a real server, a buggy
//! proxy or an attacker may break (silence, resets, garbage, endless frames, absurd settings, a
//! wrong certificate); against any of them a case must end as ERROR (or SKIP), never PASS, within
//! its deadline.
//!
//! Behaviours at the TCP or TLS level apply to HTTP/1.1 and HTTP/2; those of HTTP/2 frames answer
//! an HTTP/1.1 client by refusing every request, as do the TCP side of the QUIC behaviours, so
//! that every case of a run ends quickly. Only the QUIC behaviours have an HTTP/3 endpoint. The
//! frames are written by hand from `misdirect_core::wire::h2`: no server crate sends them.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::ServerSessionMemoryCache;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::client_cas::ClientCas;
use super::tls::TlsBySni;
use super::{StartError, h3};
use crate::client::tls::{VERSIONS, provider};
use crate::pki::Pki;
use misdirect_core::deployment::{CertificateId, Deployment};
use misdirect_core::wire::h2::frame;

/// Declares the behaviours once: name, description, and the parsing and listing they need.
macro_rules! behaviours {
    ($($variant:ident = $name:literal: $description:literal,)*) => {
        /// One way the chaos target misbehaves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Chaos {
            $(#[doc = $description] $variant,)*
        }

        impl Chaos {
    /// How to start the reference target for a behaviour that is the reference target started
    /// differently (`no-alpn`); `None` for the hostile behaviours of [`ChaosTarget`].
    pub fn reference_options(self) -> Option<super::StartOptions> {
        (self == Self::NoAlpn).then(|| super::StartOptions {
            without_alpn: true,
            ..super::StartOptions::default()
        })
    }

            /// Every behaviour, in the order they are documented.
            pub const ALL: &[Self] = &[$(Self::$variant),*];

            /// The name `--target chaos:<name>` takes.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// What the behaviour does, in one line.
            pub fn description(self) -> &'static str {
                match self {
                    $(Self::$variant => $description,)*
                }
            }
        }
    };
}

behaviours! {
    SilentTcp = "silent-tcp": "accepts TCP connections and never sends a byte",
    TlsThenSilence = "tls-then-silence": "completes the TLS handshake, then never answers",
    HandshakeReset = "handshake-reset": "resets the connection after reading the ClientHello",
    Garbage = "garbage": "sends random bytes inside TLS instead of HTTP",
    H2SpeaksH1 = "h2-speaks-h1": "negotiates h2 by ALPN, then answers in HTTP/1.1",
    GoawayFirst = "goaway-first": "sends GOAWAY PROTOCOL_ERROR before any stream",
    ResetEveryStream = "reset-every-stream": "resets every HTTP/2 stream with REFUSED_STREAM",
    OneBytePerSecond = "one-byte-per-second": "answers one byte per second",
    EndlessHeader = "endless-header": "sends an HTTP/1.1 response head that never ends",
    EndlessContinuation = "endless-continuation": "follows :status 200 with CONTINUATION frames that never end the header block",
    HugeSettings = "huge-settings": "opens with a SETTINGS frame of 16 MiB",
    WindowZero = "window-zero": "allows no request body (initial flow-control window 0) and waits for it",
    NoStreams = "no-streams": "allows no stream at all (SETTINGS_MAX_CONCURRENT_STREAMS 0)",
    EndlessBody = "endless-body": "answers 200 with a body that never ends",
    WrongName = "wrong-name": "presents c.test's certificate whatever the SNI",
    NoAlpn = "no-alpn": "the correct reference target, without ALPN: HTTP/1.1 only, as servers that predate ALPN",
    QuicSilent = "quic-silent": "an HTTP/3 port that never answers a datagram",
    QuicGarbage = "quic-garbage": "answers every QUIC datagram with random bytes",
    QuicStreamReset = "quic-stream-reset": "completes the QUIC handshake, then resets every request stream",
}

impl fmt::Display for Chaos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no chaos behaviour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown chaos behaviour `{0}`: `misdirect chaos` lists them")]
pub struct UnknownChaos(String);

impl std::str::FromStr for Chaos {
    type Err = UnknownChaos;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|chaos| chaos.name() == name)
            .ok_or_else(|| UnknownChaos(name.to_owned()))
    }
}

impl Chaos {
    /// Whether the behaviour has an HTTP/3 endpoint.
    pub fn speaks_quic(self) -> bool {
        matches!(
            self,
            Self::QuicSilent | Self::QuicGarbage | Self::QuicStreamReset
        )
    }
}

/// The HTTP/2 connection preface a client sends first (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// HPACK for `:status 421`: a literal with the indexed name `:status`; and for `:status 200`.
const STATUS_421: &[u8] = &[0x08, 0x03, b'4', b'2', b'1'];
const STATUS_200: &[u8] = &[0x88];
/// How long a hostile connection may live, and how much it may read, whatever the peer does.
const LIFETIME: Duration = Duration::from_secs(60);
const MAX_READ: usize = 1024 * 1024;
/// H3_REQUEST_REJECTED (RFC 9114 §8.1).
const H3_REQUEST_REJECTED: u32 = 0x10b;

/// A running chaos target; stops when dropped.
pub struct ChaosTarget {
    address: SocketAddr,
    h3_port: Option<u16>,
    tasks: JoinHandle<()>,
}

impl Drop for ChaosTarget {
    fn drop(&mut self) {
        self.tasks.abort();
    }
}

impl ChaosTarget {
    /// Starts `chaos` on ephemeral ports of 127.0.0.1 with certificates from `pki` (which the
    /// harness trusts, so that only the behaviour is wrong).
    pub async fn start(pki: &Pki, chaos: Chaos) -> Result<Self, StartError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let tls = Arc::new(Tls::new(pki, chaos)?);
        let mut quic = None;
        let mut udp = None;
        match chaos {
            Chaos::QuicSilent | Chaos::QuicGarbage => {
                udp = Some(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?);
            }
            Chaos::QuicStreamReset => {
                let cas = ClientCas::new(pki)?;
                let config = h3::server_config(pki, &cas, None, ServerSessionMemoryCache::new(16))?;
                quic = Some(crate::quic_endpoints::endpoint(
                    SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                    Some(config),
                )?);
            }
            _ => {}
        }
        let h3_port = match (&udp, &quic) {
            (Some(socket), _) => Some(socket.local_addr()?.port()),
            (_, Some(endpoint)) => Some(endpoint.local_addr()?.port()),
            _ => None,
        };
        let tasks = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            if let Some(socket) = udp {
                connections.spawn(datagrams(socket, chaos));
            }
            if let Some(endpoint) = quic {
                connections.spawn(reset_streams(endpoint));
            }
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        let tls = Arc::clone(&tls);
                        connections.spawn(async move {
                            let _ = tokio::time::timeout(LIFETIME, misbehave(tcp, chaos, &tls)).await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(Self {
            address,
            h3_port,
            tasks,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The UDP port of its HTTP/3 endpoint, for the QUIC behaviours.
    pub fn h3_port(&self) -> Option<u16> {
        self.h3_port
    }
}

/// The TLS side: the reference target's certificates by SNI, or one wrong certificate.
enum Tls {
    BySni(Box<(TlsBySni, Deployment)>),
    Wrong(TlsAcceptor),
}

impl Tls {
    fn new(pki: &Pki, chaos: Chaos) -> Result<Self, StartError> {
        if chaos != Chaos::WrongName {
            let cas = Arc::new(ClientCas::new(pki)?);
            let tls = TlsBySni::new(pki, cas, None, ServerSessionMemoryCache::new(16), true)?;
            return Ok(Self::BySni(Box::new((tls, Deployment::standard()))));
        }
        let identity = pki.server(CertificateId::Separate);
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)?
            .with_no_client_auth()
            .with_single_cert(identity.chain(), identity.private_key())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self::Wrong(TlsAcceptor::from(Arc::new(config))))
    }

    /// The handshake, and whether it negotiated h2.
    async fn accept(
        &self,
        tcp: TcpStream,
    ) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, bool)> {
        match self {
            Self::BySni(by_sni) => {
                let (tls, deployment) = by_sni.as_ref();
                let handshake = tls.accept(tcp, deployment).await.ok()?;
                Some((handshake.tls, handshake.h2))
            }
            Self::Wrong(acceptor) => {
                let stream = acceptor.accept(tcp).await.ok()?;
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                Some((stream, h2))
            }
        }
    }
}

/// Serves one TCP connection the way `chaos` says.
async fn misbehave(mut tcp: TcpStream, chaos: Chaos, tls: &Tls) {
    match chaos {
        Chaos::SilentTcp => {
            tokio::time::sleep(LIFETIME).await;
            return;
        }
        Chaos::HandshakeReset => {
            let mut hello = [0u8; 1024];
            let _ = tcp.read(&mut hello).await;
            // A linger of zero turns the close into a reset.
            let _ = tcp.set_zero_linger();
            return;
        }
        _ => {}
    }
    let Some((mut stream, h2)) = tls.accept(tcp).await else {
        return;
    };
    match (chaos, h2) {
        (Chaos::TlsThenSilence, _) => drain(&mut stream).await,
        (Chaos::Garbage, _) => {
            let _ = stream.write_all(&noise(4096)).await;
            drain(&mut stream).await;
        }
        (Chaos::H2SpeaksH1, _) => {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await;
            drain(&mut stream).await;
        }
        (Chaos::OneBytePerSecond, _) => {
            for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n" {
                if stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        (Chaos::EndlessHeader, false) => {
            if read_head(&mut stream).await {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n").await;
                endless(
                    &mut stream,
                    b"x-chaos: a header line that is followed by another\r\n",
                )
                .await;
            }
        }
        (Chaos::EndlessBody, false) => {
            if read_head(&mut stream).await {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000000\r\n\r\n")
                    .await;
                endless(&mut stream, &[b'x'; 16 * 1024]).await;
            }
        }
        (_, true) => raw_h2(&mut stream, chaos).await,
        (_, false) => refuse_h1(&mut stream).await,
    }
}

/// Answers every HTTP/1.1 request of the connection with 421 and closes it.
async fn refuse_h1<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    if read_head(stream).await {
        let _ = stream
            .write_all(
                b"HTTP/1.1 421 Misdirected Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            )
            .await;
        let _ = stream.shutdown().await;
    }
}

/// Reads up to the end of a request head; false when the peer left first.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(read) if read > 0 && head.len() < MAX_READ => {
                head.extend_from_slice(&chunk[..read]);
            }
            _ => return false,
        }
    }
    true
}

/// Reads and discards until the peer leaves.
async fn drain<S: AsyncRead + Unpin>(stream: &mut S) {
    let mut chunk = [0u8; 4096];
    while matches!(stream.read(&mut chunk).await, Ok(read) if read > 0) {}
}

/// Writes `unit` again and again until the peer stops taking it.
async fn endless<S: AsyncWrite + Unpin>(stream: &mut S, unit: &[u8]) {
    while stream.write_all(unit).await.is_ok() {}
}

/// Bytes that are no protocol at all (xorshift, so runs are repeatable).
fn noise(length: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// The HTTP/2 behaviours, written frame by frame: the opening `chaos` calls for, PINGs and
/// SETTINGS acknowledged (the harness waits for its PING before the first request), and each
/// request answered as `chaos` says.
async fn raw_h2<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, chaos: Chaos) {
    let mut preface = [0u8; PREFACE.len()];
    if stream.read_exact(&mut preface).await.is_err() || preface != PREFACE {
        return;
    }
    let settings: &[(u16, u32)] = match chaos {
        Chaos::WindowZero => &[(SETTINGS_INITIAL_WINDOW_SIZE, 0)],
        Chaos::NoStreams => &[(SETTINGS_MAX_CONCURRENT_STREAMS, 0)],
        _ => &[],
    };
    let opening = match chaos {
        Chaos::HugeSettings => {
            // A header that announces 16 MiB, and then some of it.
            let mut huge = vec![0xff, 0xff, 0xff, SETTINGS, 0, 0, 0, 0, 0];
            huge.resize(huge.len() + 64 * 1024, 0);
            huge
        }
        Chaos::GoawayFirst => {
            let mut opening = settings_frame(settings);
            // Last stream 0, PROTOCOL_ERROR.
            opening.extend(frame(GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 1]));
            opening
        }
        _ => settings_frame(settings),
    };
    if stream.write_all(&opening).await.is_err() {
        return;
    }
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while buffer.len() >= 9 {
            let length =
                usize::from(buffer[0]) << 16 | usize::from(buffer[1]) << 8 | usize::from(buffer[2]);
            if length > MAX_READ {
                return;
            }
            if buffer.len() < 9 + length {
                break;
            }
            let (kind, flags) = (buffer[3], buffer[4]);
            let stream_id =
                u32::from_be_bytes([buffer[5], buffer[6], buffer[7], buffer[8]]) & 0x7fff_ffff;
            let payload = buffer[9..9 + length].to_vec();
            buffer.drain(..9 + length);
            let answer = match kind {
                SETTINGS if flags & ACK == 0 => frame(SETTINGS, ACK, 0, &[]),
                PING if flags & ACK == 0 => frame(PING, ACK, 0, &payload),
                HEADERS => match answer_request(chaos, stream_id, flags) {
                    Answer::Frames(frames) => frames,
                    Answer::Endless { head, unit } => {
                        if stream.write_all(&head).await.is_ok() {
                            endless(stream, &unit).await;
                        }
                        return;
                    }
                },
                _ => Vec::new(),
            };
            if !answer.is_empty() && stream.write_all(&answer).await.is_err() {
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(read) if read > 0 => buffer.extend_from_slice(&chunk[..read]),
            _ => return,
        }
    }
}

/// What the raw HTTP/2 server writes for one request.
enum Answer {
    Frames(Vec<u8>),
    /// `head`, then `unit` until the peer stops taking it.
    Endless {
        head: Vec<u8>,
        unit: Vec<u8>,
    },
}

fn answer_request(chaos: Chaos, stream: u32, flags: u8) -> Answer {
    match chaos {
        Chaos::ResetEveryStream => {
            Answer::Frames(frame(RST_STREAM, 0, stream, &7u32.to_be_bytes()))
        }
        Chaos::EndlessContinuation => {
            // Literal fields `x: y`, never followed by END_HEADERS.
            let junk: Vec<u8> = [0x00, 0x01, b'x', 0x01, b'y'].repeat(3000);
            Answer::Endless {
                head: frame(HEADERS, 0, stream, STATUS_200),
                unit: frame(CONTINUATION, 0, stream, &junk),
            }
        }
        // A request body can never come through a window of 0: only complete requests get
        // an answer.
        Chaos::WindowZero if flags & END_STREAM == 0 => Answer::Frames(Vec::new()),
        Chaos::EndlessBody => {
            let mut head = frame(HEADERS, END_HEADERS, stream, STATUS_200);
            head.extend(frame(DATA, 0, stream, &[b'x'; 16 * 1024]));
            Answer::Endless {
                head,
                unit: frame(DATA, 0, stream, &[b'x'; 16 * 1024]),
            }
        }
        _ => Answer::Frames(frame(HEADERS, END_HEADERS | END_STREAM, stream, STATUS_421)),
    }
}

fn settings_frame(settings: &[(u16, u32)]) -> Vec<u8> {
    let payload: Vec<u8> = settings
        .iter()
        .flat_map(|(id, value)| id.to_be_bytes().into_iter().chain(value.to_be_bytes()))
        .collect();
    frame(SETTINGS, 0, 0, &payload)
}

/// The UDP side of `quic-silent` (reads and drops) and `quic-garbage` (answers noise).
async fn datagrams(socket: UdpSocket, chaos: Chaos) {
    let mut datagram = [0u8; 2048];
    let garbage = noise(1200);
    while let Ok((_, peer)) = socket.recv_from(&mut datagram).await {
        if chaos == Chaos::QuicGarbage {
            let _ = socket.send_to(&garbage, peer).await;
        }
    }
}

/// `quic-stream-reset`: QUIC and HTTP/3 SETTINGS as they should be, then every request stream
/// reset with H3_REQUEST_REJECTED.
async fn reset_streams(endpoint: quinn::Endpoint) {
    let mut connections = JoinSet::new();
    while let Some(incoming) = endpoint.accept().await {
        connections.spawn(tokio::time::timeout(LIFETIME, async move {
            let Ok(connection) = incoming.await else {
                return;
            };
            // The control stream: type 0, an empty SETTINGS frame.
            if let Ok(mut control) = connection.open_uni().await {
                let _ = control.write_all(&[0x00, 0x04, 0x00]).await;
                let code = quinn::VarInt::from_u32(H3_REQUEST_REJECTED);
                while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                    let _ = send.reset(code);
                    let _ = recv.stop(code);
                }
                drop(control);
            }
        }));
        while connections.try_join_next().is_some() {}
    }
}
