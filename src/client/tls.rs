//! TLS for the harness's clients: what to trust, which certificate to present, and session
//! tickets that a scenario can carry from one connection to another.
//!
//! The verifier checks the chain, validity period and key usage against the trusted CA, but not
//! the name: whether the certificate covers an authority is exactly what the scenarios observe,
//! so its SANs are recorded instead of enforced.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, NamedGroup, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::pki::{Pki, client_files};
use misdirect_core::deployment::Role;
use misdirect_core::scenario::TlsVersion;

/// The one crypto provider of the harness (ring), selected explicitly everywhere.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS 1.3 and 1.2: many deployed servers still default to 1.2.
pub const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A failure to set up client TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("failed to read {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("failed to build the TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("failed to build the certificate verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// What the clients trust, and what they present, when the target is a server of yours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    pub roots: Roots,
    /// The client certificate each mTLS tenant accepts; a tenant without one is not played.
    pub client_identities: Vec<(Role, ClientIdentity)>,
}

/// The certificates a server's chain must lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// A PEM file with the CA (or CAs) that issued the server's certificates.
    CaFile(PathBuf),
    /// The operating system's trust store (`SSL_CERT_FILE`/`SSL_CERT_DIR` override it).
    System,
}

/// A client certificate chain and its key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

impl Roots {
    /// `system`, or the path of a CA file relative to `base`.
    pub fn named(value: &str, base: &Path) -> Self {
        match value {
            "system" => Self::System,
            file => Self::CaFile(base.join(file)),
        }
    }
}

impl Trust {
    /// A folder written by `misdirect certs`: `ca.pem` to trust, and each mTLS tenant's client
    /// certificate and key to present (`client.pem`, `partner-client.pem`, …) where the folder
    /// has them.
    pub fn certs_folder(dir: &Path) -> Self {
        let client_identities = Role::ALL
            .into_iter()
            .filter(|role| role.requires_client_certificate())
            .filter_map(|tenant| {
                let [_, certificate, key] = client_files(tenant);
                let identity = ClientIdentity {
                    certificate: dir.join(certificate),
                    key: dir.join(key),
                };
                (identity.certificate.is_file() && identity.key.is_file())
                    .then_some((tenant, identity))
            })
            .collect();
        Self {
            roots: Roots::CaFile(dir.join("ca.pem")),
            client_identities,
        }
    }

    /// The client certificate that the tenant of `role` accepts, if one was given.
    pub fn client_identity(&self, role: Role) -> Option<&ClientIdentity> {
        self.client_identities
            .iter()
            .find(|(tenant, _)| *tenant == role)
            .map(|(_, identity)| identity)
    }
}

/// What the clients trust and may present.
///
/// The verifier and every client-certificate resolver are created once and shared by every
/// connection: rustls only resumes a session under the same verifier and resolver objects.
#[derive(Debug)]
pub struct Credentials {
    verifier: Arc<ChainOnlyVerifier>,
    /// The certificate each mTLS tenant accepts, for the tenants that have one.
    certificates: Vec<(Role, Arc<dyn ResolvesClientCert>)>,
    without_certificate: Arc<dyn ResolvesClientCert>,
    /// Where the TLS secrets go, for Wireshark: `--keylog FILE`, or else the file
    /// `SSLKEYLOGFILE` names (rustls reads it), or nowhere.
    key_log: Arc<dyn rustls::KeyLog>,
    /// The QUIC endpoints every HTTP/3 connection made with these credentials shares.
    pub(super) quic: crate::quic_endpoints::ClientEndpoints,
}

impl Credentials {
    /// Trust the run's own CA and present its client certificates.
    pub fn from_pki(pki: &Pki) -> Result<Self, TlsSetupError> {
        Self::new(
            strict_store(vec![pki.server_ca.certificate.clone()])?,
            pki.clients()
                .map(|(tenant, client)| {
                    (tenant, (client.client.chain(), client.client.private_key()))
                })
                .collect(),
        )
    }

