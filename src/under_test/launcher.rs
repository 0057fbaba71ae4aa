//! Starts the server a profile describes, on loopback, and stops exactly what it started.
//!
//! The server runs in the foreground in a process group of its own, so that its workers can be
//! stopped with it by the group's ID (the PID misdirect started) and a Ctrl-C in the terminal
//! does not reach it behind misdirect's back. Its configuration is rendered from the profile's
//! template into a working folder under `reports/servers/`, with misdirect's PKI, the ports
//! misdirect picked and the mock upstreams' ports; the server's output goes to `server.log`
//! there, which is the evidence when it does not start.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::Remote;
use super::profile::{Launch, Profile, Upstreams};
use crate::client::tls::Trust;
use crate::pki::Pki;
use misdirect_core::deployment::Role;

/// Why a profiled server could not be tested.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("`{0}` is not installed (scripts/install-servers installs the profiled servers)")]
    Missing(String),
    #[error("{0}")]
    Setup(String),
    #[error("the server did not start: {reason}\n--- {log} (last lines)\n{tail}")]
    NotReady {
        reason: NotReady,
        log: String,
        tail: String,
    },
}

/// Why a started server never became ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("it exited with {0}")]
    Exited(std::process::ExitStatus),
    #[error("nothing accepted on {address} within {within:?}")]
    Silent {
        address: SocketAddr,
        within: Duration,
    },
}

/// A server misdirect started; dropping it stops the process group.
#[derive(Debug)]
pub struct RunningServer {
    child: Child,
    /// What the profile's version command said, if it has one and it answered.
    pub version: Option<String>,
}

/// How long a stopped server may take to exit before its group is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The remote to test for `profile`, and the server misdirect started for it, if it is launched.
pub fn prepare(
    profile: &Profile,
    working_root: &Path,
) -> Result<(Remote, Option<RunningServer>), LaunchError> {
    let upstreams_cleartext = profile.upstreams == Some(Upstreams::Cleartext);
    let Some(launch) = &profile.launch else {
        let (Some(address), Some(trust)) = (profile.address, profile.trust.clone()) else {
            return Err(LaunchError::Setup(
                "a running server's profile names its address and what to trust".into(),
            ));
        };
        if profile.upstreams.is_some() {
            return Err(LaunchError::Setup(
                "mock upstreams come with a launched server; for a running gateway use --upstreams-port".into(),
            ));
        }
        let remote = Remote {
            server: Some(profile.server.clone()),
            address,
            h3_port: profile.h3_port,
            upstreams_port: None,
            upstreams_cleartext,
            deployment: profile.deployment.clone(),
            trust,
            pki: None,
        };
        return Ok((remote, None));
    };
    if let Some(tool) = missing_tool(&launch.needs) {
        return Err(LaunchError::Missing(tool.to_owned()));
    }
    let path = server_path();
    let workdir = working_root.join(&profile.server);
    let setup = |what: &str, error: io::Error| LaunchError::Setup(format!("{what}: {error}"));
    let _ = fs::remove_dir_all(&workdir);
    fs::create_dir_all(&workdir)
        .map_err(|error| setup("cannot create the working folder", error))?;
    let workdir = workdir
        .canonicalize()
        .map_err(|error| setup("cannot resolve the working folder", error))?;
    let certs = workdir.join("certs");
    let pki = Pki::generate()
        .map_err(|error| LaunchError::Setup(format!("cannot generate the PKI: {error}")))?;
    pki.write_pem(&certs)
        .map_err(|error| LaunchError::Setup(format!("cannot write the PKI: {error}")))?;
    write_bundles(&certs).map_err(|error| setup("cannot write the certificate bundles", error))?;
    let port = free_port_run(1, launch.h3).map_err(|error| setup("no free port", error))?;
    let upstreams_port = match profile.upstreams {
        Some(_) => Some(free_port_run(5, false).map_err(|error| setup("no free ports", error))?),
        None => None,
    };
    for file in &launch.files {
        render(file, launch, &workdir, &certs, port, upstreams_port)?;
    }
    let config = render(
        &launch.config,
        launch,
        &workdir,
        &certs,
        port,
        upstreams_port,
    )?;
    let command = launch
        .command
        .replace("{config}", &config.display().to_string())
        .replace("{certs}", &certs.display().to_string())
        .replace("{workdir}", &workdir.display().to_string());
    let log_path = workdir.join("server.log");
    let log =
        fs::File::create(&log_path).map_err(|error| setup("cannot create server.log", error))?;
    let log_err = log
        .try_clone()
        .map_err(|error| setup("cannot share server.log", error))?;
    let child = Command::new("sh")
        .args(["-c", &command])
        .current_dir(&workdir)
        .env("PATH", &path)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .map_err(|error| setup("cannot run sh", error))?;
    let mut server = RunningServer {
        child,
        version: launch
            .version
            .as_deref()
            .and_then(|command| version(command, &path)),
    };
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    if let Err(reason) = server.wait_ready(address, launch.ready_within) {
        drop(server);
        return Err(LaunchError::NotReady {
            reason,
            log: log_path.display().to_string(),
            tail: tail(&log_path, 20),
        });
    }
    let remote = Remote {
        server: Some(profile.server.clone()),
        address,
        h3_port: launch.h3.then_some(port),
        upstreams_port,
        upstreams_cleartext,
        deployment: profile.deployment.clone(),
        trust: Trust::certs_folder(&certs),
        pki: Some(pki),
    };
    Ok((remote, Some(server)))
}

