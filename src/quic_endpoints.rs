//! QUIC endpoints whose receive buffers are sized to what misdirect receives, and the client's
//! endpoints shared by its connections.
//!
//! quinn sizes an endpoint's receive buffer for a batch of 32 reads of up to 64 GRO-coalesced
//! datagrams each: about 3 MB per endpoint on Linux. A run opens an endpoint for every HTTP/3
//! case's embedded target, and glibc's allocator keeps such blocks in its heap once the first
//! is freed (its mmap threshold rises to their size), so a run's memory grew with its HTTP/3
//! cases: 310 MB for 648 of them. misdirect exchanges requests of a few hundred bytes, for
//! which coalescing buys nothing: its sockets turn UDP GRO off and tell quinn so, and the
//! buffer shrinks to 32 datagrams (47 KB).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

/// A QUIC endpoint on `address`: a server with `server`, else a client.
pub fn endpoint(
    address: SocketAddr,
    server: Option<quinn::ServerConfig>,
) -> io::Result<quinn::Endpoint> {
    let socket = UdpSocket::bind(address)?;
    let runtime = quinn::default_runtime().ok_or_else(|| io::Error::other("no async runtime"))?;
    // quinn-udp turns GRO on when it wraps the socket; the same socket, through a second
    // descriptor, turns it off again before anything is read.
    let same_socket = socket.try_clone()?;
    let wrapped = runtime.wrap_udp_socket(socket)?;
    nix::sys::socket::setsockopt(
        &same_socket,
        nix::sys::socket::sockopt::UdpGroSegment,
        &false,
    )
    .map_err(io::Error::from)?;
    drop(same_socket);
    quinn::Endpoint::new_with_abstract_socket(
        quinn::EndpointConfig::default(),
        server,
        Arc::new(OneDatagramPerRead(wrapped)),
        runtime,
    )
}

/// A socket that reads one datagram per buffer, because GRO is off on it.
#[derive(Debug)]
struct OneDatagramPerRead(Arc<dyn AsyncUdpSocket>);

impl AsyncUdpSocket for OneDatagramPerRead {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Arc::clone(&self.0).create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.0.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.0.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        1
    }

    fn may_fragment(&self) -> bool {
        self.0.may_fragment()
    }
}

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
        let endpoint = endpoint(SocketAddr::new(local, 0), None)?;
        open.push((local, endpoint.clone()));
        Ok(endpoint)
    }
}
