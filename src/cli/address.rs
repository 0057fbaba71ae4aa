//! Where a server of yours is: `--target` as `IP:PORT`, or `HOST:PORT` resolved once before the
//! run (within a deadline, so a dead resolver cannot hang it), or aimed elsewhere with
//! `--connect-to HOST:PORT:ADDR:PORT` the way curl's option does (a staging address, or
//! loopback in tests) without touching DNS. A hostname is the user naming where to connect, so
//! misdirect connects there even off loopback.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::time::Duration;

use super::Failure;

/// How long name resolution may take before the run gives up on it.
const RESOLVE_WITHIN: Duration = Duration::from_secs(10);

/// The address `--target` names, and the host:port it was written as when that was a name.
pub(super) fn of_target(
    target: &str,
    connect_to: &[String],
) -> Result<(SocketAddr, Option<String>), Failure> {
    let unknown = || {
        Failure::invalid(format!(
            "unknown target `{target}`: expected embedded, embedded:<fault>, chaos:<behaviour>, \
             a profile (.yaml), IP:PORT or HOST:PORT"
        ))
    };
    let (host, port) = split_host_port(target).ok_or_else(unknown)?;
    for mapping in connect_to {
        let (from_host, from_port, to) = parse_connect_to(mapping)?;
        if (from_host.is_empty() || from_host.eq_ignore_ascii_case(host)) && from_port == port {
            return Ok((to, Some(target.to_owned())));
        }
    }
    if let Ok(address) = target.parse::<SocketAddr>() {
        return Ok((address, None));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(unknown());
    }
    resolve(target).map(|address| (address, Some(target.to_owned())))
}

/// `host:port` or `[v6]:port` into the host (without brackets) and the port.
fn split_host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port.parse().ok()?)).filter(|(host, _)| !host.is_empty())
}

/// `HOST:PORT:ADDR:PORT` (HOST may be empty: any host on that port; ADDR an IP address, IPv6
/// in brackets).
fn parse_connect_to(mapping: &str) -> Result<(&str, u16, SocketAddr), Failure> {
    let invalid = || {
        Failure::invalid(format!(
            "--connect-to takes HOST:PORT:ADDR:PORT (ADDR an IP address), not `{mapping}`"
        ))
    };
    let (host, rest) = mapping.split_once(':').ok_or_else(invalid)?;
    let (port, to) = rest.split_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    let to: SocketAddr = to.parse().map_err(|_| invalid())?;
    Ok((host, port, to))
}

/// The first address the system resolver gives for `host:port`, within [`RESOLVE_WITHIN`].
fn resolve(target: &str) -> Result<SocketAddr, Failure> {
    let (sender, receiver) = mpsc::channel();
    let asked = target.to_owned();
    // The resolver blocks and cannot be cancelled; a thread that outlives the deadline is left
    // to finish on its own while the run ends with the error.
    std::thread::spawn(move || {
        let _ = sender.send(asked.to_socket_addrs().map(|mut found| found.next()));
    });
    match receiver.recv_timeout(RESOLVE_WITHIN) {
        Ok(Ok(Some(address))) => Ok(address),
        Ok(Ok(None)) => Err(Failure::harness(format!(
            "{target}: the name has no address"
        ))),
        Ok(Err(error)) => Err(Failure::harness(format!(
            "cannot resolve {target}: {error}"
        ))),
        Err(_) => Err(Failure::harness(format!(
            "cannot resolve {target}: no answer within {} s (--connect-to HOST:PORT:ADDR:PORT \
             skips name resolution)",
            RESOLVE_WITHIN.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(target: &str, connect_to: &[&str]) -> Result<(SocketAddr, Option<String>), String> {
        let connect_to: Vec<String> = connect_to.iter().map(|&text| text.to_owned()).collect();
        of_target(target, &connect_to).map_err(|failure| failure.message)
    }

    #[test]
    fn addresses_names_and_overrides() {
        let loopback: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        assert_eq!(address("127.0.0.1:8443", &[]), Ok((loopback, None)));
        assert_eq!(
            address(
                "edge.example.com:443",
                &["edge.example.com:443:127.0.0.1:8443"]
            ),
            Ok((loopback, Some("edge.example.com:443".to_owned())))
        );
        // An empty host matches any name on that port; another port does not match.
        assert_eq!(
            address("Edge.Example.com:443", &[":443:127.0.0.1:8443"]).map(|(at, _)| at),
            Ok(loopback)
        );
        assert_eq!(
            address("[::1]:443", &[]).map(|(at, _)| at),
            Ok("[::1]:443".parse().unwrap())
        );
        assert!(address("localhost:443", &[]).is_ok_and(|(at, _)| at.ip().is_loopback()));
        assert!(
            address("edge.example.com:443", &["edge:443:nowhere:1"])
                .is_err_and(|error| error.contains("--connect-to takes"))
        );
        assert!(address("a b:443", &[]).is_err_and(|error| error.contains("unknown target")));
        assert!(address("edge.example.com", &[]).is_err_and(|error| error.contains("HOST:PORT")));
    }
}
