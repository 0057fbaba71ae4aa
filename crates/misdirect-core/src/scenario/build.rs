//! A scenario's serde mirror → its validated model (parse, don't validate): one method per
//! construct of the format (requirements, detections, connects, sends and bursts, requests,
//! authorities, expectations), each turning a mistake into a [`LoadError`] at the value that
//! caused it. The checks' values are built by their families in `check`.

use std::path::Path;
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::raw::{
    CLIENT_FIELDS, REQUEST_FIELDS, RawAuthority, RawBurst, RawClient, RawClientCertificate,
    RawConnect, RawExpectation, RawPremise, RawRequest, RawScenario, RawStep,
};
use super::span::{LoadError, span_at, span_of};
use super::{
    ADDRESS, Authority, AuthorityHost, ClientExpectation, ClientPlan, Connect, Detection,
    EMPTY_AUTHORITY, Expectation, Fetch, NO_AUTHORITY, PortForm, Premise, Request, Requirement,
    Route, Scenario, Scheme, Send, Source, Span, Step, TargetForm, TlsVersion,
};
use crate::catalogue;
use crate::check::{RawCheck, RawChecks};
use crate::deployment::Role;
use crate::fault::Fault;
use crate::origin_script::OriginScript;
use crate::protocol::Protocol;
use crate::verdict::{Level, Verdict};

/// Builds one scenario's model from its mirror, recording the roles it names.
pub(super) struct Builder<'a> {
    source: &'a Arc<Source>,
    path: &'a Path,
    /// Every role the scenario names, collected as they are parsed.
    roles: std::cell::RefCell<std::collections::BTreeSet<Role>>,
}

type Built<T> = Result<T, LoadError>;

impl<'a> Builder<'a> {
    pub(super) fn new(source: &'a Arc<Source>, path: &'a Path) -> Self {
        Self {
            source,
            path,
            roles: std::cell::RefCell::default(),
        }
    }

    fn span<T>(&self, spanned: &Spanned<T>) -> Span {
        span_of(self.source, spanned)
    }

    fn error(&self, span: Span, message: impl Into<String>) -> LoadError {
        LoadError {
            path: self.path.to_owned(),
            span: Some(span),
            message: message.into(),
        }
    }

    fn error_at<T>(&self, spanned: &Spanned<T>, message: impl Into<String>) -> LoadError {
        self.error(self.span(spanned), message)
    }

    pub(super) fn scenario(&self, id: &str, raw: RawScenario) -> Built<Scenario> {
        let span = self.span(&raw.title);
        if raw.title.value.trim().is_empty() {
            return Err(self.error_at(&raw.title, "the title is empty"));
        }
        let requirements = self.requirements(&raw)?;
        let protocols = self.protocols(&raw.protocols.value, &raw.protocols)?;
        let detects = self.detections(&raw, &requirements, &protocols)?;
        let mut context = StepContext {
            requirements: &requirements,
            protocols: &protocols,
            connections: Vec::new(),
            expectations: 0,
        };
        let (steps, client) = match (raw.steps, raw.client) {
            (Some(steps), None) => {
                let steps_span = self.span(&steps);
                let steps = steps
                    .value
                    .into_iter()
                    .map(|step| self.step(step, &mut context))
                    .collect::<Built<Vec<_>>>()?;
                if context.expectations == 0 {
                    return Err(self.error(
                        steps_span,
                        "the scenario expects nothing: add `expect:` to at least one request",
                    ));
                }
                (steps, None)
            }
            (None, Some(client)) => {
                if raw.gateway {
                    return Err(
                        self.error_at(&client, "a client scenario cannot be a gateway scenario")
                    );
                }
                (
                    Vec::new(),
                    Some(self.client(client, &requirements, &protocols)?),
                )
            }
            (Some(steps), Some(_)) => {
                return Err(self.error_at(
                    &steps,
                    "a scenario either drives a target (`steps:`) or tests a client (`client:`), not both",
                ));
            }
            (None, None) => {
                return Err(self.error(
                    span.clone(),
                    "a scenario needs `steps:` (a target) or `client:` (a client)",
                ));
            }
        };
        Ok(Scenario {
            id: id.to_owned(),
            title: raw.title.value,
            description: raw.description,
            gateway: raw.gateway,
            requirements,
            protocols,
            detects,
            steps,
            client,
            roles: self.roles.take().into_iter().collect(),
            span,
        })
    }

