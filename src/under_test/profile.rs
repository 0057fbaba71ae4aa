//! Target profiles: one YAML file that says where a server under test is, which of its hostnames
//! play which role, what to trust, and, for servers misdirect starts itself, how to configure,
//! start and stop it on loopback.
//!
//! A profile is loaded like a scenario (unknown keys and wrong types are `file:line:col` errors)
//! and becomes a [`Remote`](super::Remote) plus, when it has a `launch` section, a [`Launch`]
//! plan. Starting and stopping the process lives in [`launcher`](super::launcher).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::client::tls::{ClientIdentity, Roots, Trust};
use misdirect_core::deployment::{Deployment, Role};
use misdirect_core::scenario::{LoadError, Source, position_after, read_yaml, span_of};

/// The serde mirror of a profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    server: Spanned<String>,
    /// Prose for the reader of the profile; misdirect does not use it.
    #[serde(default, rename = "description")]
    _description: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    address: Option<Spanned<String>>,
    #[serde(default)]
    h3_port: Option<u16>,
    #[serde(default)]
    certs: Option<Spanned<String>>,
    #[serde(default)]
    trust: Option<Spanned<String>>,
    #[serde(default)]
    client_certificate: Option<Spanned<RawClientCertificate>>,
    #[serde(default)]
    partner_client_certificate: Option<Spanned<RawClientCertificate>>,
    #[serde(default)]
    names: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    unsupported: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    upstreams: Option<Spanned<String>>,
    #[serde(default)]
    baseline: Option<String>,
    #[serde(default)]
    concurrency: Option<Spanned<usize>>,
    #[serde(default)]
    launch: Option<RawLaunch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientCertificate {
    certificate: String,
    key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLaunch {
    #[serde(default)]
    needs: Vec<String>,
    config: Spanned<String>,
    #[serde(default)]
    files: Vec<Spanned<String>>,
    command: Spanned<String>,
    #[serde(default)]
    h3: bool,
    #[serde(default)]
    ready_within: Option<Spanned<f64>>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    #[serde(default)]
    version: Option<String>,
}

/// The JSON Schema of a profile file (draft-07, for editors; `misdirect schema profile`): the
/// mirror above, key for key.
pub fn schema() -> serde_json::Value {
    use misdirect_core::schema::{document, role};
    use serde_json::json;
    let string = |description: &str| json!({ "type": "string", "description": description });
    let client_certificate = |description: &str| {
        json!({
            "description": description,
            "type": "object",
            "additionalProperties": false,
            "required": ["certificate", "key"],
            "properties": {
                "certificate": string("PEM file"),
                "key": string("PEM file"),
            },
        })
    };
    let roles_to = |description: &str| {
        json!({
            "type": "object",
            "propertyNames": { "$ref": "#/definitions/role" },
            "additionalProperties": { "type": "string" },
            "description": description,
        })
    };
    let root = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["server"],
        "properties": {
            "server": string("the server's name, in reports and for its working folder"),
            "description": string("prose for the reader; misdirect does not use it"),
            "address": string("IP:PORT of a running server (none for one misdirect launches)"),
            "h3_port": { "type": "integer", "minimum": 1, "maximum": 65535 },
            "certs": string("a folder of `misdirect certs` the server was configured with"),
            "trust": string("`system`, or a PEM file of the CAs to trust"),
            "client_certificate": client_certificate("the certificate the mtls tenant accepts"),
            "partner_client_certificate": client_certificate("the certificate the partner tenant accepts"),
            "names": roles_to("the name that plays each role; a role not named is played by nobody"),
            "unsupported": roles_to("roles the server cannot play, with the reason"),
            "upstreams": { "enum": ["https", "cleartext"], "description": "how the mock upstreams behind a gateway speak" },
            "baseline": string("the server's known deviations, relative to the profile"),
            "concurrency": { "type": "integer", "minimum": 1 },
            "launch": {
                "type": "object",
                "additionalProperties": false,
                "required": ["config", "command"],
                "properties": {
                    "needs": { "type": "array", "items": { "type": "string" }, "description": "executables that must be installed" },
                    "config": string("the configuration template, relative to the profile"),
                    "files": { "type": "array", "items": { "type": "string" } },
                    "command": string("the shell command that runs the server in the foreground"),
                    "h3": { "type": "boolean" },
                    "ready_within": { "type": "number", "exclusiveMinimum": 0 },
                    "vars": { "type": "object", "additionalProperties": { "type": "string" } },
                    "version": string("a command whose first line names the server's version"),
                },
            },
        },
    });
    document(
        "misdirect target profile",
        "Where a server under test is, which of its names play which role, what to trust and, for a server misdirect starts itself, how to configure and start it.",
        root,
        json!({ "role": role() }),
    )
}

