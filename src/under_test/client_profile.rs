//! Client profiles (`clients/*.yaml`): an HTTP client under test as data, beside the server
//! profiles of `targets/`: the command that fetches a client scenario's URLs, the protocols it
//! is judged on, the tools it needs, how it names its version, and its reviewed baseline.
//!
//! A client profile is loaded like a scenario (unknown keys and wrong types are `file:line:col`
//! errors), so that `misdirect run --client clients/<name>.yaml` and the client matrix test a
//! client the same way, and a missing tool is named rather than guessed.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::client::CommandClient;
use misdirect_core::protocol::Protocol;
use misdirect_core::scenario::{LoadError, read_yaml, span_of};

/// The serde mirror of a client profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientProfile {
    client: Spanned<String>,
    /// Prose for the reader of the profile; misdirect does not use it.
    #[serde(default, rename = "description")]
    _description: Option<serde::de::IgnoredAny>,
    command: Spanned<String>,
    protocols: Spanned<Vec<String>>,
    #[serde(default)]
    needs: Vec<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    baseline: Option<Spanned<String>>,
    #[serde(default)]
    concurrency: Option<Spanned<usize>>,
}

/// An HTTP client under test, from its profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientProfile {
    /// The client's name, in reports and the client matrix.
    pub client: String,
    pub command: CommandClient,
    /// The protocols its client cases run on: those it can be made to speak.
    pub protocols: Vec<Protocol>,
    /// Executables that must be on PATH (`scripts/install-test-tools` installs them).
    pub needs: Vec<String>,
    /// A command whose first line of output names the client's version, for reports.
    pub version: Option<String>,
    /// Its known deviations, relative paths resolved against the profile's folder.
    pub baseline: Option<PathBuf>,
    /// Most cases run at once: a browser on a small machine cannot start sixteen copies of
    /// itself within a case's deadline.
    pub concurrency: Option<usize>,
}