    fn client(
        &self,
        raw: Spanned<RawClient>,
        requirements: &[Requirement],
        scenario_protocols: &[Protocol],
    ) -> Built<ClientPlan> {
        let origin = match &raw.value.origin {
            None => OriginScript::Policy,
            Some(origin) => OriginScript::ALL
                .into_iter()
                .find(|script| script.key() == origin.value)
                .ok_or_else(|| {
                    self.error_at(
                        origin,
                        format!(
                            "unknown origin behaviour `{}` (expected policy, sni-mismatch, first-request or always)",
                            origin.value
                        ),
                    )
                })?,
        };
        let origin_frame = match &raw.value.origin_frame {
            None => None,
            Some(roles) => Some(
                roles
                    .value
                    .iter()
                    .map(|role| self.role(role, roles))
                    .collect::<Built<Vec<_>>>()?,
            ),
        };
        if raw.value.fetch.is_empty() {
            return Err(self.error_at(&raw, "a client scenario fetches at least one URL"));
        }
        let fetches = raw
            .value
            .fetch
            .iter()
            .map(|fetch| {
                let method = self.method(fetch.method.as_ref())?;
                Ok(Fetch {
                    role: self.role(&fetch.url.value, &fetch.url)?,
                    method,
                    body: fetch.body.clone(),
                })
            })
            .collect::<Built<Vec<_>>>()?;
        if raw.value.expect.is_empty() {
            return Err(self.error_at(
                &raw,
                "the scenario expects nothing: add `expect:` to `client:`",
            ));
        }
        let origin_frame_stream = raw.value.origin_frame_stream;
        let expect = raw
            .value
            .expect
            .into_iter()
            .map(|expectation| {
                self.known_keys(&expectation, CLIENT_FIELDS)?;
                let span = self.span(&expectation.requirement);
                let requirement = self.cited(&expectation.requirement, requirements)?;
                let protocols = self.expectation_protocols(&expectation, scenario_protocols)?;
                let check = self.one_check(expectation, &span)?;
                Ok(ClientExpectation {
                    requirement,
                    check,
                    protocols,
                    span,
                })
            })
            .collect::<Built<Vec<_>>>()?;
        Ok(ClientPlan {
            origin,
            origin_frame,
            origin_frame_stream,
            fetches,
            expect,
        })
    }

