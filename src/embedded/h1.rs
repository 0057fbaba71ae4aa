//! The HTTP/1.1 shell of the embedded target: requests read with the core's parser
//! ([`wire::h1`](misdirect_core::wire::h1)), answered as the policy decides, one at a time per
//! connection; the mock upstreams read their requests with the same reader.

use std::sync::Mutex;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::gateway::Forward;
use super::{IDLE, ServeError, Shared};
use misdirect_core::deployment::{Role, TENANT_HEADER};
use misdirect_core::policy::{Answer, ConnectionFacts, ConnectionMemory, Reply, RequestHead};
use misdirect_core::protocol::Protocol;
use misdirect_core::wire::h1::{Progress, Refusal, Request, RequestReader, absolute_form};

pub(super) async fn serve(
    mut tls: TlsStream<TcpStream>,
    facts: &ConnectionFacts,
    shared: &Shared,
) -> Result<(), ServeError> {
    let memory = Mutex::new(ConnectionMemory::default());
    let mut buffer = Vec::new();
    loop {
        let request = match read_request(&mut tls, &mut buffer).await? {
            Read::Request(request) => request,
            Read::Closed => return Ok(()),
            Read::Refuse(Refusal { status, reason }) => {
                let answer = Answer::refusal(status, format!("{reason}\n"), true);
                return write_h1(&mut tls, &answer, true, None).await;
            }
        };
        let target = absolute_form(&request.target);
        let head = RequestHead {
            protocol: Protocol::Http1,
            method: request.method.clone(),
            scheme: target.map(|(scheme, _)| scheme.to_owned()),
            authority: target.map(|(_, authority)| authority.to_owned()),
            host: request.headers_named("host"),
            repeated_authority: None,
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
        let alt_svc = shared.alt_svc.as_deref().filter(|_| answer.status < 300);
        write_h1(&mut tls, &answer, close, alt_svc).await?;
        if close {
            return Ok(());
        }
    }
}

/// What reading the next HTTP/1.1 request gave.
pub(crate) enum Read {
    Request(Request),
    /// The peer closed the connection between requests.
    Closed,
    /// A request the reader will not take, with the status to refuse it with.
    Refuse(Refusal),
}

/// Reads one request from `io` with the core's reader; `buffer` keeps bytes read past it.
pub(crate) async fn read_request<S: AsyncRead + Unpin>(
    io: &mut S,
    buffer: &mut Vec<u8>,
) -> Result<Read, ServeError> {
    let mut reader = RequestReader::default();
    loop {
        match reader.read(buffer) {
            Progress::Request(request) => return Ok(Read::Request(request)),
            Progress::Refuse(refusal) => return Ok(Read::Refuse(refusal)),
            Progress::NeedMore { if_closed } => {
                if fill(io, buffer).await? == 0 {
                    return Ok(if_closed.map_or(Read::Closed, Read::Refuse));
                }
            }
        }
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