impl RunningServer {
    /// Waits until the server accepts TCP connections, or fails if it exits or the time is up.
    /// Where /proc tells, the listener must be a process of the server's own group, so that a
    /// port someone else took meanwhile is not mistaken for the server being up. A server gives
    /// no sign of readiness but its listener, so it is tried, first every millisecond (most are
    /// up within a few), then less often, up to every 50 ms.
    fn wait_ready(&mut self, address: SocketAddr, within: Duration) -> Result<(), NotReady> {
        let deadline = Instant::now() + within;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(NotReady::Exited(status));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
                && group_listens(self.pid(), address.port()) != Some(false)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(NotReady::Silent { address, within });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// The process group's ID: the PID of the shell misdirect started.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the group to stop (SIGTERM), kills it after [`STOP_GRACE`], and returns once no
    /// process of it is left (workers that outlive the leader go with the group's SIGKILL).
    /// The leader's exit is waited for, not polled: a thread blocks in `wait` and says when.
    fn stop(&mut self) {
        let group = self.pid();
        let (exited, exit) = std::sync::mpsc::channel();
        let leader = self.child.id();
        let waiter = std::thread::spawn(move || {
            let _ = nix::sys::wait::waitpid(pid(leader), None);
            let _ = exited.send(());
        });
        signal_group(group, Signal::SIGTERM);
        if exit.recv_timeout(STOP_GRACE).is_err() {
            signal_group(group, Signal::SIGKILL);
        }
        let _ = waiter.join();
        // The leader is gone; anything left in its group goes with it.
        signal_group(group, Signal::SIGKILL);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline && group_alive(group) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The first tool of `needs` that is not on the PATH servers and clients are looked up in.
pub(crate) fn missing_tool(needs: &[String]) -> Option<&str> {
    let path = server_path();
    needs
        .iter()
        .find(|tool| !on_path(tool, &path))
        .map(String::as_str)
}

/// The first line a version command prints, run as the launcher runs tools.
pub(crate) fn tool_version(command: &str) -> Option<String> {
    version(command, &server_path())
}

/// The first line a version command prints (stdout, else stderr), within a deadline.
fn version(command: &str, path: &std::ffi::OsStr) -> Option<String> {
    let mut child = Command::new("sh")
        .args(["-c", command])
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while matches!(child.try_wait(), Ok(None)) {
        if Instant::now() >= deadline {
            signal_group(child.id(), Signal::SIGKILL);
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().ok()?;
    [output.stdout, output.stderr].iter().find_map(|bytes| {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(|line| line.chars().take(120).collect())
    })
}

/// Sends a signal to a process group misdirect created, identified by the PID it started.
pub(crate) fn signal_group(group: u32, signal: Signal) {
    let _ = nix::sys::signal::killpg(pid(group), signal);
}

/// A process ID as nix takes it (PIDs fit an i32 on Linux).
fn pid(id: u32) -> nix::unistd::Pid {
    nix::unistd::Pid::from_raw(i32::try_from(id).unwrap_or(i32::MAX))
}

/// Whether a process of the group holds a TCP socket listening on 127.0.0.1:`port`; `None`
/// where /proc does not tell.
fn group_listens(group: u32, port: u16) -> Option<bool> {
    let table = fs::read_to_string("/proc/net/tcp").ok()?;
    // 127.0.0.1, or every IPv4 address (which a connection to 127.0.0.1 also reaches).
    let locals = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
    ];
    // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields
                .get(1)
                .is_some_and(|address| locals.iter().any(|l| l == address));
            (local && fields.get(3) == Some(&"0A"))
                .then(|| fields.get(9).map(|inode| format!("socket:[{inode}]")))
                .flatten()
        })
        .collect();
    if inodes.is_empty() {
        return Some(false);
    }
    let members = group_members(group)?;
    Some(members.iter().any(|pid| {
        fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.filter_map(Result::ok).any(|fd| {
                fs::read_link(fd.path())
                    .is_ok_and(|target| inodes.iter().any(|inode| target == Path::new(inode)))
            })
        })
    }))
}

