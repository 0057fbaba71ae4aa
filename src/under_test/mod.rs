//! What is tested: the embedded reference target (correct, or with one [`Fault`]), the chaos
//! target (one hostile [`Chaos`] behaviour), a server
//! reached at its address (one of yours, or launched from a profile: [`profile`], [`launcher`]),
//! or a client run from a command ([`client`], or a [`client_profile`]); where requests go, which names play which role,
//! and what to trust.

pub mod client;
pub mod client_profile;
pub mod launcher;
pub mod profile;

use std::net::SocketAddr;

use misdirect_core::fault::Fault;

use crate::client::tls::Trust;
use crate::embedded::chaos::Chaos;
use crate::pki::Pki;
use misdirect_core::deployment::Deployment;

/// What the harness tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The in-process reference server, correct or with one fault; started per case.
    Embedded(Option<Fault>),
    /// An in-process hostile server; started per case.
    Chaos(Chaos),
    /// A server somebody else runs.
    Remote(Box<Remote>),
    /// An HTTP client run from a command template, for client scenarios.
    Command(client::CommandClient),
}

impl Target {
    pub fn label(&self) -> String {
        match self {
            Self::Embedded(None) => "embedded".to_owned(),
            Self::Embedded(Some(fault)) => format!("embedded:{fault}"),
            Self::Chaos(chaos) => format!("chaos:{chaos}"),
            Self::Remote(remote) => match &remote.server {
                Some(server) => format!("{server} at {}", remote.address),
                None => remote.address.to_string(),
            },
            Self::Command(command) => match &command.name {
                Some(name) => format!("client {name}"),
                None => format!("client `{}`", command.template),
            },
        }
    }
}

/// A server reached over the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The server's name, from its profile.
    pub server: Option<String>,
    pub address: SocketAddr,
    /// The UDP port of its HTTP/3 endpoint, if it has one.
    pub h3_port: Option<u16>,
    /// For a gateway: the first of the five consecutive ports on 127.0.0.1 where misdirect runs
    /// the tenants' mock upstreams, which the gateway is configured to proxy to.
    pub upstreams_port: Option<u16>,
    /// Whether those upstreams speak cleartext HTTP/1.1 instead of HTTPS.
    pub upstreams_cleartext: bool,
    /// Which of its hostnames play which role.
    pub deployment: Deployment,
    /// What to trust, and the client certificate to present to the mTLS tenant.
    pub trust: Trust,
    /// The PKI a launched server was configured with: its mock upstreams present these
    /// certificates, so that a gateway can verify them against `{certs}/ca.pem`.
    pub pki: Option<Pki>,
}