/// How the mock upstreams behind a gateway speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstreams {
    Https,
    Cleartext,
}

/// A loaded profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The server's name, used in reports and for its working folder.
    pub server: String,
    /// Where a running server listens; `None` for a launched one (misdirect picks the port).
    pub address: Option<SocketAddr>,
    pub h3_port: Option<u16>,
    /// What a running server is trusted with (`certs:`, or `trust:` with `client_certificate:`);
    /// `None` for a launched server, which is configured with misdirect's own PKI.
    pub trust: Option<Trust>,
    /// Which of its names play which role, and the roles it does not play, with the reason.
    pub deployment: Deployment,
    pub upstreams: Option<Upstreams>,
    /// The server's known deviations (see [`misdirect_core::baseline`]), compared with every run.
    pub baseline: Option<PathBuf>,
    /// At most this many cases at once, for a server that cannot take the default load.
    pub concurrency: Option<usize>,
    pub launch: Option<Launch>,
}

/// How to start a server on loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Executables that must be on PATH (`scripts/install-servers` installs them).
    pub needs: Vec<String>,
    /// The configuration template, rendered into the working folder.
    pub config: PathBuf,
    /// More templates the configuration refers to (`{workdir}/<name>`), rendered beside it.
    pub files: Vec<PathBuf>,
    /// Run with `sh -c` in its own process group, in the foreground.
    pub command: String,
    /// Whether the server also serves HTTP/3 on the UDP port with the TCP port's number.
    pub h3: bool,
    /// How long the server may take to accept TCP connections.
    pub ready_within: Duration,
    /// Values for `{var:NAME}` in the template, so that variants of one server share it.
    pub vars: BTreeMap<String, String>,
    /// A command whose first line of output names the server's version, for reports.
    pub version: Option<String>,
}

const DEFAULT_READY_WITHIN: Duration = Duration::from_secs(10);

/// Whether a server's or client's name can name its working folder and report files:
/// letters, digits, `-`, `_` and `.`.
pub(super) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Loads a profile; relative paths in it are relative to the profile's folder.
pub fn load(path: &Path) -> Result<Profile, LoadError> {
    let (source, raw) = read_yaml::<RawProfile>(path)?;
    let folder = path.parent().unwrap_or(Path::new("."));
    Builder {
        source: &source,
        path,
    }
    .profile(raw, folder)
}

struct Builder<'a> {
    source: &'a Arc<Source>,
    path: &'a Path,
}