    /// What a server of yours is trusted with: its CA file or the system's roots, and the client
    /// certificate for its mTLS tenant, if there is one.
    pub fn from_trust(trust: &Trust) -> Result<Self, TlsSetupError> {
        let read_error = |path: &Path, detail: String| TlsSetupError::Read {
            path: path.display().to_string(),
            detail,
        };
        let certificates = |path: &Path| {
            let text = fs::read(path).map_err(|error| read_error(path, error.to_string()))?;
            let certificates = CertificateDer::pem_slice_iter(&text)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| read_error(path, error.to_string()))?;
            if certificates.is_empty() {
                return Err(read_error(path, "no certificate in it".to_owned()));
            }
            Ok(certificates)
        };
        let roots = match &trust.roots {
            Roots::CaFile(path) => strict_store(certificates(path)?)?,
            Roots::System => {
                let found = rustls_native_certs::load_native_certs();
                if found.certs.is_empty() {
                    let detail = found
                        .errors
                        .first()
                        .map_or_else(|| "no certificate found".to_owned(), ToString::to_string);
                    return Err(read_error(
                        Path::new("the system's root certificates"),
                        detail,
                    ));
                }
                // System stores hold the odd certificate webpki cannot parse: skip those.
                let mut store = RootCertStore::empty();
                let (_, unparsable) = store.add_parsable_certificates(found.certs);
                if store.is_empty() {
                    return Err(read_error(
                        Path::new("the system's root certificates"),
                        format!("no usable certificate ({unparsable} unparsable)"),
                    ));
                }
                store
            }
        };
        let identities = trust
            .client_identities
            .iter()
            .map(|(tenant, identity)| {
                let key = PrivateKeyDer::from_pem_file(&identity.key)
                    .map_err(|error| read_error(&identity.key, error.to_string()))?;
                Ok::<_, TlsSetupError>((*tenant, (certificates(&identity.certificate)?, key)))
            })
            .collect::<Result<_, _>>()?;
        Self::new(roots, identities)
    }

    fn new(
        store: RootCertStore,
        client_identities: Vec<(Role, (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>))>,
    ) -> Result<Self, TlsSetupError> {
        let provider = provider();
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
            .build()?;
        let certificates = client_identities
            .into_iter()
            .map(|(tenant, (chain, key))| {
                let key = provider.key_provider.load_private_key(key)?;
                let resolver: Arc<dyn ResolvesClientCert> = Arc::new(ClientCertificate(Some(
                    Arc::new(CertifiedKey::new(chain, key)),
                )));
                Ok::<_, rustls::Error>((tenant, resolver))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            verifier: Arc::new(ChainOnlyVerifier { inner }),
            certificates,
            without_certificate: Arc::new(ClientCertificate(None)),
            key_log: Arc::new(rustls::KeyLogFile::new()),
            quic: crate::quic_endpoints::ClientEndpoints::default(),
        })
    }

    /// Appends every connection's TLS secrets to `path` in the NSS key log format, which
    /// Wireshark reads to decrypt a capture of the run.
    pub fn log_keys_to(&mut self, path: &Path) -> Result<(), TlsSetupError> {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| TlsSetupError::Read {
                path: path.display().to_string(),
                detail: error.to_string(),
            })?;
        self.key_log = Arc::new(KeyLogTo(Mutex::new(file)));
        Ok(())
    }

    /// A client configuration for one connection, presenting the certificate that the tenant
    /// of `client_certificate` accepts (none if it was given none).
    pub fn client_config(
        &self,
        alpn: &[u8],
        client_certificate: Option<Role>,
        tickets: Arc<ConnectionTickets>,
        version: Option<TlsVersion>,
    ) -> Result<ClientConfig, TlsSetupError> {
        let versions: &[&rustls::SupportedProtocolVersion] = match version {
            None => VERSIONS,
            Some(TlsVersion::Tls12) => &[&rustls::version::TLS12],
            Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)?
            .dangerous()
            .with_custom_certificate_verifier(self.verifier.clone());
        let resolver = client_certificate
            .and_then(|tenant| {
                self.certificates
                    .iter()
                    .find(|(candidate, _)| *candidate == tenant)
            })
            .map_or(&self.without_certificate, |(_, resolver)| resolver);
        let mut config = builder.with_client_cert_resolver(Arc::clone(resolver));
        config.alpn_protocols = vec![alpn.to_vec()];
        config.resumption = rustls::client::Resumption::store(tickets);
        config.key_log = Arc::clone(&self.key_log);
        Ok(config)
    }
}

