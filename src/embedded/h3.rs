//! The embedded target's HTTP/3 side: a quinn endpoint on the UDP port with the same number as
//! the TCP port, served with the h3 crate.
//!
//! QUIC has no equivalent of the lazy TLS acceptor, so one configuration serves every SNI: the
//! certificate is chosen by a resolver, and a client certificate is requested from every client
//! but required by nobody; the policy then refuses the mTLS tenant on connections without one.
//! The h3 crate itself resets requests whose Host differs from `:authority`, and those whose
//! authority no URI can hold, with H3_MESSAGE_ERROR (RFC 9114 §4.3.1, §4.1.2), before the
//! policy sees them. The faults that must answer such requests ([`Fault::H3Mismatch421`] and
//! those of [`misdirect_core::lenient::FAULTS`]), and a client scenario that
//! scripts ORIGIN frames, are served by a minimal HTTP/3 server of our own over
//! [`misdirect_core::wire::h3`] instead. Otherwise the policy's ORIGIN frame (RFC 9412), which
//! the h3 crate cannot send, is slipped onto its control stream by `origin_frame`.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use h3::error::Code;
use quinn::crypto::rustls::{HandshakeData, QuicServerConfig};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;

use super::client_cas::ClientCas;
use super::gateway::Forward;
use super::origin_frame::InjectOnControlStream;
use super::{IDLE, ServeError, Shared};
use crate::client::tls::provider;
use crate::pki::Pki;
use misdirect_core::deployment::{CertificateId, REQUEST_ID_HEADER, Role, TENANT_HEADER};
use misdirect_core::fault::Fault;
use misdirect_core::lenient;
use misdirect_core::policy::{ConnectionFacts, ConnectionMemory, Reply, RequestHead};
use misdirect_core::protocol::Protocol;
use misdirect_core::wire;

/// The QUIC server configuration of one embedded target.
pub(super) fn server_config(
    pki: &Pki,
    client_cas: &ClientCas,
    fault: Option<Fault>,
    sessions: Arc<rustls::server::ServerSessionMemoryCache>,
) -> Result<quinn::ServerConfig, super::StartError> {
    let provider = provider();
    let mut keys = Vec::new();
    for id in CertificateId::ALL {
        let identity = pki.server(id);
        let key = provider
            .key_provider
            .load_private_key(identity.private_key())?;
        keys.push((id, Arc::new(CertifiedKey::new(identity.chain(), key))));
    }
    let verifier = client_cas.verifier(false)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(CertificateBySni {
            keys,
            ignore_sni: fault == Some(Fault::QuicIgnoresSni),
        }));
    config.alpn_protocols = vec![b"h3".to_vec()];
    config.session_storage = sessions;
    let quic = QuicServerConfig::try_from(config)
        .map_err(|error| super::StartError::Quic(error.to_string()))?;
    Ok(quinn::ServerConfig::with_crypto(Arc::new(quic)))
}

/// Picks the certificate that covers the SNI, `shared` without SNI or for unknown names.
#[derive(Debug)]
struct CertificateBySni {
    keys: Vec<(CertificateId, Arc<CertifiedKey>)>,
    /// [`Fault::QuicIgnoresSni`]: always the default.
    ignore_sni: bool,
}

impl CertificateBySni {
    fn certificate_for(&self, sni: Option<&str>) -> CertificateId {
        sni.filter(|_| !self.ignore_sni)
            .and_then(CertificateId::for_server_name)
            .unwrap_or(CertificateId::Shared)
    }
}

impl ResolvesServerCert for CertificateBySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let id = self.certificate_for(hello.server_name());
        self.keys
            .iter()
            .find(|(candidate, _)| *candidate == id)
            .map(|(_, key)| Arc::clone(key))
    }
}

