//! The client CAs of the embedded target's mTLS tenants, and which of them issued a certificate.
//!
//! Both shells trust every tenant's CA in the handshake, and the policy decides which tenant a
//! certificate opens (step 5): a certificate the `mtls` tenant's CA issued does not open the
//! `partner` tenant. The QUIC endpoint needs that split anyway, since one configuration serves
//! every name there; the TCP side follows it so that both answer alike, with a 421 the client
//! can act on rather than a failed handshake.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};

use super::StartError;
use crate::client::tls::provider;
use crate::pki::Pki;
use misdirect_core::deployment::Role;

/// Every mTLS tenant's client CA, as one root store and one verifier per tenant.
pub(super) struct ClientCas {
    roots: Arc<RootCertStore>,
    tenants: Vec<(Role, Arc<dyn ClientCertVerifier>)>,
}

impl ClientCas {
    pub(super) fn new(pki: &Pki) -> Result<Self, StartError> {
        let mut roots = RootCertStore::empty();
        let mut tenants = Vec::new();
        for (tenant, client) in pki.clients() {
            roots.add(client.ca.certificate.clone())?;
            let mut own = RootCertStore::empty();
            own.add(client.ca.certificate.clone())?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(own), provider()).build()?;
            tenants.push((tenant, verifier));
        }
        Ok(Self {
            roots: Arc::new(roots),
            tenants,
        })
    }

    /// A verifier that accepts a certificate of any tenant's CA; `required` refuses a client
    /// without one.
    pub(super) fn verifier(
        &self,
        required: bool,
    ) -> Result<Arc<dyn ClientCertVerifier>, StartError> {
        let builder = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider());
        Ok(if required {
            builder.build()?
        } else {
            builder.allow_unauthenticated().build()?
        })
    }

    /// The tenant whose CA issued the certificate chain a client presented, if any did.
    pub(super) fn issuer(&self, chain: Option<&[CertificateDer<'static>]>) -> Option<Role> {
        let (end_entity, intermediates) = chain?.split_first()?;
        self.tenants
            .iter()
            .find(|(_, verifier)| {
                verifier
                    .verify_client_cert(end_entity, intermediates, UnixTime::now())
                    .is_ok()
            })
            .map(|(tenant, _)| *tenant)
    }
}