impl Builder<'_> {
    /// An error at `spanned` unless a file is at `path`.
    fn present<T>(&self, spanned: &Spanned<T>, path: &Path) -> Result<(), LoadError> {
        if path.is_file() {
            Ok(())
        } else {
            Err(self.error_at(spanned, format!("no file at {}", path.display())))
        }
    }

    fn error_at<T>(&self, spanned: &Spanned<T>, message: impl Into<String>) -> LoadError {
        LoadError {
            path: self.path.to_owned(),
            span: Some(span_of(self.source, spanned)),
            message: message.into(),
        }
    }

    fn profile(&self, raw: RawProfile, folder: &Path) -> Result<Profile, LoadError> {
        let server = raw.server.value.trim().to_owned();
        if !is_valid_name(&server) {
            return Err(self.error_at(
                &raw.server,
                "the server name must be letters, digits, `-`, `_` or `.`",
            ));
        }
        let address =
            raw.address
                .as_ref()
                .map(|address| {
                    address.value.parse::<SocketAddr>().map_err(|_| {
                        self.error_at(address, "expected IP:PORT, e.g. 127.0.0.1:8443")
                    })
                })
                .transpose()?;
        // With `names:`, the roles it lists are the only ones the server plays.
        let mut deployment = Deployment::standard();
        let mut named = Vec::new();
        for (role, name) in &raw.names {
            let role = self.role(role, name)?;
            deployment.set_name(role, name.value.clone());
            named.push(role);
        }
        for (role, reason) in &raw.unsupported {
            let role = self.role(role, reason)?;
            if named.contains(&role) {
                return Err(
                    self.error_at(reason, format!("`{role}` is both named and unsupported"))
                );
            }
            if reason.value.trim().is_empty() {
                return Err(self.error_at(reason, "say why the server cannot play this role"));
            }
            deployment.unmap(role, reason.value.trim());
        }
        if !named.is_empty() {
            for role in Role::ALL.into_iter().filter(|role| !named.contains(role)) {
                deployment.unmap(
                    role,
                    format!("the target's profile maps no name to the `{role}` role (`names:`)"),
                );
            }
        }
        let upstreams = raw
            .upstreams
            .as_ref()
            .map(|mode| match mode.value.as_str() {
                "https" => Ok(Upstreams::Https),
                "cleartext" => Ok(Upstreams::Cleartext),
                _ => Err(self.error_at(mode, "upstreams are `https` or `cleartext`")),
            })
            .transpose()?;
        let trust = self.trust(&raw, folder)?;
        let concurrency = match &raw.concurrency {
            Some(limit) if limit.value == 0 || limit.value > 1024 => {
                return Err(self.error_at(limit, "concurrency is between 1 and 1024"));
            }
            limit => limit.as_ref().map(|limit| limit.value),
        };
        let launch = raw
            .launch
            .map(|launch| self.launch(launch, folder, upstreams.is_some()))
            .transpose()?;
        match (&launch, &address) {
            (Some(_), Some(_)) => {
                return Err(self.error_at(
                    raw.address.as_ref().unwrap_or(&raw.server),
                    "a launched server listens where misdirect says: leave `address` out",
                ));
            }
            (None, None) => {
                return Err(self.error_at(
                    &raw.server,
                    "a profile needs `address` (a running server) or `launch` (one misdirect starts)",
                ));
            }
            _ => {}
        }
        if launch.is_some() && trust.is_some() {
            let key = raw
                .certs
                .as_ref()
                .or(raw.trust.as_ref())
                .unwrap_or(&raw.server);
            return Err(self.error_at(
                key,
                "a launched server is configured with misdirect's own PKI: leave `certs`, `trust` \
                 and the client certificates out",
            ));
        }
        if launch.is_none() && trust.is_none() {
            return Err(self.error_at(
                &raw.server,
                "a running server needs `certs` (a folder with ca.pem, client.pem and client.key) \
                 or `trust` (`system` or a CA file)",
            ));
        }
        Ok(Profile {
            server,
            address,
            h3_port: raw.h3_port,
            trust,
            deployment,
            upstreams,
            baseline: raw.baseline.map(|baseline| folder.join(baseline)),
            concurrency,
            launch,
        })
    }

    fn role(&self, key: &str, at: &Spanned<String>) -> Result<Role, LoadError> {
        key.parse()
            .map_err(|error: misdirect_core::deployment::UnknownRole| {
                self.error_at(at, error.to_string())
            })
    }

    /// `certs: DIR`, or `trust: system|FILE` with optional client certificates; every file
    /// named must be there, or the profile does not load.
    fn trust(&self, raw: &RawProfile, folder: &Path) -> Result<Option<Trust>, LoadError> {
        if let Some(certs) = &raw.certs {
            for file in ["ca.pem", "client.pem", "client.key"] {
                self.present(certs, &folder.join(&certs.value).join(file))
                    .map_err(|mut error| {
                        error
                            .message
                            .push_str(" (`misdirect certs DIR` writes the folder)");
                        error
                    })?;
            }
        }
        if let Some(roots) = raw.trust.as_ref().filter(|roots| roots.value != "system") {
            self.present(roots, &folder.join(&roots.value))?;
        }
        let identities = [
            (Role::Mtls, &raw.client_certificate),
            (Role::Partner, &raw.partner_client_certificate),
        ];
        let mut client_identities = Vec::new();
        for (tenant, client) in identities {
            let Some(client) = client else { continue };
            self.present(client, &folder.join(&client.value.certificate))?;
            self.present(client, &folder.join(&client.value.key))?;
            if raw.certs.is_none() && raw.trust.is_none() {
                return Err(self.error_at(
                    client,
                    "a client certificate comes with `trust` (`system` or a CA file)",
                ));
            }
            client_identities.push((
                tenant,
                ClientIdentity {
                    certificate: folder.join(&client.value.certificate),
                    key: folder.join(&client.value.key),
                },
            ));
        }
        match (&raw.certs, &raw.trust) {
            (Some(certs), None) if client_identities.is_empty() => {
                Ok(Some(Trust::certs_folder(&folder.join(&certs.value))))
            }
            (Some(certs), _) => Err(self.error_at(
                certs,
                "`certs` names the CA and the client certificates already: leave `trust` and \
                 the client certificates out, or `certs`",
            )),
            (None, Some(roots)) => Ok(Some(Trust {
                roots: Roots::named(&roots.value, folder),
                client_identities,
            })),
            (None, None) => Ok(None),
        }
    }

    fn launch(&self, raw: RawLaunch, folder: &Path, upstreams: bool) -> Result<Launch, LoadError> {
        let ready_within = match &raw.ready_within {
            None => DEFAULT_READY_WITHIN,
            Some(seconds) if seconds.value > 0.0 && seconds.value <= 120.0 => {
                Duration::from_secs_f64(seconds.value)
            }
            Some(seconds) => {
                return Err(self.error_at(seconds, "ready_within is between 0 and 120 seconds"));
            }
        };
        let template = |spanned: &Spanned<String>| {
            let path = folder.join(&spanned.value);
            if path.is_file() {
                Ok(path)
            } else {
                Err(self.error_at(spanned, format!("no template at {}", path.display())))
            }
        };
        let config = template(&raw.config)?;
        let files: Vec<PathBuf> = raw.files.iter().map(template).collect::<Result<_, _>>()?;
        for path in std::iter::once(&config).chain(&files) {
            check_placeholders(path, &raw.vars, upstreams)?;
        }
        if !raw.command.value.contains("{config}") {
            return Err(self.error_at(
                &raw.command,
                "the command must name the rendered configuration: {config}",
            ));
        }
        Ok(Launch {
            needs: raw.needs,
            config,
            files,
            command: raw.command.value,
            h3: raw.h3,
            ready_within,
            vars: raw.vars,
            version: raw.version,
        })
    }
}

