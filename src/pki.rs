//! The run's PKI, generated with rcgen: a server CA, the deployment's server certificates, and
//! for each mTLS tenant a client CA of its own with one client certificate, so that a
//! certificate one tenant accepts can be presented to the other.
//!
//! Everything is ECDSA P-256 and lives in memory; `misdirect certs DIR` writes it as PEM so
//! an operator can configure a real server with it. Nothing generated is ever committed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use misdirect_core::deployment::{CertificateId, Role};

/// A failure to generate or write the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("failed to generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("failed to write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// A certificate with its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub certificate: CertificateDer<'static>,
    key_pkcs8: Vec<u8>,
    certificate_pem: String,
    key_pem: String,
}

impl Identity {
    /// The certificate chain to present: the leaf alone, since peers trust the issuing CA.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.certificate.clone()]
    }

    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }
}

/// A CA certificate (its key is discarded once the leaves are signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub certificate: CertificateDer<'static>,
    certificate_pem: String,
}

/// The client CA one mTLS tenant trusts, and the certificate it issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPki {
    pub ca: Authority,
    /// The client certificate the harness presents where a scenario asks for this tenant's.
    pub client: Identity,
}

/// The PEM files of one mTLS tenant's client CA and certificate in `misdirect certs` output:
/// the CA, the certificate, its key.
pub fn client_files(tenant: Role) -> [&'static str; 3] {
    match tenant {
        Role::Partner => ["partner-ca.pem", "partner-client.pem", "partner-client.key"],
        _ => ["client-ca.pem", "client.pem", "client.key"],
    }
}

/// Everything a run needs to play both sides of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pki {
    /// Issues the server certificates; clients trust it.
    pub server_ca: Authority,
    servers: Vec<(CertificateId, Identity)>,
    /// One per mTLS tenant, in [`Role::ALL`] order.
    clients: Vec<(Role, ClientPki)>,
}

impl Pki {
    /// Generates a fresh PKI for the standard deployment.
    pub fn generate() -> Result<Self, PkiError> {
        let (server_ca, server_issuer) = authority("misdirect server CA")?;
        let servers = CertificateId::ALL
            .into_iter()
            .map(|id| {
                let sans = id.sans().iter().map(|san| (*san).to_owned()).collect();
                Ok((
                    id,
                    leaf(sans, ExtendedKeyUsagePurpose::ServerAuth, &server_issuer)?,
                ))
            })
            .collect::<Result<_, PkiError>>()?;
        let clients = Role::ALL
            .into_iter()
            .filter(|role| role.requires_client_certificate())
            .map(|tenant| {
                let (ca, issuer) = authority(&format!("misdirect {tenant} client CA"))?;
                let mut params = CertificateParams::new(Vec::<String>::new())?;
                params
                    .distinguished_name
                    .push(DnType::CommonName, format!("misdirect {tenant} client"));
                let client = sign(params, ExtendedKeyUsagePurpose::ClientAuth, &issuer)?;
                Ok((tenant, ClientPki { ca, client }))
            })
            .collect::<Result<_, PkiError>>()?;
        Ok(Self {
            server_ca,
            servers,
            clients,
        })
    }

    /// The client CA and certificate of each mTLS tenant.
    pub fn clients(&self) -> impl Iterator<Item = (Role, &ClientPki)> {
        self.clients.iter().map(|(tenant, pki)| (*tenant, pki))
    }

    /// The server CA in PEM, for clients under test to trust.
    pub fn server_ca_pem(&self) -> &str {
        &self.server_ca.certificate_pem
    }

    pub fn server(&self, id: CertificateId) -> &Identity {
        // Invariant: `generate` issues one certificate for every `CertificateId`.
        let found = self.servers.iter().find(|(candidate, _)| *candidate == id);
        &found.expect("every certificate id is issued").1
    }

    /// Writes every certificate and key as PEM into `dir`; keys get mode 0600. Returns the paths.
    pub fn write_pem(&self, dir: &Path) -> Result<Vec<PathBuf>, PkiError> {
        fs::create_dir_all(dir).map_err(|source| PkiError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let mut files: Vec<(String, &str, bool)> =
            vec![("ca.pem".into(), &self.server_ca.certificate_pem, false)];
        for (tenant, client) in self.clients() {
            let [ca, certificate, key] = client_files(tenant);
            files.push((ca.into(), &client.ca.certificate_pem, false));
            files.push((certificate.into(), &client.client.certificate_pem, false));
            files.push((key.into(), &client.client.key_pem, true));
        }
        // `<id>.chain.pem`: the certificate followed by the CA, for servers that build the chain
        // they send from the certificate file alone (lighttpd with a client CA configured).
        let chains: Vec<(String, String)> = self
            .servers
            .iter()
            .map(|(id, identity)| {
                let chain = format!(
                    "{}{}",
                    identity.certificate_pem, self.server_ca.certificate_pem
                );
                (format!("{}.chain.pem", id.key()), chain)
            })
            .collect();
        for (id, identity) in &self.servers {
            files.push((
                format!("{}.pem", id.key()),
                &identity.certificate_pem,
                false,
            ));
            files.push((format!("{}.key", id.key()), &identity.key_pem, true));
        }
        for (name, chain) in &chains {
            files.push((name.clone(), chain, false));
        }
        files
            .into_iter()
            .map(|(name, contents, secret)| {
                let path = dir.join(name);
                write_file(&path, contents, secret)
                    .map_err(|source| PkiError::Write {
                        path: path.clone(),
                        source,
                    })
                    .map(|()| path)
            })
            .collect()
    }
}

fn authority(common_name: &str) -> Result<(Authority, Issuer<'static, KeyPair>), PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    let certificate = params.self_signed(&key)?;
    let authority = Authority {
        certificate: certificate.der().clone(),
        certificate_pem: certificate.pem(),
    };
    Ok((authority, Issuer::new(params, key)))
}

fn leaf(
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'static, KeyPair>,
) -> Result<Identity, PkiError> {
    let params = CertificateParams::new(sans)?;
    sign(params, usage, issuer)
}

fn sign(
    mut params: CertificateParams,
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'static, KeyPair>,
) -> Result<Identity, PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let certificate = params.signed_by(&key, issuer)?;
    Ok(Identity {
        certificate: certificate.der().clone(),
        key_pkcs8: key.serialize_der(),
        certificate_pem: certificate.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn write_file(path: &Path, contents: &str, secret: bool) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path)?;
    // Tighten an existing file too: `mode` only applies when the file is created.
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    io::Write::write_all(&mut file, contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_keys_private() {
        let pki = Pki::generate().unwrap();
        let dir = std::env::temp_dir().join(format!("misdirect-pki-{}", std::process::id()));
        let paths = pki.write_pem(&dir).unwrap();
        assert_eq!(paths.len(), 16);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("client.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let ca = fs::read_to_string(dir.join("ca.pem")).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        let chain = fs::read_to_string(dir.join("shared.chain.pem")).unwrap();
        let leaf = fs::read_to_string(dir.join("shared.pem")).unwrap();
        assert_eq!(chain, format!("{leaf}{ca}"));
        fs::remove_dir_all(dir).unwrap();
    }
}