/// The running processes of a group, from /proc (a zombie that waits for init to reap it has
/// ended and is left out); `None` where /proc cannot be read.
fn group_members(group: u32) -> Option<Vec<u32>> {
    let entries = fs::read_dir("/proc").ok()?;
    Some(
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
                let (state, pgrp) = state_and_group(&stat)?;
                (pgrp == group && !matches!(state, "Z" | "X")).then_some(pid)
            })
            .collect(),
    )
}

/// The state and process group in a `/proc/<pid>/stat` line: `pid (comm) state ppid pgrp ...`,
/// where comm may hold spaces and parentheses.
fn state_and_group(stat: &str) -> Option<(&str, u32)> {
    let (_, fields) = stat.rsplit_once(')')?;
    let mut fields = fields.split_whitespace();
    let state = fields.next()?;
    Some((state, fields.nth(1)?.parse().ok()?))
}

/// Whether a process of the group is still running (false where /proc cannot be read).
fn group_alive(group: u32) -> bool {
    group_members(group).is_some_and(|members| !members.is_empty())
}

/// Renders `template` into the working folder, without its `.template` suffix; returns the
/// rendered file's path.
fn render(
    template_path: &Path,
    launch: &Launch,
    workdir: &Path,
    certs: &Path,
    port: u16,
    upstreams_port: Option<u16>,
) -> Result<PathBuf, LaunchError> {
    let template = fs::read_to_string(template_path).map_err(|error| {
        LaunchError::Setup(format!("cannot read {}: {error}", template_path.display()))
    })?;
    let mut text = template
        .replace("{port}", &port.to_string())
        .replace("{certs}", &certs.display().to_string())
        .replace("{workdir}", &workdir.display().to_string());
    // Loading the profile checked that every {upstream:…} and {var:…} has a value here.
    let tenants = Role::ALL.into_iter().filter_map(Role::tenant);
    if let Some(first) = upstreams_port {
        for (offset, tenant) in (0u16..).zip(tenants) {
            let placeholder = format!("{{upstream:{tenant}}}");
            text = text.replace(&placeholder, &(first + offset).to_string());
        }
    }
    for (name, value) in &launch.vars {
        text = text.replace(&format!("{{var:{name}}}"), value);
    }
    let name = template_path
        .file_name()
        .and_then(|name| name.to_str())
        .map_or("server.conf", |name| {
            name.strip_suffix(".template").unwrap_or(name)
        });
    let rendered = workdir.join(name);
    fs::write(&rendered, text).map_err(|error| {
        LaunchError::Setup(format!("cannot write {}: {error}", rendered.display()))
    })?;
    Ok(rendered)
}