/// Checks a template's own placeholders before anything is launched: each `{var:NAME}` must be
/// set by `launch.vars`, each `{upstream:TENANT}` must name a tenant of a profile that runs the
/// mock upstreams. Other braces belong to the server's configuration language.
fn check_placeholders(
    path: &Path,
    vars: &BTreeMap<String, String>,
    upstreams: bool,
) -> Result<(), LoadError> {
    let text = std::fs::read_to_string(path).map_err(|error| LoadError {
        path: path.to_owned(),
        span: None,
        message: format!("cannot read the template: {error}"),
    })?;
    for (at, _) in text.match_indices('{') {
        let Some(inner) = text[at + 1..].split_once('}').map(|(inner, _)| inner) else {
            break;
        };
        let word = |name: &str| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        let problem = match inner.split_once(':').filter(|(_, name)| word(name)) {
            Some(("var", name)) if !vars.contains_key(name) => {
                format!("{{var:{name}}} is not set by the profile's launch.vars")
            }
            Some(("upstream", tenant))
                if !Role::ALL.iter().any(|role| role.tenant() == Some(tenant)) =>
            {
                format!("{{upstream:{tenant}}} names no tenant")
            }
            Some(("upstream", tenant)) if !upstreams => {
                format!("{{upstream:{tenant}}} needs `upstreams:` in the profile")
            }
            _ => continue,
        };
        let (line, column) = position_after(&text[..at]);
        let source = Source::new(path, text.as_str());
        return Err(LoadError {
            path: path.to_owned(),
            span: Some(misdirect_core::scenario::Span::new(&source, line, column)),
            message: problem,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Profile, LoadError> {
        let dir = std::env::temp_dir().join(format!("misdirect-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        std::fs::write(dir.join("server.conf.template"), "listen {port};").expect("template");
        for folder in ["mine", "c"] {
            std::fs::create_dir_all(dir.join(folder)).expect("certs folder");
            for file in ["ca.pem", "client.pem", "client.key"] {
                std::fs::write(dir.join(folder).join(file), "").expect("certs");
            }
        }
        for file in ["me.pem", "me.key"] {
            std::fs::write(dir.join(file), "").expect("client certificate");
        }
        let path = dir.join(format!("p{}.yaml", text.len()));
        std::fs::write(&path, text).expect("profile");
        load(&path)
    }

    #[test]
    fn a_running_server_maps_roles_onto_its_names() {
        let profile = load_text(
            "server: edge\naddress: 192.0.2.10:443\ncerts: mine\nnames: { primary: api.example.com }\n",
        )
        .expect("loads");
        assert_eq!(
            profile.address,
            Some("192.0.2.10:443".parse().expect("address"))
        );
        assert_eq!(profile.deployment.name(Role::Primary), "api.example.com");
        assert!(profile.deployment.is_mapped(Role::Primary));
        assert!(!profile.deployment.is_mapped(Role::Mtls));
        assert!(profile.launch.is_none());
    }

    #[test]
    fn a_launched_server_needs_its_config_placeholder() {
        let error = load_text(
            "server: x\nlaunch:\n  config: server.conf.template\n  command: x --conf /etc/x\n",
        )
        .expect_err("rejected");
        assert!(error.message.contains("{config}"), "{error}");
        let span = error.span.expect("located");
        assert_eq!((span.line, span.column), (4, 12));
    }

    #[test]
    fn missing_files_and_unknown_placeholders_are_located() {
        let error = load_text("server: x\naddress: 127.0.0.1:1\ncerts: absent\n")
            .expect_err("no such folder");
        assert!(error.message.contains("absent/ca.pem"), "{error}");
        assert_eq!(error.span.expect("located").line, 3);
        let error = load_text("server: x\naddress: 127.0.0.1:1\ntrust: nowhere.pem\n")
            .expect_err("no such file");
        assert_eq!(error.span.expect("located").line, 3);
        let dir = std::env::temp_dir().join(format!("misdirect-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        std::fs::write(
            dir.join("typo.conf.template"),
            "listen {port};\nproxy {upstream:alpha};\ncheck {var:hots_check};\n",
        )
        .expect("template");
        let error = load_text(
            "server: x\nupstreams: https\nlaunch:\n  config: typo.conf.template\n  command: x -c {config}\n  vars: { host_check: 'on' }\n",
        )
        .expect_err("unknown var");
        assert!(error.message.contains("{var:hots_check}"), "{error}");
        assert!(error.path.ends_with("typo.conf.template"), "{error}");
        let span = error.span.expect("located");
        assert_eq!((span.line, span.column), (3, 7));
        let error = load_text(
            "server: x\nlaunch:\n  config: typo.conf.template\n  command: x -c {config}\n  vars: { hots_check: 'on' }\n",
        )
        .expect_err("no upstreams");
        assert!(error.message.contains("needs `upstreams:`"), "{error}");
    }

    #[test]
    fn unknown_roles_and_keys_are_located() {
        let error =
            load_text("server: x\naddress: 127.0.0.1:1\ncerts: c\nnames: { boss: a.test }\n")
                .expect_err("rejected");
        assert_eq!(error.span.expect("located").line, 4);
        let error = load_text("server: x\naddress: 127.0.0.1:1\ncerts: c\nport: 3\n")
            .expect_err("rejected");
        assert_eq!(error.span.expect("located").line, 4);
    }

    #[test]
    fn trust_is_a_certs_folder_or_system_roots_with_an_optional_client_certificate() {
        let profile = load_text(
            "server: edge\naddress: 192.0.2.10:443\ntrust: system\n\
             client_certificate: { certificate: me.pem, key: me.key }\n",
        )
        .expect("loads");
        let trust = profile.trust.expect("trust");
        assert_eq!(trust.roots, Roots::System);
        let identity = trust
            .client_identity(Role::Mtls)
            .expect("client certificate");
        assert!(identity.certificate.ends_with("me.pem"));
        let error = load_text("server: edge\naddress: 192.0.2.10:443\ncerts: c\ntrust: system\n")
            .expect_err("both");
        assert_eq!(error.span.expect("located").line, 3);
        let error = load_text("server: edge\naddress: 192.0.2.10:443\n").expect_err("none");
        assert!(error.message.contains("`trust`"), "{error}");
    }

    #[test]
    fn unsupported_roles_carry_their_reason() {
        let profile = load_text(
            "server: x\nlaunch:\n  config: server.conf.template\n  command: x -c {config}\n\
             unsupported: { mtls: one TLS context for every name }\n",
        )
        .expect("loads");
        assert_eq!(
            profile.deployment.unmapped_reason(Role::Mtls),
            Some("one TLS context for every name")
        );
        assert!(profile.deployment.is_mapped(Role::Foreign));
        let error = load_text(
            "server: x\naddress: 127.0.0.1:1\ncerts: c\nnames: { mtls: m.test }\n\
             unsupported: { mtls: no }\n",
        )
        .expect_err("both named and unsupported");
        assert_eq!(error.span.expect("located").line, 5);
    }
}
