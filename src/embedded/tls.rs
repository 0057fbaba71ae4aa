//! TLS by SNI for the embedded target's TCP port: the certificate is chosen by SNI (no SNI or an
//! unknown name gets the `shared` default), an mTLS tenant's name gets a configuration that
//! requires a client certificate (of any tenant's CA: which tenant it opens is the policy's
//! decision, `client_cas`), and the TLS 1.3-only tenant's name one that refuses TLS 1.2. All configurations share one session cache, as virtual hosts
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

/// The TLS configurations of one target, one per [`NamePolicy`].
pub(super) struct TlsBySni {
    fault: Option<Fault>,
    sessions: Arc<ServerSessionMemoryCache>,
    /// One configuration per policy a name can have.
    configs: Vec<(NamePolicy, Arc<ServerConfig>)>,
    /// Inputs to rebuild a configuration per connection (only [`Fault::ResumptionBypass`]).
    material: Vec<(CertificateId, ServerConfigMaterial)>,
    client_cas: Arc<ClientCas>,
    /// Whether it offers ALPN (h2 and http/1.1); without, clients speak HTTP/1.1.
    alpn: bool,
}

/// What the SNI name decides about a handshake: the certificate, whether a client certificate
/// is required, and whether TLS 1.2 is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NamePolicy {
    certificate: CertificateId,
    demand_client_certificate: bool,
    tls13_only: bool,
}

impl NamePolicy {
    /// The policy of a ClientHello with this SNI: the certificate that covers it (`shared` by
    /// default), and what the name's tenant requires.
    fn of(sni: Option<&str>, deployment: &Deployment) -> Self {
        let role = sni.and_then(|name| deployment.role_of(name));
        Self {
            certificate: sni
                .and_then(CertificateId::for_server_name)
                .unwrap_or(CertificateId::Shared),
            demand_client_certificate: role.is_some_and(Role::requires_client_certificate),
            tls13_only: role.is_some_and(Role::requires_tls13),
        }
    }

    fn all() -> impl Iterator<Item = Self> {
        CertificateId::ALL.into_iter().flat_map(|certificate| {
            [(false, false), (false, true), (true, false), (true, true)].map(
                |(demand_client_certificate, tls13_only)| Self {
                    certificate,
                    demand_client_certificate,
                    tls13_only,
                },
            )
        })
    }
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
    pub(super) tls13: bool,
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
        for policy in NamePolicy::all() {
            let config = tls.build_config(policy, tls.sessions.clone())?;
            tls.configs.push((policy, config));
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
        let policy = NamePolicy::of(sni.as_deref(), deployment);
        let config = self.config_for(sni.as_deref(), policy)?;
        let tls = tokio::time::timeout(IDLE, start.into_stream(config)).await??;
        let (_, session) = tls.get_ref();
        let client_certificate = self.client_cas.issuer(session.peer_certificates());
        let h2 = session.alpn_protocol() == Some(b"h2".as_slice());
        let tls13 = session.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
        Ok(Handshake {
            tls,
            sni,
            certificate: policy.certificate,
            client_certificate,
            demanded_client_certificate: policy.demand_client_certificate,
            tls13,
            h2,
        })
    }

    fn build_config(
        &self,
        policy: NamePolicy,
        sessions: Arc<dyn StoresServerSessions>,
    ) -> Result<Arc<ServerConfig>, StartError> {
        // Invariant: `new` collects material for every `CertificateId`.
        let material = &self
            .material
            .iter()
            .find(|(candidate, _)| *candidate == policy.certificate)
            .expect("material exists for every certificate id")
            .1;
        let versions: &[&rustls::SupportedProtocolVersion] = if policy.tls13_only {
            &[&rustls::version::TLS13]
        } else {
            VERSIONS
        };
        let builder =
            ServerConfig::builder_with_provider(provider()).with_protocol_versions(versions)?;
        let builder = if policy.demand_client_certificate {
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

    /// The configuration for a ClientHello with this SNI and the policy its name has.
    fn config_for(
        &self,
        sni: Option<&str>,
        policy: NamePolicy,
    ) -> Result<Arc<ServerConfig>, StartError> {
        if self.fault == Some(Fault::ResumptionBypass) {
            let sessions = Arc::new(SniUnboundSessions::new(
                self.sessions.clone(),
                sni.map(str::to_owned),
            ));
            return self.build_config(policy, sessions);
        }
        // Invariant: `new` builds a configuration for every policy.
        Ok(self
            .configs
            .iter()
            .find(|(candidate, _)| *candidate == policy)
            .map(|(_, config)| config.clone())
            .expect("a configuration exists for every policy"))
    }
}