/// The PATH a server is started with: the user's, then the sbin folders where Debian puts
/// daemons (nginx, apache2, haproxy), which a non-root user's PATH often lacks.
fn server_path() -> std::ffi::OsString {
    let mut folders: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect())
        .unwrap_or_default();
    for sbin in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        if !folders.iter().any(|folder| folder == Path::new(sbin)) {
            folders.push(PathBuf::from(sbin));
        }
    }
    std::env::join_paths(folders).unwrap_or_default()
}

/// `<name>.bundle.pem`, the certificate followed by its key, beside every `<name>.pem` that has
/// a `<name>.key`: the one-file form HAProxy and lighttpd read. Mode 0600, as for the keys.
fn write_bundles(certs: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    for entry in fs::read_dir(certs)? {
        let key = entry?.path();
        if key.extension().is_none_or(|extension| extension != "key") {
            continue;
        }
        let certificate = key.with_extension("pem");
        if !certificate.is_file() {
            continue;
        }
        let mut bundle = fs::read(&certificate)?;
        bundle.extend(fs::read(&key)?);
        let path = key.with_extension("bundle.pem");
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        io::Write::write_all(&mut file, &bundle)?;
    }
    Ok(())
}

fn on_path(tool: &str, path: &std::ffi::OsStr) -> bool {
    std::env::split_paths(path).any(|dir| dir.join(tool).is_file())
}

/// The first of `count` consecutive ports on 127.0.0.1 free for TCP (and, with `udp_too`, for
/// UDP as well), below the usual ephemeral range (32768 and up): the ports every `bind(0)` of
/// this and other processes draws from cannot be handed out between the check and the
/// server's own bind.
fn free_port_run(count: u16, udp_too: bool) -> io::Result<u16> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos())
        ^ std::process::id();
    for attempt in 0..64u32 {
        let offset = seed.wrapping_add(attempt.wrapping_mul(7919)) % 12_000;
        let first = 20_000 + u16::try_from(offset).unwrap_or(0);
        let held: Vec<_> = (first..first + count)
            .map_while(|port| {
                let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).ok()?;
                let udp = if udp_too {
                    Some(UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).ok()?)
                } else {
                    None
                };
                Some((tcp, udp))
            })
            .collect();
        if held.len() == usize::from(count) {
            return Ok(first);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no run of free ports",
    ))
}

/// The last `lines` lines of a log, for an error message.
fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's group, from /proc.
    fn own_group() -> Option<u32> {
        let stat = fs::read_to_string("/proc/self/stat").ok()?;
        state_and_group(&stat).map(|(_, group)| group)
    }

    #[test]
    fn stat_lines_are_read_past_a_command_name_with_parentheses() {
        assert_eq!(
            state_and_group("4242 (odd) name) Z 1 77 77 0 -1"),
            Some(("Z", 77))
        );
        assert_eq!(state_and_group("4242 (cut"), None);
    }

    #[test]
    fn a_listener_counts_only_for_the_group_that_holds_it() {
        let Some(group) = own_group() else {
            return; // no /proc: readiness falls back to the connection alone
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("listener");
        let port = listener.local_addr().expect("address").port();
        assert_eq!(group_listens(group, port), Some(true));
        assert!(group_alive(group));
        // Another group does not hold it, and a port nobody listens on is nobody's.
        assert_eq!(group_listens(group.wrapping_add(1), port), Some(false));
        drop(listener);
        assert_eq!(group_listens(group, port), Some(false));
    }
}
