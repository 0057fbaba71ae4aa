//! The HTTP/2 shell of the embedded target: the h2 crate serves the connection, with an ORIGIN
//! frame slipped in after its SETTINGS (and, for a fault with a lenient parser, the client's
//! field blocks read by that parser first); each request is answered in a task of its own, as
//! the policy decides.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::gateway::Forward;
use super::lenient_h2::ReadLeniently;
use super::origin_frame::InjectAfterFirstFrame;
use super::{IDLE, ServeError, Shared, request_head, response_head};
use misdirect_core::lenient;
use misdirect_core::policy::{ConnectionFacts, ConnectionMemory, Reply};
use misdirect_core::protocol::Protocol;
use misdirect_core::wire;

pub(super) async fn serve(
    tls: TlsStream<TcpStream>,
    facts: ConnectionFacts,
    shared: Arc<Shared>,
) -> Result<(), ServeError> {
    let origins = shared.connection_origins(&facts).await;
    let origin = wire::h2::origin_frame(shared.origin_frame_stream, &origins);
    match shared.fault.filter(|fault| lenient::FAULTS.contains(fault)) {
        Some(fault) => {
            let io = InjectAfterFirstFrame::new(ReadLeniently::new(tls, fault), origin);
            serve_io(io, facts, shared).await
        }
        None => serve_io(InjectAfterFirstFrame::new(tls, origin), facts, shared).await,
    }
}

async fn serve_io<T: AsyncRead + AsyncWrite + Unpin>(
    io: T,
    facts: ConnectionFacts,
    shared: Arc<Shared>,
) -> Result<(), ServeError> {
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
                handlers.spawn(async move { answer(request, respond, &facts, &shared, &memory, &closing).await });
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
async fn answer(
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
        if bytes.len() + chunk.len() > wire::h1::MAX_BODY {
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
            if let Some(alt_svc) = shared.alt_svc.as_deref().filter(|_| answer.status < 300) {
                response = response.header(http::header::ALT_SVC, alt_svc);
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
