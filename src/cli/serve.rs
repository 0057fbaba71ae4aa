//! `misdirect serve`: the embedded target (or a chaos behaviour) on its own, for curl, browsers
//! and other tools.

use std::path::PathBuf;
use std::time::Duration;

use crate::embedded::EmbeddedTarget;
use crate::embedded::chaos::{Chaos, ChaosTarget};
use crate::pki::Pki;
use misdirect_core::outcome::Exit;

use super::{Failure, role_table, runtime};

#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// Serve with this fault instead of correctly (`misdirect faults` lists them).
    #[arg(long)]
    pub(super) fault: Option<String>,
    /// Serve a chaos behaviour instead (`misdirect chaos` lists them), to point another tool,
    /// or an older misdirect, at a hostile server.
    #[arg(long, conflicts_with = "fault")]
    pub(super) chaos: Option<String>,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub(super) port: u16,
    /// Folder to write the CA and certificates into, for curl --cacert.
    #[arg(long, default_value = "certs", value_name = "DIR")]
    pub(super) certs: PathBuf,
    /// Stop after this many seconds (default: on Ctrl-C).
    #[arg(long = "for", value_name = "SECONDS")]
    pub(super) duration: Option<u64>,
}

pub(super) fn serve(args: &ServeArgs) -> Result<Exit, Failure> {
    let fault = args.fault.as_deref().map(str::parse).transpose().map_err(
        |error: misdirect_core::fault::UnknownFault| Failure::invalid(error.to_string()),
    )?;
    let chaos = args.chaos.as_deref().map(str::parse).transpose().map_err(
        |error: crate::embedded::chaos::UnknownChaos| Failure::invalid(error.to_string()),
    )?;
    let pki = Pki::generate().map_err(|error| Failure::harness(error.to_string()))?;
    pki.write_pem(&args.certs)
        .map_err(|error| Failure::harness(error.to_string()))?;
    if let Some(chaos) = chaos.filter(|chaos: &Chaos| chaos.reference_options().is_none()) {
        return runtime()?.block_on(async {
            let target = ChaosTarget::start(&pki, chaos)
                .await
                .map_err(|error| Failure::harness(error.to_string()))?;
            say!(
                "chaos target `{chaos}` ({}) listening on {}{}",
                chaos.description(),
                target.address(),
                target
                    .h3_port()
                    .map(|port| format!(", HTTP/3 on UDP port {port}"))
                    .unwrap_or_default()
            );
            say!(
                "  misdirect run --target {} --certs {}",
                target.address(),
                args.certs.display()
            );
            wait(args.duration).await;
            Ok(Exit::Clean)
        });
    }
    runtime()?.block_on(async {
        let options = crate::embedded::StartOptions {
            port: args.port,
            ..chaos
                .and_then(Chaos::reference_options)
                .unwrap_or_default()
        };
        let target = EmbeddedTarget::start_with(&pki, fault, options)
            .await
            .map_err(|error| Failure::harness(error.to_string()))?;
        let port = target.address().port();
        let ca = args.certs.join("ca.pem");
        say!(
            "embedded target{} listening on {} (HTTP/1.1 and HTTP/2 over TLS on TCP, HTTP/3 on the same UDP port)",
            fault.map(|fault| format!(" with fault {fault}")).unwrap_or_default(),
            target.address()
        );
        say!("roles: {}", role_table());
        say!("served on its own connection:");
        say!("  curl --cacert {} --resolve a.test:{port}:127.0.0.1 https://a.test:{port}/", ca.display());
        say!("misdirected (connection for a.test, request for c.test) gets 421:");
        say!(
            "  curl --cacert {} --resolve a.test:{port}:127.0.0.1 --http2 -H 'Host: c.test:{port}' https://a.test:{port}/",
            ca.display()
        );
        wait(args.duration).await;
        Ok(Exit::Clean)
    })
}

/// Serves for `duration` seconds, or until Ctrl-C.
async fn wait(duration: Option<u64>) {
    match duration {
        Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
        None => {
            say!("Ctrl-C stops it.");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
