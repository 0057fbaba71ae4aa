//! A client case: the embedded target plays the origin as the scenario's plan scripts it (the
//! client case's fixture), the client under test (the reference client, or a command) fetches,
//! and the origin's log is the observation.

use std::sync::Arc;

use super::record::Record;
use super::{CaseSetupError, Runner, Stop};
use crate::embedded::{EmbeddedTarget, StartOptions};
use crate::under_test::Target;
use crate::under_test::client::run_reference;
use misdirect_core::conclude::Inapplicable;
use misdirect_core::fault::Actor;
use misdirect_core::observe::CommandOutcome;
use misdirect_core::protocol::Protocol;
use misdirect_core::scenario::ClientPlan;

impl Runner {
    /// A client scenario: the embedded target plays the origin as the plan scripts it, the client
    /// under test (the reference client, or a command) fetches, and the origin's log is the
    /// observation.
    pub(super) async fn execute_client(
        &self,
        plan: &ClientPlan,
        protocol: Protocol,
        record: &Arc<Record>,
    ) -> Result<(), Stop> {
        let not_a_client = || Err(Stop::at_start(Inapplicable::NotAClient));
        let Some(pki) = &self.pki else {
            return not_a_client();
        };
        let options = StartOptions {
            script: plan.origin,
            origin_frame: plan.origin_frame.clone(),
            origin_frame_stream: plan.origin_frame_stream,
            client_origin: true,
            tcp_only: protocol != Protocol::Http3,
            ..StartOptions::default()
        };
        let origin = match EmbeddedTarget::start_with(pki, None, options).await {
            Ok(origin) => origin,
            Err(error) => return Err(Stop::Setup(CaseSetupError::Origin(error))),
        };
        let deadline = self.options.step_timeout;
        record.event(
            "origin",
            format!(
                "origin on {} answers as `{}`",
                origin.address(),
                plan.origin.key()
            ),
        );
        match &self.target {
            Target::Embedded(fault) => {
                let fault = fault.filter(|fault| fault.actor() == Actor::Client);
                let lines = run_reference(
                    &self.credentials,
                    origin.address(),
                    protocol,
                    &plan.fetches,
                    fault,
                    deadline,
                )
                .await;
                for line in lines {
                    record.event("client", line);
                }
            }
            Target::Command(command) => {
                if plan
                    .fetches
                    .iter()
                    .any(|fetch| fetch.method != "GET" || fetch.body.is_some())
                {
                    return Err(Stop::at_start(Inapplicable::FetchesBeyondCommand));
                }
                let dir = std::env::temp_dir().join(format!(
                    "misdirect-client-{}-{}",
                    std::process::id(),
                    origin.address().port()
                ));
                let ca = dir.join("ca.pem");
                let written = std::fs::create_dir_all(&dir)
                    .and_then(|()| std::fs::write(&ca, pki.server_ca_pem()));
                if let Err(error) = written {
                    return Err(Stop::Setup(CaseSetupError::ClientCa(error)));
                }
                let rendered =
                    command.render(&plan.fetches, origin.address().port(), &ca, protocol);
                record.event("client", format!("run: {rendered}"));
                // Within the case deadline, so that the origin's log is still read afterwards.
                let budget = (deadline * u32::try_from(plan.fetches.len() + 1).unwrap_or(u32::MAX))
                    .min(self.options.case_timeout.saturating_sub(deadline));
                let run = command.run(rendered, budget).await;
                let outcome = CommandOutcome {
                    status: run.status,
                    stderr: run.stderr,
                };
                record.event("client", outcome.to_string());
                record.command(outcome);
                let _ = std::fs::remove_dir_all(&dir);
            }
            Target::Remote(_) | Target::Chaos(_) => return not_a_client(),
        }
        let served = origin.served();
        for request in &served {
            record.event(
                "origin",
                format!(
                    "connection {} (SNI {}) {} {}{}{} → {}",
                    request.connection,
                    request.sni.as_deref().unwrap_or("(none)"),
                    request.method,
                    request.path,
                    request
                        .authority
                        .as_ref()
                        .map_or(String::new(), |authority| format!(" authority {authority}")),
                    request
                        .host
                        .iter()
                        .map(|host| format!(" host {host}"))
                        .collect::<String>(),
                    match request.status {
                        0 => "reset as malformed".to_owned(),
                        status => status.to_string(),
                    }
                ),
            );
        }
        record.served(served);
        Ok(())
    }
}
