//! The target a command aims at (`--target` and the options that say how to reach and trust a
//! server of yours), shared by `run` and `soak`: the embedded target with or without a fault, a
//! chaos behaviour, an address, or a profile whose server misdirect may start itself.

use std::path::{Path, PathBuf};

use crate::client::tls::{ClientIdentity, Roots, Trust};
use crate::under_test::{Remote, Target};
use misdirect_core::deployment::{Deployment, Role};

use super::Failure;

#[derive(Debug, clap::Args)]
pub(super) struct TargetArgs {
    /// `embedded`, `embedded:<fault>`, `chaos:<behaviour>`, your server as IP:PORT or HOST:PORT
    /// (resolved once), or a target profile (`targets/<server>.yaml`), which misdirect may
    /// start and stop itself.
    #[arg(long = "target", default_value = "embedded")]
    pub(super) spec: String,
    /// Connect to ADDR:PORT when the target is HOST:PORT, without resolving HOST (as curl's
    /// option; HOST empty for any host), e.g. edge.example.com:443:192.0.2.7:443 (repeatable).
    #[arg(long = "connect-to", value_name = "HOST:PORT:ADDR:PORT")]
    pub(super) connect_to: Vec<String>,
    /// For a server of yours: folder with ca.pem, client.pem and client.key, and partner-client.pem and partner-client.key for the partner tenant (see `misdirect certs`).
    #[arg(long, value_name = "DIR")]
    pub(super) certs: Option<PathBuf>,
    /// For a server of yours, instead of --certs: `system` (the system's trust store) or a PEM
    /// file with the CA that issued its certificates.
    #[arg(long, value_name = "system|FILE", conflicts_with = "certs")]
    pub(super) trust: Option<String>,
    /// With --trust: the client certificate (PEM) the mTLS tenant accepts; without it, cases
    /// that need the mTLS tenant SKIP.
    #[arg(long, value_name = "PEM", requires_all = ["trust", "client_key"])]
    pub(super) client_cert: Option<PathBuf>,
    /// The key of --client-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    pub(super) client_key: Option<PathBuf>,
    /// For a server of yours: the UDP port of its HTTP/3 endpoint (without it, HTTP/3 cases SKIP).
    #[arg(long, value_name = "PORT")]
    pub(super) h3_port: Option<u16>,
    /// For a gateway of yours: run the tenants' mock upstreams on 127.0.0.1 from this port on
    /// (alpha, bravo, charlie, delta, echo, foxtrot, golf); without it, gateway cases SKIP.
    #[arg(long, value_name = "PORT")]
    pub(super) upstreams_port: Option<u16>,
    /// The mock upstreams speak cleartext HTTP/1.1 instead of HTTPS.
    #[arg(long, requires = "upstreams_port")]
    pub(super) upstreams_cleartext: bool,
    /// For a server of yours: map a role onto one of its hostnames, e.g. primary=a.example.com (repeatable).
    #[arg(long = "name", value_name = "ROLE=HOST")]
    pub(super) names: Vec<String>,
    /// Where launched servers get their working folders (config, PKI, server.log).
    #[arg(long, default_value = "reports/servers", value_name = "DIR")]
    pub(super) work_dir: PathBuf,
}

/// The server `--target` names: a profile's (loaded, and started if it says how; stopped when
/// the handle is dropped), or the embedded, chaos or remote target it spells.
pub(super) fn reach_server(
    args: &TargetArgs,
) -> Result<(Target, Option<crate::under_test::launcher::RunningServer>), Failure> {
    match profile_path(args) {
        Some(path) => {
            let profile = crate::under_test::profile::load(path)
                .map_err(|error| Failure::invalid(error.to_string()))?;
            launch_profile(args, &profile)
        }
        None => Ok((parse_target(args)?, None)),
    }
}

/// `--target` names a profile when it is a YAML file.
pub(super) fn profile_path(args: &TargetArgs) -> Option<&Path> {
    let path = Path::new(&args.spec);
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    yaml.then_some(path)
}

/// Loads a profile and, if it says how, starts its server (stopped when the handle is dropped).
pub(super) fn launch_profile(
    args: &TargetArgs,
    profile: &crate::under_test::profile::Profile,
) -> Result<(Target, Option<crate::under_test::launcher::RunningServer>), Failure> {
    if args.certs.is_some()
        || args.trust.is_some()
        || !args.names.is_empty()
        || args.h3_port.is_some()
    {
        return Err(Failure::invalid(
            "--certs, --trust, --name and --h3-port are the profile's to say",
        ));
    }
    let (mut remote, server) = crate::under_test::launcher::prepare(profile, &args.work_dir)
        .map_err(|error| Failure::harness(error.to_string()))?;
    if let Some(port) = args.upstreams_port {
        remote.upstreams_port = Some(port);
        remote.upstreams_cleartext = args.upstreams_cleartext;
    }
    if let Some(server) = &server {
        say!(
            "started {}{} (process group {}) on {}",
            profile.server,
            server
                .version
                .as_deref()
                .map(|version| format!(" ({version})"))
                .unwrap_or_default(),
            server.pid(),
            remote.address
        );
    }
    Ok((Target::Remote(Box::new(remote)), server))
}