    fn requirements(&self, raw: &RawScenario) -> Built<Vec<Requirement>> {
        if raw.requirements.value.is_empty() {
            return Err(self.error_at(
                &raw.requirements,
                "a scenario cites at least one requirement",
            ));
        }
        let mut requirements: Vec<Requirement> = Vec::new();
        for requirement in &raw.requirements.value {
            let id = requirement.id.value.trim();
            let Some(entry) = catalogue::find(id) else {
                let hint = catalogue::closest(id).map_or_else(
                    || " (`misdirect list --requirements` lists them)".to_owned(),
                    |closest| format!("; did you mean `{}`?", closest.id),
                );
                return Err(self.error_at(
                    &requirement.id,
                    format!("`{id}` is not in the requirements catalogue{hint}"),
                ));
            };
            if let Some(why) = &entry.untestable {
                return Err(self.error_at(
                    &requirement.id,
                    format!("the catalogue marks `{id}` untestable ({why}); cite the rule a scenario judges, or take the mark off with a reason"),
                ));
            }
            if requirements.iter().any(|known| known.id == id) {
                return Err(self.error_at(
                    &requirement.id,
                    format!("requirement `{id}` is listed twice"),
                ));
            }
            let level = Level::ALL
                .into_iter()
                .find(|level| level.keyword() == requirement.level.value)
                .ok_or_else(|| {
                    self.error_at(
                        &requirement.level,
                        format!(
                            "unknown level `{}` (expected MUST, MUST NOT, SHOULD, SHOULD NOT or MAY)",
                            requirement.level.value
                        ),
                    )
                })?;
            let because = requirement
                .because
                .as_ref()
                .map(|because| because.value.trim().to_owned());
            match (&because, entry.judged_as_written(level)) {
                (None, false) => {
                    return Err(self.error_at(
                        &requirement.level,
                        format!(
                            "the catalogue gives `{id}` as {}; cite it so, or say with \
                             `because:` why this scenario judges it as {}",
                            entry.level,
                            level.keyword()
                        ),
                    ));
                }
                (Some(reason), _) if reason.is_empty() => {
                    let at = requirement.because.as_ref().unwrap_or(&requirement.level);
                    return Err(self.error_at(at, "`because:` says why, in words"));
                }
                _ => {}
            }
            requirements.push(Requirement {
                id: id.to_owned(),
                level,
                because,
                section: requirement
                    .section
                    .clone()
                    .unwrap_or_else(|| entry.section.clone()),
            });
        }
        Ok(requirements)
    }

    /// The protocols an expectation is limited to (none: all of the scenario's), each one the
    /// scenario runs on.
    fn expectation_protocols<C>(
        &self,
        raw: &RawExpectation<C>,
        scenario: &[Protocol],
    ) -> Built<Vec<Protocol>> {
        let Some(list) = &raw.protocols else {
            return Ok(Vec::new());
        };
        let protocols = self.protocols(list, &raw.requirement)?;
        if let Some(stray) = protocols.iter().find(|p| !scenario.contains(p)) {
            return Err(self.error_at(
                &raw.requirement,
                format!("this expectation names {stray}, which the scenario does not run on"),
            ));
        }
        Ok(protocols)
    }

    fn protocols<T>(&self, list: &[Spanned<String>], whole: &Spanned<T>) -> Built<Vec<Protocol>> {
        if list.is_empty() {
            return Err(self.error_at(whole, "name at least one protocol (h1, h2)"));
        }
        let mut protocols = Vec::new();
        for item in list {
            let protocol: Protocol = item
                .value
                .parse()
                .map_err(|message: String| self.error_at(item, message))?;
            if protocols.contains(&protocol) {
                return Err(self.error_at(item, format!("protocol `{protocol}` is listed twice")));
            }
            protocols.push(protocol);
        }
        Ok(protocols)
    }

    fn detections(
        &self,
        raw: &RawScenario,
        requirements: &[Requirement],
        protocols: &[Protocol],
    ) -> Built<Vec<Detection>> {
        let mut detects: Vec<Detection> = Vec::new();
        for detection in &raw.detects {
            let fault: Fault =
                detection
                    .fault
                    .value
                    .parse()
                    .map_err(|error: crate::fault::UnknownFault| {
                        self.error_at(&detection.fault, error.to_string())
                    })?;
            let verdict = match detection.verdict.value.as_str() {
                "fail" => Verdict::Fail,
                "warn" => Verdict::Warn,
                "info" => Verdict::Info,
                other => {
                    return Err(self.error_at(
                        &detection.verdict,
                        format!("unknown verdict `{other}` (expected fail, warn or info)"),
                    ));
                }
            };
            if !requirements
                .iter()
                .any(|requirement| requirement.level.verdict_when_unmet() == verdict)
            {
                return Err(self.error_at(
                    &detection.verdict,
                    format!("no requirement of this scenario has a level that yields {verdict}"),
                ));
            }
            let protocols = match &detection.protocols {
                None => Vec::new(),
                Some(list) => {
                    let listed = self.protocols(list, &detection.fault)?;
                    if let Some(stray) = listed.iter().find(|p| !protocols.contains(p)) {
                        return Err(self.error_at(
                            &detection.fault,
                            format!("this claim names {stray}, which the scenario does not run on"),
                        ));
                    }
                    listed
                }
            };
            let overlaps = |known: &Detection| {
                known.fault == fault
                    && (known.protocols.is_empty()
                        || protocols.is_empty()
                        || known.protocols.iter().any(|p| protocols.contains(p)))
            };
            if detects.iter().any(overlaps) {
                return Err(self.error_at(
                    &detection.fault,
                    format!("fault `{fault}` is claimed twice"),
                ));
            }
            detects.push(Detection {
                fault,
                verdict,
                protocols,
                span: self.span(&detection.fault),
            });
        }
        Ok(detects)
    }

