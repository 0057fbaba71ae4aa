//! The JSON Schemas of `misdirect schema` against the project's own files: every scenario,
//! profile and baseline is valid, a broken copy is not, and the copies committed in
//! `docs/schemas/` (which editors point at) are what the command prints today.

use std::path::{Path, PathBuf};

use libtest_mimic::{Failed, Trial};

use super::{misdirect, root};

/// The kinds of file, each with its committed schema and the files of the project it describes.
const KINDS: [&str; 4] = ["scenario", "profile", "client", "baseline"];

pub(super) fn trials() -> Vec<Trial> {
    vec![
        Trial::test(
            "cli::schemas-accept-every-project-file",
            every_file_is_valid,
        ),
        Trial::test("cli::schemas-reject-broken-files", broken_files_are_invalid),
        Trial::test(
            "cli::committed-schemas-are-current",
            committed_schemas_are_current,
        ),
        Trial::test(
            "cli::scenario-format-documents-every-key",
            scenario_format_documents_every_key,
        ),
    ]
}

fn schema(kind: &str) -> Result<serde_json::Value, Failed> {
    let (code, stdout, stderr) = misdirect(&["schema", kind])?;
    if code != 0 {
        return Err(format!("misdirect schema {kind}: exit {code}\n{stderr}").into());
    }
    Ok(serde_json::from_str(&stdout).map_err(|error| format!("{kind}: {error}"))?)
}

fn validator(kind: &str) -> Result<jsonschema::Validator, Failed> {
    let schema = schema(kind)?;
    Ok(jsonschema::draft7::new(&schema).map_err(|error| format!("{kind} schema: {error}"))?)
}

/// The YAML text as the JSON value a schema validates.
fn value(text: &str) -> Result<serde_json::Value, String> {
    serde_saphyr::from_str(text).map_err(|error| error.to_string())
}

/// The errors a validator finds in `text`, one line each.
fn errors(validator: &jsonschema::Validator, text: &str) -> Result<Vec<String>, Failed> {
    let instance = value(text)?;
    Ok(validator
        .iter_errors(&instance)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect())
}

/// The project's files of a kind.
fn files(kind: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = match kind {
        "scenario" => vec![root().join("suites")],
        "client" => vec![root().join("clients")],
        "baseline" => vec![root().join("targets"), root().join("clients")],
        _ => vec![root().join("targets")],
    };
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = path.to_string_lossy().into_owned();
            if path.is_dir() {
                folders.push(path);
            } else if name.ends_with(".yaml")
                && (kind == "scenario" || (kind == "baseline") == name.ends_with(".baseline.yaml"))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn read(path: &Path) -> Result<String, Failed> {
    Ok(std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?)
}

fn every_file_is_valid() -> Result<(), Failed> {
    for kind in KINDS {
        let validator = validator(kind)?;
        let files = files(kind);
        if files.is_empty() {
            return Err(format!("no {kind} files found").into());
        }
        for path in files {
            let found = errors(&validator, &read(&path)?)?;
            if !found.is_empty() {
                return Err(format!("{}:\n{}", path.display(), found.join("\n")).into());
            }
        }
    }
    Ok(())
}

fn broken_files_are_invalid() -> Result<(), Failed> {
    let scenario = read(&root().join("suites/server/uncovered-authority.yaml"))?;
    let profile = read(&root().join("targets/nginx.yaml"))?;
    let baseline = read(&root().join("targets/nginx.baseline.yaml"))?;
    let client = read(&root().join("clients/curl.yaml"))?;
    let broken = [
        (
            "scenario",
            scenario.replace("title:", "titel:"),
            "an unknown key",
        ),
        (
            "scenario",
            scenario.replace(
                "uncovered_refused: true }",
                "uncovered_refused: true, status: 421 }",
            ),
            "two checks in one expectation",
        ),
        (
            "scenario",
            scenario.replace("authority: foreign", "authority: tenant"),
            "an unknown role",
        ),
        (
            "scenario",
            scenario.replace("uncovered_refused: true", "uncovered_refusd: true"),
            "an unknown check",
        ),
        (
            "scenario",
            scenario.replace("id: R9110-7.4-b", "id: R9110-7.4-q"),
            "an unknown requirement",
        ),
        (
            "scenario",
            scenario.replace("protocols: [h1, h2, h3]", "protocols: [h4]"),
            "an unknown protocol",
        ),
        (
            "profile",
            profile.replace("upstreams: https", "upstreams: http"),
            "an unknown upstream kind",
        ),
        (
            "profile",
            format!("{profile}adress: 127.0.0.1:443\n"),
            "an unknown key",
        ),
        (
            "baseline",
            baseline.replacen("verdict: fail", "verdict: pass", 1),
            "a verdict that is no deviation",
        ),
        (
            "client",
            client.replace("protocols: [h1, h2]", "protocols: [http2]"),
            "an unknown protocol",
        ),
        ("client", format!("{client}timeout: 3\n"), "an unknown key"),
    ];
    for (kind, text, what) in broken {
        if errors(&validator(kind)?, &text)?.is_empty() {
            return Err(format!("the schema accepted a {kind} with {what}").into());
        }
        // The loader refuses it as well: the schema is no stricter than misdirect.
        if kind == "scenario"
            && misdirect_core::scenario::load_str(Path::new("broken.yaml"), "server/broken", &text)
                .is_ok()
        {
            return Err(format!("the loader accepted a scenario with {what}").into());
        }
    }
    Ok(())
}

fn committed_schemas_are_current() -> Result<(), Failed> {
    for kind in KINDS {
        let (_, printed, _) = misdirect(&["schema", kind])?;
        let path = root().join(format!("docs/schemas/{kind}.schema.json"));
        if read(&path)? != printed {
            return Err(format!(
                "{} differs from `misdirect schema {kind}`: regenerate it with `cargo run -- schema {kind} > {}`",
                path.display(),
                path.display()
            )
            .into());
        }
    }
    Ok(())
}

/// Every key a schema names, at any depth.
fn keys(schema: &serde_json::Value, into: &mut Vec<String>) {
    match schema {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                if key == "properties" {
                    into.extend(
                        value
                            .as_object()
                            .into_iter()
                            .flat_map(|p| p.keys().cloned()),
                    );
                }
                keys(value, into);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| keys(item, into)),
        _ => {}
    }
}

fn scenario_format_documents_every_key() -> Result<(), Failed> {
    let reference = read(&root().join("docs/scenario-format.md"))?;
    for kind in KINDS {
        let mut named = Vec::new();
        keys(&schema(kind)?, &mut named);
        if let Some(missing) = named
            .iter()
            .find(|key| !reference.contains(&format!("`{key}`")))
        {
            return Err(format!(
                "docs/scenario-format.md does not mention the {kind} key `{missing}`"
            )
            .into());
        }
    }
    Ok(())
}