/// Serves one QUIC connection.
pub(super) async fn serve(
    incoming: quinn::Incoming,
    shared: Arc<Shared>,
) -> Result<(), ServeError> {
    let connection = tokio::time::timeout(IDLE, incoming).await??;
    let sni = connection
        .handshake_data()
        .and_then(|data| data.downcast::<HandshakeData>().ok())
        .and_then(|data| data.server_name);
    let certificate = sni
        .as_deref()
        .filter(|_| shared.fault != Some(Fault::QuicIgnoresSni))
        .and_then(CertificateId::for_server_name)
        .unwrap_or(CertificateId::Shared);
    let chain = connection
        .peer_identity()
        .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok());
    let client_certificate = shared
        .client_cas
        .issuer(chain.as_deref().map(Vec::as_slice));
    let facts = ConnectionFacts {
        sni,
        certificate,
        client_certificate,
        handshake_demanded_client_certificate: false,
        tls13: true,
        local_port: shared.port,
        connection: shared.next_connection(),
    };
    // The h3 crate can neither answer a Host/:authority contradiction or an authority no URI
    // holds (it resets such requests itself) nor send an ORIGIN frame a client scenario scripts.
    let hidden_by_the_crate = shared
        .fault
        .is_some_and(|fault| fault == Fault::H3Mismatch421 || lenient::FAULTS.contains(&fault));
    if hidden_by_the_crate || shared.origin_frame.is_some() {
        return serve_raw(connection, &facts, &shared).await;
    }
    // ORIGIN on the control stream (RFC 9412), as the HTTP/2 shell sends it.
    let origin = wire::h3::origin_frame(&shared.connection_origins(&facts).await);
    let mut h3 =
        h3::server::Connection::<_, Bytes>::new(InjectOnControlStream::new(connection, origin))
            .await?;
    let memory = std::sync::Mutex::new(ConnectionMemory::default());
    let mut closing = false;
    while let Ok(Ok(Some(resolver))) = tokio::time::timeout(IDLE, h3.accept()).await {
        // A malformed request was already reset by the h3 crate.
        let Ok((request, mut stream)) = resolver.resolve_request().await else {
            continue;
        };
        if closing {
            // Sent before our GOAWAY reached the client: rejected, not processed.
            stream.stop_stream(Code::H3_REQUEST_REJECTED);
            continue;
        }
        // Read the request to its end first: dropping an unread stream makes quinn send
        // STOP_SENDING(0), which races with the client's FIN.
        let mut body = Vec::new();
        while let Ok(Ok(Some(mut chunk))) = tokio::time::timeout(IDLE, stream.recv_data()).await {
            let bytes = chunk.copy_to_bytes(chunk.remaining());
            if body.len() + bytes.len() <= wire::h1::MAX_BODY {
                body.extend_from_slice(&bytes);
            }
        }
        let forward = Forward::from_parts(&request, body);
        let head = super::request_head(Protocol::Http3, &request);
        match shared.respond(&facts, &memory, &head, forward).await {
            Reply::Malformed(_) => {
                stream.stop_stream(Code::H3_MESSAGE_ERROR);
            }
            Reply::Respond(answer) => {
                let response = super::response_head(&answer);
                // A failure on one stream (the client stopped it) ends that stream only.
                let sent = async {
                    stream.send_response(response.body(())?).await?;
                    stream.send_data(Bytes::from(answer.body)).await?;
                    stream.finish().await?;
                    Ok::<(), ServeError>(())
                };
                let _ = sent.await;
                if answer.close {
                    // GOAWAY naming the next stream: this one was processed (RFC 9114 §5.2);
                    // any later request is rejected.
                    let _ = h3.shutdown(1).await;
                    closing = true;
                }
            }
        }
    }
    Ok(())
}

