//! TLS by SNI for the embedded target's TCP port: the certificate is chosen by SNI (no SNI or an
//! unknown name gets the `shared` default), and an mTLS tenant's name gets a configuration that
//! requires a client certificate (of any tenant's CA: which tenant it opens is the policy's
//! decision, `client_cas`). All configurations share one session cache, as virtual hosts
//! on one port of a real server do, so that resumption under another SNI is really attempted;
//! rustls refuses it (RFC 6066 §3), except under [`Fault::ResumptionBypass`], which hands each
//! connection a view of the cache that unbinds sessions from their SNI (`session_cache`).

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{Acceptor, ServerSessionMemoryCache, StoresServerSessions};
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use super::client_cas::ClientCas;
use super::session_cache::SniUnboundSessions;
use super::{IDLE, ServeError, StartError};
use crate::client::tls::{VERSIONS, provider};
use crate::pki::Pki;
use misdirect_core::deployment::{CertificateId, Deployment, Role};
use misdirect_core::fault::Fault;

/// The TLS configurations of one target, one per certificate and client-certificate demand.
pub(super) struct TlsBySni {
    fault: Option<Fault>,
    sessions: Arc<ServerSessionMemoryCache>,
    /// One configuration per certificate, without and with a required client certificate.
    configs: Vec<(CertificateId, bool, Arc<ServerConfig>)>,
    /// Inputs to rebuild a configuration per connection (only [`Fault::ResumptionBypass`]).
    material: Vec<(CertificateId, ServerConfigMaterial)>,
    client_cas: Arc<ClientCas>,
    /// Whether it offers ALPN (h2 and http/1.1); without, clients speak HTTP/1.1.
    alpn: bool,
}

#[derive(Clone)]
struct ServerConfigMaterial {
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: Arc<rustls_pki_types::PrivateKeyDer<'static>>,
}

/// A handshake done: the stream, and what the target knows of the connection from it.
pub(super) struct Handshake {
    pub(super) tls: TlsStream<TcpStream>,
    pub(super) sni: Option<String>,
    pub(super) certificate: CertificateId,
    /// The mTLS tenant whose CA issued the client's certificate, if it presented one.
    pub(super) client_certificate: Option<Role>,
    pub(super) demanded_client_certificate: bool,
    pub(super) h2: bool,
}

impl TlsBySni {
    pub(super) fn new(
        pki: &Pki,
        client_cas: Arc<ClientCas>,
        fault: Option<Fault>,
        sessions: Arc<ServerSessionMemoryCache>,
        alpn: bool,
    ) -> Result<Self, StartError> {
        let material = CertificateId::ALL
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
        let mut tls = Self {
            fault,
            sessions,
            configs: Vec::new(),
            material,
            client_cas,
            alpn,
        };
        for id in CertificateId::ALL {
            for demand in [false, true] {
                let config = tls.build_config(id, demand, tls.sessions.clone())?;
                tls.configs.push((id, demand, config));
            }
        }
        Ok(tls)
    }

    /// Completes the handshake of an accepted connection, with the configuration its SNI asks
    /// for.
    pub(super) async fn accept(
        &self,
        tcp: TcpStream,
        deployment: &Deployment,
    ) -> Result<Handshake, ServeError> {
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
            .and_then(|name| deployment.role_of(name))
            .is_some_and(Role::requires_client_certificate);
        let config = self.config_for(sni.as_deref(), certificate, demand)?;
        let tls = tokio::time::timeout(IDLE, start.into_stream(config)).await??;
        let (_, session) = tls.get_ref();
        let client_certificate = self.client_cas.issuer(session.peer_certificates());
        let h2 = session.alpn_protocol() == Some(b"h2".as_slice());
        Ok(Handshake {
            tls,
            sni,
            certificate,
            client_certificate,
            demanded_client_certificate: demand,
            h2,
        })
    }

    fn build_config(
        &self,
        id: CertificateId,
        demand_client_certificate: bool,
        sessions: Arc<dyn StoresServerSessions>,
    ) -> Result<Arc<ServerConfig>, StartError> {
        // Invariant: `new` collects material for every `CertificateId`.
        let material = &self
            .material
            .iter()
            .find(|(candidate, _)| *candidate == id)
            .expect("material exists for every certificate id")
            .1;
        let builder =
            ServerConfig::builder_with_provider(provider()).with_protocol_versions(VERSIONS)?;
        let builder = if demand_client_certificate {
            builder.with_client_cert_verifier(self.client_cas.verifier(true)?)
        } else {
            builder.with_no_client_auth()
        };
        let mut config =
            builder.with_single_cert(material.chain.clone(), material.key.clone_key())?;
        if self.alpn {
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        }
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
            let sessions = Arc::new(SniUnboundSessions::new(
                self.sessions.clone(),
                sni.map(str::to_owned),
            ));
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