/// A key log file of our own (`--keylog`): one NSS key log line per secret.
#[derive(Debug)]
struct KeyLogTo(Mutex<fs::File>);

impl rustls::KeyLog for KeyLogTo {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        use std::fmt::Write as _;
        use std::io::Write as _;
        let hex = |bytes: &[u8]| {
            bytes.iter().fold(String::new(), |mut text, byte| {
                let _ = write!(text, "{byte:02x}");
                text
            })
        };
        let line = format!("{label} {} {}\n", hex(client_random), hex(secret));
        let mut file = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = file.write_all(line.as_bytes());
    }
}

/// A root store of CAs that must every one be sound (the run's CA, a CA file).
fn strict_store(roots: Vec<CertificateDer<'static>>) -> Result<RootCertStore, TlsSetupError> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root)?;
    }
    Ok(store)
}

/// Presents the harness's client certificate, or none.
#[derive(Debug)]
struct ClientCertificate(Option<Arc<CertifiedKey>>);

impl ResolvesClientCert for ClientCertificate {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.clone()
    }

    fn has_certs(&self) -> bool {
        self.0.is_some()
    }
}

/// Verifies everything about the server certificate except that it names the SNI.
#[derive(Debug)]
struct ChainOnlyVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Verify against a name the certificate itself claims, so that only the chain, validity
        // and usage are judged here; name coverage is observed by the scenarios.
        let own_name = subject_alt_names(end_entity)
            .into_iter()
            .find_map(|san| {
                let concrete = match san.strip_prefix("*.") {
                    Some(parent) => format!("wildcard.{parent}"),
                    None => san,
                };
                ServerName::try_from(concrete).ok()
            })
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))?;
        self.inner
            .verify_server_cert(end_entity, intermediates, &own_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// DNS names and IP addresses in a certificate's subjectAltName extension.
pub fn subject_alt_names(certificate: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(certificate.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(extension)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    extension
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::Ipv4Addr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::Ipv6Addr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Session tickets received in one case, kept by the name of the connection that received them.
#[derive(Debug, Default)]
pub struct TicketJar {
    tls13: Mutex<HashMap<String, Vec<Tls13ClientSessionValue>>>,
    tls12: Mutex<HashMap<String, Tls12ClientSessionValue>>,
}

/// One connection's view of the jar: it files the tickets it receives under its own name and,
/// only when a scenario asks it to resume, offers a ticket of the named earlier connection,
/// whatever SNI it now uses. No connection resumes by accident.
#[derive(Debug)]
pub struct ConnectionTickets {
    jar: Arc<TicketJar>,
    name: String,
    resume_from: Option<String>,
    offered: AtomicBool,
}

impl ConnectionTickets {
    pub fn new(jar: Arc<TicketJar>, name: &str, resume_from: Option<&str>) -> Self {
        Self {
            jar,
            name: name.to_owned(),
            resume_from: resume_from.map(str::to_owned),
            offered: AtomicBool::new(false),
        }
    }

    /// Whether a ticket was handed to the TLS stack for the ClientHello.
    pub fn offered(&self) -> bool {
        self.offered.load(Ordering::Relaxed)
    }
}

impl ClientSessionStore for ConnectionTickets {
    fn set_kx_hint(&self, _: ServerName<'static>, _: NamedGroup) {}

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }

    fn set_tls12_session(&self, _: ServerName<'static>, value: Tls12ClientSessionValue) {
        lock(&self.jar.tls12).insert(self.name.clone(), value);
    }

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        let source = self.resume_from.as_ref()?;
        let session = lock(&self.jar.tls12).get(source).cloned();
        if session.is_some() {
            self.offered.store(true, Ordering::Relaxed);
        }
        session
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {}

    fn insert_tls13_ticket(&self, _: ServerName<'static>, value: Tls13ClientSessionValue) {
        lock(&self.jar.tls13)
            .entry(self.name.clone())
            .or_default()
            .push(value);
    }

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        let source = self.resume_from.as_ref()?;
        let ticket = lock(&self.jar.tls13).get_mut(source).and_then(Vec::pop);
        if ticket.is_some() {
            self.offered.store(true, Ordering::Relaxed);
        }
        ticket
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (plain inserts/removes).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