    fn step(&self, step: RawStep, context: &mut StepContext<'_>) -> Built<Step> {
        match step {
            RawStep::Connect(connect) => self.connect(*connect, context).map(Step::Connect),
            RawStep::Send(request) => {
                let on = request.on.as_ref().ok_or_else(|| {
                    self.error_at(
                        &request.authority,
                        "a `send` step names its connection with `on:`",
                    )
                })?;
                let connection = self.known_connection(on, context)?;
                let request = self.request(*request, context)?;
                Ok(Step::Send(Send {
                    connection,
                    requests: vec![request],
                    concurrent: false,
                    rounds: 1,
                }))
            }
            RawStep::Burst(burst) => self.burst(burst, context).map(Step::Send),
        }
    }

    fn connect(&self, raw: RawConnect, context: &mut StepContext<'_>) -> Built<Connect> {
        let name = raw.name.value.trim().to_owned();
        if name.is_empty() {
            return Err(self.error_at(&raw.name, "a connection needs a name"));
        }
        if context.connections.contains(&name) {
            return Err(self.error_at(&raw.name, format!("connection `{name}` is opened twice")));
        }
        let sni = match raw.sni.value.as_str() {
            "none" => None,
            role => Some(self.role(role, &raw.sni)?),
        };
        let client_certificate = match &raw.client_certificate {
            None => None,
            Some(stated) => match &stated.value {
                RawClientCertificate::Stated(false) => None,
                RawClientCertificate::Stated(true) => Some(self.role(Role::Mtls.key(), stated)?),
                RawClientCertificate::IssuedFor(key) => {
                    let role = self.role(key, stated)?;
                    if !role.requires_client_certificate() {
                        return Err(self.error_at(
                            stated,
                            format!(
                                "`{role}` trusts no client CA: name an mTLS tenant ({}) or write `true`",
                                Role::ALL
                                    .into_iter()
                                    .filter(|role| role.requires_client_certificate())
                                    .map(Role::key)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                    Some(role)
                }
            },
        };
        let resume = raw
            .resume
            .as_ref()
            .map(|resume| self.known_connection(resume, context))
            .transpose()?;
        let route = match (&raw.protocol, &raw.via_alt_svc) {
            (Some(_), Some(via)) => {
                return Err(self.error_at(
                    via,
                    "a connection through Alt-Svc is always HTTP/3; remove `protocol:`",
                ));
            }
            (Some(protocol), None) => Route::Protocol(
                protocol
                    .value
                    .parse()
                    .map_err(|message: String| self.error_at(protocol, message))?,
            ),
            (None, Some(via)) => Route::AltSvc(self.known_connection(via, context)?),
            (None, None) => Route::Case,
        };
        let tls = match &raw.tls {
            None => None,
            Some(tls) => Some(match tls.value.as_str() {
                "1.2" => TlsVersion::Tls12,
                "1.3" => TlsVersion::Tls13,
                other => {
                    return Err(self.error_at(
                        tls,
                        format!("unknown TLS version `{other}` (expected 1.2 or 1.3)"),
                    ));
                }
            }),
        };
        let quic = match &route {
            Route::Case => context.protocols.contains(&Protocol::Http3),
            Route::Protocol(protocol) => *protocol == Protocol::Http3,
            Route::AltSvc(_) => true,
        };
        if let Some(at) = &raw.tls
            && tls == Some(TlsVersion::Tls12)
            && quic
        {
            return Err(self.error_at(
                at,
                "QUIC runs TLS 1.3 only (RFC 9001): a connection held to TLS 1.2 is for h1 and h2",
            ));
        }
        context.connections.push(name.clone());
        Ok(Connect {
            name,
            sni,
            client_certificate,
            resume,
            route,
            tls,
        })
    }

    fn burst(&self, raw: RawBurst, context: &mut StepContext<'_>) -> Built<Send> {
        let connection = self.known_connection(&raw.on, context)?;
        let rounds = match &raw.rounds {
            Some(rounds) if !(1..=100).contains(&rounds.value) => {
                return Err(self.error_at(rounds, "rounds must be between 1 and 100"));
            }
            Some(rounds) => rounds.value,
            None => 1,
        };
        if raw.requests.is_empty() {
            return Err(self.error_at(&raw.on, "a burst sends at least one request"));
        }
        let requests = raw
            .requests
            .into_iter()
            .map(|request| {
                if let Some(on) = &request.on {
                    return Err(self.error_at(
                        on,
                        "requests in a burst use the burst's connection; remove `on:`",
                    ));
                }
                self.request(request, context)
            })
            .collect::<Built<Vec<_>>>()?;
        Ok(Send {
            connection,
            requests,
            concurrent: true,
            rounds,
        })
    }

    fn request(&self, raw: RawRequest, context: &mut StepContext<'_>) -> Built<Request> {
        let span = self.span(&raw.authority);
        let method = self.method(raw.method.as_ref())?;
        let path = match &raw.path {
            Some(path)
                if !path.value.starts_with('/') || path.value.contains(char::is_whitespace) =>
            {
                return Err(self.error_at(path, "a path starts with `/` and has no white space"));
            }
            Some(path) => path.value.clone(),
            None => "/".to_owned(),
        };
        let form = match &raw.form {
            None => TargetForm::Origin,
            Some(form) => match form.value.as_str() {
                "origin" => TargetForm::Origin,
                "absolute" => TargetForm::Absolute,
                other => {
                    return Err(self.error_at(
                        form,
                        format!("unknown form `{other}` (expected origin or absolute)"),
                    ));
                }
            },
        };
        let scheme = match &raw.scheme {
            None => Scheme::Https,
            Some(scheme) => match scheme.value.as_str() {
                "https" => Scheme::Https,
                "http" => Scheme::Http,
                other => {
                    return Err(self.error_at(
                        scheme,
                        format!("unknown scheme `{other}` (expected https or http)"),
                    ));
                }
            },
        };
        if let Some(at) = &raw.scheme
            && scheme != Scheme::Https
            && form == TargetForm::Origin
            && context.protocols.contains(&Protocol::Http1)
        {
            return Err(self.error_at(
                at,
                "an HTTP/1.1 request in origin form carries no scheme: add `form: absolute`",
            ));
        }
        for (name, value) in &raw.headers {
            if !is_token(name) || value.contains(['\r', '\n']) {
                return Err(self.error(
                    span.clone(),
                    format!("header `{name}` is not a valid field"),
                ));
            }
        }
        let authority = self.authority(&raw.authority)?;
        if authority.host == AuthorityHost::Nothing && form == TargetForm::Absolute {
            return Err(self.error_at(
                &raw.authority,
                "`authority: none` is a request without an authority field; an absolute-form target always has one",
            ));
        }
        let second_authority = match &raw.second_authority {
            None => None,
            Some(_) if context.protocols.contains(&Protocol::Http1) => {
                return Err(self.error_at(
                    &raw.authority,
                    "`second_authority` repeats :authority, which HTTP/1.1 has not (a second Host line is `host:` in origin form): list only h2 and h3",
                ));
            }
            Some(second) => {
                let second_authority = self.authority(second)?;
                if matches!(
                    second_authority.host,
                    AuthorityHost::Nothing | AuthorityHost::Empty
                ) {
                    return Err(
                        self.error_at(second, "a second :authority names a role or `address`")
                    );
                }
                Some(second_authority)
            }
        };
        let host = raw
            .host
            .as_ref()
            .map(|host| self.authority(host))
            .transpose()?;
        if let (Some(raw_host), Some(host)) = (&raw.host, &host)
            && matches!(host.host, AuthorityHost::Nothing | AuthorityHost::Empty)
        {
            return Err(self.error_at(
                raw_host,
                "`host:` names a role or `address`; for no Host, leave `host` out",
            ));
        }
        let expect = raw
            .expect
            .into_iter()
            .map(|expectation| self.expectation(expectation, context))
            .collect::<Built<Vec<_>>>()?;
        Ok(Request {
            method,
            scheme,
            authority,
            host,
            second_authority,
            form,
            path,
            headers: raw.headers.into_iter().collect(),
            body: raw.body,
            expect,
        })
    }

    fn authority(&self, raw: &Spanned<RawAuthority>) -> Built<Authority> {
        match &raw.value {
            RawAuthority::Role(role) => Ok(Authority {
                host: self.authority_host(role, raw)?,
                ..Authority::of(Role::Primary)
            }),
            RawAuthority::Detailed(detail) => {
                let port = match detail.port.as_deref() {
                    None | Some("target") => PortForm::Target,
                    Some("other") => PortForm::Other,
                    Some("leading-zero") => PortForm::LeadingZero,
                    Some("omitted") => PortForm::Omitted,
                    Some("overflowing") => PortForm::Overflowing,
                    Some("explicit") => PortForm::Explicit,
                    Some(other) => {
                        return Err(self.error_at(
                            raw,
                            format!("unknown port form `{other}` (expected target, explicit, other, leading-zero, omitted or overflowing)"),
                        ));
                    }
                };
                Ok(Authority {
                    host: self.authority_host(&detail.role, raw)?,
                    port,
                    uppercase: detail.uppercase,
                    trailing_dot: detail.trailing_dot,
                    userinfo: detail
                        .userinfo
                        .as_ref()
                        .map(|role| self.role(role, raw))
                        .transpose()?,
                    suffix: match &detail.suffix {
                        Some(suffix)
                            if suffix.is_empty()
                                || suffix.len() > 32
                                || !suffix.chars().all(|c| c.is_ascii_graphic() || c == ' ') =>
                        {
                            return Err(self
                                .error_at(raw, "a suffix is 1 to 32 printable ASCII characters"));
                        }
                        suffix => suffix.clone(),
                    },
                })
            }
        }
    }

    /// A role, `address` for the target's IP address, `none` or `empty`.
    fn authority_host<T>(&self, key: &str, at: &Spanned<T>) -> Built<AuthorityHost> {
        match key {
            ADDRESS => Ok(AuthorityHost::Address),
            NO_AUTHORITY => Ok(AuthorityHost::Nothing),
            EMPTY_AUTHORITY => Ok(AuthorityHost::Empty),
            _ => self.role(key, at).map(AuthorityHost::Role),
        }
    }

    fn expectation(
        &self,
        raw: RawExpectation<RawCheck>,
        context: &mut StepContext<'_>,
    ) -> Built<Expectation> {
        self.known_keys(&raw, REQUEST_FIELDS)?;
        let span = self.span(&raw.requirement);
        let requirement = self.cited(&raw.requirement, context.requirements)?;
        let protocols = self.expectation_protocols(&raw, context.protocols)?;
        let if_advertised = raw.if_advertised.as_ref().is_some_and(|flag| flag.value);
        let if_uncovered = raw.if_uncovered.as_ref().is_some_and(|flag| flag.value);
        let premise = match &raw.premise {
            None => None,
            Some(stated) => Some(match &stated.value {
                RawPremise::Stated(true) => Premise { judged_by: None },
                RawPremise::Stated(false) => {
                    return Err(self.error_at(
                        stated,
                        "a premise is stated positively: write `true`, or the ID of the scenario that judges its cause, or leave the key out",
                    ));
                }
                RawPremise::JudgedBy(id) => Premise {
                    judged_by: Some(id.clone()),
                },
            }),
        };
        let check = self.one_check(raw, &span)?;
        context.expectations += 1;
        Ok(Expectation {
            requirement,
            check,
            protocols,
            if_advertised,
            if_uncovered,
            premise,
            span,
        })
    }

    /// Every key of an expectation is one of `fields` or a check's name; else an error at the
    /// first that is not.
    fn known_keys<R: RawChecks>(
        &self,
        raw: &RawExpectation<R>,
        fields: &[&'static str],
    ) -> Built<()> {
        let stray = raw
            .fields
            .iter()
            .filter(|key| !fields.contains(&key.value.as_str()))
            .chain(&raw.unknown)
            .min_by_key(|key| (key.referenced.line(), key.referenced.column()));
        match stray {
            Some(key) => Err(self.error_at(
                key,
                format!(
                    "unknown field `{}`, expected one of {}",
                    key.value,
                    RawExpectation::<R>::keys(fields).join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// The index of the requirement an expectation cites, which the scenario must list.
    fn cited(&self, cited: &Spanned<String>, requirements: &[Requirement]) -> Built<usize> {
        requirements
            .iter()
            .position(|requirement| requirement.id == cited.value)
            .ok_or_else(|| {
                self.error_at(
                    cited,
                    format!(
                        "requirement `{}` is not listed under `requirements:`",
                        cited.value
                    ),
                )
            })
    }

    /// The one check an expectation states, built from its value; the role it names is
    /// recorded with the scenario's roles.
    fn one_check<R: RawChecks>(&self, raw: RawExpectation<R>, span: &Span) -> Built<R::Check> {
        let checks = raw.checks;
        let stated = checks.len();
        let mut built = checks
            .into_iter()
            .map(|raw| {
                raw.build()
                    .map_err(|error| self.error(span_at(self.source, error.at), error.message))
            })
            .collect::<Built<Vec<_>>>()?;
        match built.pop() {
            Some(check) if built.is_empty() => {
                if let Some(role) = R::role(&check) {
                    self.roles.borrow_mut().insert(role);
                }
                Ok(check)
            }
            _ => Err(self.error(
                span.clone(),
                format!(
                    "an expectation states exactly one check ({}); this one states {stated}",
                    R::names().join(", ")
                ),
            )),
        }
    }

    /// A request's method: a token (RFC 9110 §9.1), GET when left out.
    fn method(&self, raw: Option<&Spanned<String>>) -> Built<String> {
        match raw {
            Some(method) if !is_token(&method.value) => Err(self.error_at(
                method,
                format!("`{}` is not an HTTP method token", method.value),
            )),
            Some(method) => Ok(method.value.clone()),
            None => Ok("GET".to_owned()),
        }
    }

    fn role<T>(&self, key: &str, at: &Spanned<T>) -> Built<Role> {
        let role = key
            .parse()
            .map_err(|error: crate::deployment::UnknownRole| {
                self.error_at(at, error.to_string())
            })?;
        self.roles.borrow_mut().insert(role);
        Ok(role)
    }

    fn known_connection(&self, name: &Spanned<String>, context: &StepContext<'_>) -> Built<String> {
        if context.connections.contains(&name.value) {
            Ok(name.value.clone())
        } else {
            Err(self.error_at(
                name,
                format!(
                    "connection `{}` is not opened by an earlier step",
                    name.value
                ),
            ))
        }
    }
}

struct StepContext<'a> {
    requirements: &'a [Requirement],
    protocols: &'a [Protocol],
    connections: Vec<String>,
    expectations: usize,
}

/// An RFC 9110 `token`: what method and field names are made of.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