pub(super) fn parse_target(args: &TargetArgs) -> Result<Target, Failure> {
    let embedded = args.spec.starts_with("embedded") || args.spec.starts_with("chaos:");
    if embedded
        && (args.certs.is_some()
            || args.trust.is_some()
            || !args.names.is_empty()
            || args.h3_port.is_some()
            || args.upstreams_port.is_some()
            || !args.connect_to.is_empty())
    {
        return Err(Failure::invalid(
            "--certs, --trust, --name, --h3-port and --connect-to apply to a server of yours, not to the embedded or chaos target",
        ));
    }
    if let Some(name) = args.spec.strip_prefix("chaos:") {
        return name.parse().map(Target::Chaos).map_err(
            |error: crate::embedded::chaos::UnknownChaos| Failure::invalid(error.to_string()),
        );
    }
    if let Some(rest) = args.spec.strip_prefix("embedded") {
        return match rest.strip_prefix(':') {
            None if rest.is_empty() => Ok(Target::Embedded(None)),
            Some(fault) => fault
                .parse()
                .map(|fault| Target::Embedded(Some(fault)))
                .map_err(|error: misdirect_core::fault::UnknownFault| {
                    Failure::invalid(error.to_string())
                }),
            None => Err(Failure::invalid(format!("unknown target `{}`", args.spec))),
        };
    }
    let (address, written_as) = super::address::of_target(&args.spec, &args.connect_to)?;
    // Every file named on the command line is checked now, not when the first case needs it.
    let present = |flag: &str, path: &Path| {
        if path.is_file() {
            Ok(())
        } else {
            Err(Failure::invalid(format!(
                "{flag} {}: no such file",
                path.display()
            )))
        }
    };
    if let Some(folder) = &args.certs {
        for file in ["ca.pem", "client.pem", "client.key"] {
            present("--certs", &folder.join(file)).map_err(|mut failure| {
                failure
                    .message
                    .push_str(" (`misdirect certs DIR` writes the folder)");
                failure
            })?;
        }
    }
    if let Some(roots) = args.trust.as_deref().filter(|roots| *roots != "system") {
        present("--trust", Path::new(roots))?;
    }
    for (flag, path) in [
        ("--client-cert", &args.client_cert),
        ("--client-key", &args.client_key),
    ] {
        if let Some(path) = path {
            present(flag, path)?;
        }
    }
    let trust = match (&args.certs, &args.trust) {
        (Some(folder), _) => Trust::certs_folder(folder),
        (None, Some(roots)) => Trust {
            roots: Roots::named(roots, Path::new("")),
            client_identities: args
                .client_cert
                .clone()
                .zip(args.client_key.clone())
                .map(|(certificate, key)| (Role::Mtls, ClientIdentity { certificate, key }))
                .into_iter()
                .collect(),
        },
        (None, None) => {
            return Err(Failure::invalid(
                "a server of yours needs --certs DIR (the CA to trust and the client certificate) \
                 or --trust system|FILE",
            ));
        }
    };
    let mut deployment = Deployment::standard();
    for mapping in &args.names {
        let (role, host) = mapping
            .split_once('=')
            .ok_or_else(|| Failure::invalid(format!("--name takes ROLE=HOST, not `{mapping}`")))?;
        let role: Role =
            role.parse()
                .map_err(|error: misdirect_core::deployment::UnknownRole| {
                    Failure::invalid(error.to_string())
                })?;
        deployment.set_name(role, host.to_owned());
    }
    // As a profile's `names:`: once some roles are named, the others are played by nobody.
    if !args.names.is_empty() {
        let named: Vec<Role> = args
            .names
            .iter()
            .filter_map(|mapping| mapping.split_once('=')?.0.parse().ok())
            .collect();
        for role in Role::ALL.into_iter().filter(|role| !named.contains(role)) {
            deployment.unmap(role, format!("no --name maps a name to the `{role}` role"));
        }
    }
    Ok(Target::Remote(Box::new(Remote {
        server: written_as,
        address,
        h3_port: args.h3_port,
        upstreams_port: args.upstreams_port,
        upstreams_cleartext: args.upstreams_cleartext,
        deployment,
        trust,
        pki: None,
    })))
}
