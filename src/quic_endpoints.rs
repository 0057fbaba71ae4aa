//! The client's QUIC endpoints, shared by its connections.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};

/// The client's QUIC endpoints, one per local address, opened on first use and shared by every
/// HTTP/3 connection made with the same credentials (a run, a soak, a gateway's upstream
/// side). An endpoint is a UDP socket, a driver task, a receive buffer and quinn's probe of
/// the socket's offloads; one per connection made a run's memory grow with its HTTP/3
/// connections. Tickets and client certificates stay per connection: they live in the
/// configuration each connection is started with.
#[derive(Debug, Default)]
pub struct ClientEndpoints {
    open: Mutex<Vec<(IpAddr, quinn::Endpoint)>>,
}

impl ClientEndpoints {
    /// The endpoint bound to `local`, opened now if there is none yet.
    pub fn bound_to(&self, local: IpAddr) -> io::Result<quinn::Endpoint> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, endpoint)) = open.iter().find(|(address, _)| *address == local) {
            return Ok(endpoint.clone());
        }
        let endpoint = quinn::Endpoint::client(SocketAddr::new(local, 0))?;
        open.push((local, endpoint.clone()));
        Ok(endpoint)
    }
}