/// Whether `path` names a client profile rather than a command: a YAML file.
pub fn is_profile(path: &str) -> bool {
    matches!(
        Path::new(path).extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Loads a client profile; relative paths in it are relative to the profile's folder.
pub fn load(path: &Path) -> Result<ClientProfile, LoadError> {
    let (source, raw) = read_yaml::<RawClientProfile>(path)?;
    let folder = path.parent().unwrap_or(Path::new("."));
    let error_at = |span, message: String| LoadError {
        path: path.to_owned(),
        span: Some(span),
        message,
    };
    let at = |spanned: &Spanned<String>| span_of(&source, spanned);
    let client = raw.client.value.trim().to_owned();
    if !super::profile::is_valid_name(&client) {
        return Err(error_at(
            at(&raw.client),
            "the client name must be letters, digits, `-`, `_` or `.`".to_owned(),
        ));
    }
    // `{dir}`: the profile's folder, so that a command finds the scripts beside it from any
    // working directory.
    let absolute = std::path::absolute(folder).unwrap_or_else(|_| folder.to_owned());
    let template = raw
        .command
        .value
        .trim()
        .replace("{dir}", &absolute.to_string_lossy());
    let command = CommandClient {
        name: Some(client.clone()),
        ..CommandClient::parse(&template).map_err(|why| error_at(at(&raw.command), why))?
    };
    let protocols = raw
        .protocols
        .value
        .iter()
        .map(|key| key.parse::<Protocol>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|why| error_at(span_of(&source, &raw.protocols), why))?;
    if protocols.is_empty() {
        return Err(error_at(
            span_of(&source, &raw.protocols),
            "name the protocols the client is judged on: h1, h2, h3".to_owned(),
        ));
    }
    let baseline = match &raw.baseline {
        Some(name) if !folder.join(&name.value).is_file() => {
            return Err(error_at(
                at(name),
                format!("no file at {}", folder.join(&name.value).display()),
            ));
        }
        Some(name) => Some(folder.join(&name.value)),
        None => None,
    };
    let concurrency = match &raw.concurrency {
        Some(limit) if limit.value == 0 || limit.value > 1024 => {
            return Err(error_at(
                span_of(&source, limit),
                "concurrency is between 1 and 1024".to_owned(),
            ));
        }
        limit => limit.as_ref().map(|limit| limit.value),
    };
    Ok(ClientProfile {
        client,
        concurrency,
        command,
        protocols,
        needs: raw.needs,
        version: raw.version,
        baseline,
    })
}

/// The profiles in `folder` (every `*.yaml` that is not a baseline), sorted by client name.
pub fn load_folder(folder: &Path) -> Result<Vec<ClientProfile>, LoadError> {
    let unreadable = |error: std::io::Error| LoadError {
        path: folder.to_owned(),
        span: None,
        message: format!("cannot read the folder: {error}"),
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(unreadable)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.to_string_lossy();
            is_profile(&name) && !name.ends_with(".baseline.yaml")
        })
        .collect();
    paths.sort();
    let mut profiles = paths
        .iter()
        .map(|path| load(path))
        .collect::<Result<Vec<_>, _>>()?;
    profiles.sort_by(|one, other| one.client.cmp(&other.client));
    Ok(profiles)
}

/// The JSON Schema of a client profile file (draft-07, for editors; `misdirect schema client`).
pub fn schema() -> serde_json::Value {
    use serde_json::json;
    let string = |description: &str| json!({ "type": "string", "description": description });
    let root = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["client", "command", "protocols"],
        "properties": {
            "client": string("the client's name, in reports and the client matrix"),
            "description": string("prose for the reader; misdirect does not use it"),
            "command": string(&format!(
                "run with `sh -c` for each client case; placeholders: {} and {{dir}} (this file's folder)",
                super::client::PLACEHOLDERS.join(" ")
            )),
            "protocols": {
                "type": "array",
                "minItems": 1,
                "items": { "enum": ["h1", "h2", "h3"] },
                "description": "the protocols its client cases run on",
            },
            "needs": {
                "type": "array",
                "items": { "type": "string" },
                "description": "executables that must be on PATH",
            },
            "version": string("a command whose first line names the client's version"),
            "baseline": string("its known deviations, relative to this file"),
            "concurrency": { "type": "integer", "minimum": 1, "maximum": 1024, "description": "most cases run at once" },
        },
    });
    misdirect_core::schema::document(
        "misdirect client profile",
        "An HTTP client under test: the command that fetches a client scenario's URLs, the protocols it is judged on, what it needs, and its baseline.",
        root,
        json!({}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(name: &str, text: &str) -> Result<ClientProfile, LoadError> {
        let dir = std::env::temp_dir().join(format!("misdirect-clients-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        std::fs::write(dir.join("known.yaml"), "client: x\ndeviations: []\n").expect("baseline");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("profile");
        load(&path)
    }

    #[test]
    fn a_profile_names_its_command_protocols_and_baseline() {
        let profile = load_text(
            "fetcher.yaml",
            "client: fetcher\ncommand: sh {dir}/fetch.sh {ca} {urls}\nprotocols: [h1, h2]\n\
             needs: [sh]\nbaseline: known.yaml\nconcurrency: 2\n",
        )
        .expect("loads");
        assert_eq!(profile.protocols, [Protocol::Http1, Protocol::Http2]);
        assert_eq!(profile.command.name.as_deref(), Some("fetcher"));
        // `{dir}` is the profile's folder, so the command runs from anywhere.
        assert!(
            !profile.command.template.contains("{dir}")
                && profile.command.template.contains("/fetch.sh {ca} {urls}"),
            "{}",
            profile.command.template
        );
        assert!(profile.baseline.is_some_and(|path| path.is_file()));
        assert_eq!(profile.concurrency, Some(2));
    }

    #[test]
    fn mistakes_are_located() {
        let cases = [
            (
                "client: c\ncommand: curl {urls} {url}\nprotocols: [h2]\n",
                "2:10",
                "{url} is no placeholder",
            ),
            (
                "client: c\ncommand: curl {urls}\nprotocols: [h4]\n",
                "3:12",
                "h4",
            ),
            (
                "client: c\ncommand: curl {urls}\nprotocols: []\n",
                "3:12",
                "name the protocols",
            ),
            (
                "client: c\ncommand: curl {urls}\nprotocols: [h1]\nbaseline: gone.yaml\n",
                "4:11",
                "no file at",
            ),
            (
                "client: c\ncommand: curl {urls}\nprotocols: [h1]\ntimeout: 3\n",
                "4:1",
                "timeout",
            ),
        ];
        for (index, (text, at, says)) in cases.into_iter().enumerate() {
            let error = load_text(&format!("broken-{index}.yaml"), text).expect_err(text);
            let shown = error.to_string();
            assert!(
                shown.contains(&format!("broken-{index}.yaml:{at}")),
                "{shown}"
            );
            assert!(shown.contains(says), "{shown}");
        }
    }
}