/// A minimal HTTP/3 server: an empty SETTINGS on our control stream, the peer's unidirectional
/// streams read and discarded, and each request stream decoded, decided and answered.
async fn serve_raw(
    connection: quinn::Connection,
    facts: &ConnectionFacts,
    shared: &Shared,
) -> Result<(), ServeError> {
    let mut control = connection.open_uni().await?;
    let mut preface = Vec::new();
    wire::h3::put_varint(wire::h3::STREAM_CONTROL, &mut preface);
    preface.extend_from_slice(&wire::h3::frame(wire::h3::FRAME_SETTINGS, &[]));
    if shared.origin_frame.is_some() {
        // RFC 9412: ORIGIN on the control stream, right after SETTINGS.
        preface.extend_from_slice(&wire::h3::origin_frame(&shared.advertised_origins(facts)));
    }
    control.write_all(&preface).await?;
    // Owned here, so that they end with this connection's task.
    let mut readers = tokio::task::JoinSet::new();
    let memory = std::sync::Mutex::new(ConnectionMemory::default());
    loop {
        tokio::select! {
            accepted = connection.accept_uni() => {
                let Ok(mut stream) = accepted else { break };
                readers.spawn(async move {
                    let mut sink = [0u8; 4096];
                    while let Ok(Some(_)) = stream.read(&mut sink).await {}
                });
            }
            accepted = tokio::time::timeout(IDLE, connection.accept_bi()) => {
                let Ok(Ok((send, recv))) = accepted else { break };
                // A failure on one stream (the client stopped it) ends that stream only.
                let _ = answer_raw(send, recv, facts, &memory, shared).await;
            }
        }
    }
    Ok(())
}

async fn answer_raw(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    facts: &ConnectionFacts,
    memory: &std::sync::Mutex<ConnectionMemory>,
    shared: &Shared,
) -> Result<(), ServeError> {
    let bytes = tokio::time::timeout(IDLE, recv.read_to_end(1024 * 1024)).await??;
    let mut rest = bytes.as_slice();
    let mut fields = None;
    let mut body = Vec::new();
    while let Some((kind, payload, used)) = wire::h3::parse_frame(rest) {
        if kind == wire::h3::FRAME_HEADERS && fields.is_none() {
            fields = wire::h3::decode_field_section(payload).ok();
        } else if kind == wire::h3::FRAME_DATA {
            body.extend_from_slice(payload);
        }
        rest = &rest[used..];
    }
    let message_error = quinn::VarInt::from_u64(wire::h3::H3_MESSAGE_ERROR)?;
    let Some(fields) = fields else {
        send.reset(message_error)?;
        return Ok(());
    };
    let values = |name: &str| -> Vec<String> {
        fields
            .iter()
            .filter(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.clone())
            .collect()
    };
    let authorities = values(":authority");
    let head = RequestHead {
        protocol: Protocol::Http3,
        method: values(":method").into_iter().next().unwrap_or_default(),
        scheme: values(":scheme").into_iter().next(),
        authority: authorities.first().cloned(),
        host: values("host"),
        repeated_authority: authorities.get(1..).and_then(<[String]>::last).cloned(),
    };
    let forward = Forward {
        path: values(":path")
            .into_iter()
            .next()
            .unwrap_or_else(|| "/".to_owned()),
        request_id: values(REQUEST_ID_HEADER).into_iter().next(),
        body: Bytes::from(body),
    };
    match shared.respond(facts, memory, &head, forward).await {
        Reply::Malformed(_) => send.reset(message_error)?,
        Reply::Respond(answer) => {
            let mut response = vec![
                (":status".to_owned(), answer.status.to_string()),
                ("content-type".to_owned(), answer.content_type.to_owned()),
            ];
            if let Some(label) = answer.tenant.and_then(Role::tenant) {
                response.push((TENANT_HEADER.to_owned(), label.to_owned()));
            }
            if let Some(cache_control) = answer.cache_control {
                response.push(("cache-control".to_owned(), cache_control.to_owned()));
            }
            let mut bytes = wire::h3::frame(
                wire::h3::FRAME_HEADERS,
                &wire::h3::encode_field_section(&response),
            );
            bytes.extend_from_slice(&wire::h3::frame(
                wire::h3::FRAME_DATA,
                answer.body.as_bytes(),
            ));
            send.write_all(&bytes).await?;
            send.finish()?;
        }
    }
    Ok(())
}
