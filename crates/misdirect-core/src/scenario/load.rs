//! Scenario files → [`Scenario`]s: find the files, parse each with serde-saphyr into its mirror
//! (`raw`), and have `build` turn that into the model; every mistake becomes a [`LoadError`] that
//! points at `file:line:col` and shows the line.

use std::collections::HashSet;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::build::Builder;
use super::raw::RawScenario;
use super::span::{LoadError, Span, clamp, position_after};
use super::{Scenario, Source};

/// Loads every `*.yaml` file below each path (a file or a folder), sorted by ID. All errors are
/// collected, so that one run reports every broken file.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Scenario>, Vec<LoadError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if let Err(error) = collect_yaml(path, &mut files) {
            errors.push(LoadError {
                path: path.clone(),
                span: None,
                message: format!("failed to read: {error}"),
            });
        }
    }
    files.sort();
    files.dedup();
    let mut scenarios = Vec::new();
    for file in files {
        match load_file(&file) {
            Ok(scenario) => scenarios.push(scenario),
            Err(error) => errors.push(error),
        }
    }
    let mut seen = HashSet::new();
    for scenario in &scenarios {
        if !seen.insert(scenario.id.clone()) {
            errors.push(LoadError {
                path: scenario.span.path().to_owned(),
                span: Some(scenario.span.clone()),
                message: format!("scenario ID `{}` is used by another file", scenario.id),
            });
        }
    }
    if errors.is_empty() {
        scenarios.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(scenarios)
    } else {
        Err(errors)
    }
}

/// Loads one scenario file; its ID is its path below the nearest `suites` folder.
pub fn load_file(path: &Path) -> Result<Scenario, LoadError> {
    let text = read_text(path)?;
    load_str(path, &scenario_id(path), &text)
}

/// The most a scenario, profile or baseline file may hold: the largest in this project is a
/// few kilobytes, and a file a thousand times that is a mistake, not a scenario.
const MAX_FILE: u64 = 1024 * 1024;

/// Reads a YAML file as UTF-8 text of at most [`MAX_FILE`] bytes; invalid UTF-8 is reported at
/// the `line:col` of its first bad byte.
fn read_text(path: &Path) -> Result<String, LoadError> {
    let failed = |message: String| LoadError {
        path: path.to_owned(),
        span: None,
        message,
    };
    let size = fs::metadata(path)
        .map_err(|error| failed(format!("failed to read: {error}")))?
        .len();
    if size > MAX_FILE {
        return Err(failed(format!(
            "{size} bytes is more than the {MAX_FILE} a file of misdirect may hold"
        )));
    }
    let bytes = fs::read(path).map_err(|error| failed(format!("failed to read: {error}")))?;
    String::from_utf8(bytes).map_err(|error| {
        let bytes = error.as_bytes();
        let valid = error.utf8_error().valid_up_to();
        let (line, column) = position_after(&String::from_utf8_lossy(&bytes[..valid]));
        let source = Source::new(path, String::from_utf8_lossy(bytes).as_ref());
        LoadError {
            path: path.to_owned(),
            span: Some(Span::new(&source, line, column)),
            message: format!("invalid UTF-8 (byte 0x{:02x})", bytes[valid]),
        }
    })
}

/// Parses and builds one scenario from text; `path` is only used in diagnostics.
pub fn load_str(path: &Path, id: &str, text: &str) -> Result<Scenario, LoadError> {
    let (source, raw) = parse_yaml::<RawScenario>(path, text)?;
    Builder::new(&source, path).scenario(id, raw)
}

/// Reads a YAML file into its serde mirror, with `file:line:col` on any syntax or type error.
pub fn read_yaml<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<(Arc<Source>, T), LoadError> {
    let text = read_text(path)?;
    parse_yaml(path, &text)
}

/// Parses YAML into its serde mirror, keeping the text for spans; a syntax or type error points at
/// `file:line:col`. Shared by scenario files and target profiles.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<(Arc<Source>, T), LoadError> {
    let source = Source::new(path, text);
    // Only `true` and `false` are booleans (not `yes`, `on` or a quoted "true"), and a tag
    // nobody reads (`!weird`) is an error rather than silently dropped.
    let options = serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
        reject_unsupported_tags: true,
    };
    let raw = serde_saphyr::from_str_with_options(text, options).map_err(|error| {
        let (line, column) = error
            .location()
            .map_or((1, 1), |at| (clamp(at.line()), clamp(at.column())));
        LoadError {
            path: path.to_owned(),
            span: Some(Span::new(&source, line, column)),
            message: strip_location(&error.to_string()),
        }
    })?;
    Ok((source, raw))
}

fn collect_yaml(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        for entry in fs::read_dir(path)? {
            collect_yaml(&entry?.path(), files)?;
        }
    } else if path.is_file() {
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(path.to_owned());
        }
    } else {
        fs::metadata(path)?;
    }
    Ok(())
}

fn scenario_id(path: &Path) -> String {
    let stem = path.with_extension("");
    let components: Vec<String> = stem
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let below_suites = components
        .iter()
        .rposition(|part| part == "suites")
        .map(|at| components[at + 1..].to_vec());
    match below_suites {
        Some(parts) if !parts.is_empty() => parts.join("/"),
        _ => components[components.len().saturating_sub(2)..].join("/"),
    }
}

/// serde-saphyr ends messages with " at line L, column C"; the span already says where.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Check;
    use crate::check::server::ServerCheck;
    use crate::check::{RawCheck, RawChecks};
    use crate::deployment::Role;
    use crate::fault::Fault;
    use crate::protocol::Protocol;
    use crate::scenario::{Authority, Scheme, Step, TlsVersion};

    const VALID: &str = "\
title: Uncovered authority is refused
requirements:
  - id: R9110-7.4-b
    level: MUST
    section: RFC 9110 §7.4
protocols: [h1, h2]
detects:
  - { fault: no-certificate-check, verdict: fail }
steps:
  - connect: { name: main, sni: primary }
  - send:
      on: main
      authority: foreign
      expect:
        - requirement: R9110-7.4-b
          uncovered_refused: true
";

    fn check(text: &str, expected: &str) {
        let error = load_str(Path::new("suites/x/broken.yaml"), "x/broken", text).unwrap_err();
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn only_true_and_false_are_booleans_and_unknown_tags_are_errors() {
        for (written, message) in [
            ("uncovered_refused: \"yes\"", "invalid boolean"),
            ("uncovered_refused: yes", "invalid boolean"),
            (
                "uncovered_refused: !strange true",
                "unsupported tag `!strange`",
            ),
        ] {
            let text = VALID.replace("uncovered_refused: true", written);
            let error = load_str(Path::new("x.yaml"), "x", &text).unwrap_err();
            assert!(error.message.contains(message), "{written}: {error}");
            assert_eq!(error.span.map(|span| span.line), Some(16), "{written}");
        }
    }

    #[test]
    fn invalid_utf8_and_oversized_files_are_reported() {
        // One folder per checkout; the core reads no process ID.
        let checkout = env!("CARGO_MANIFEST_DIR").replace('/', "-");
        let dir = std::env::temp_dir().join(format!("misdirect-load{checkout}"));
        fs::create_dir_all(&dir).unwrap();
        let broken = dir.join("broken.yaml");
        fs::write(&broken, b"title: ok\nprotocols: [h\xff2]\n").unwrap();
        let error = load_file(&broken).unwrap_err();
        let span = error.span.as_ref().expect("a location");
        assert_eq!((span.line, span.column), (2, 14), "{error}");
        assert!(error.message.contains("invalid UTF-8"), "{error}");
        let huge = dir.join("huge.yaml");
        let file = fs::File::create(&huge).unwrap();
        file.set_len(MAX_FILE + 1).unwrap();
        let error = load_file(&huge).unwrap_err();
        assert!(error.message.contains("more than the"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loads_a_valid_scenario() {
        let scenario = load_str(Path::new("suites/server/a.yaml"), "server/a", VALID).unwrap();
        assert_eq!(scenario.suite(), "server");
        assert_eq!(scenario.name(), "a");
        assert_eq!(scenario.protocols, vec![Protocol::Http1, Protocol::Http2]);
        assert_eq!(scenario.detects[0].fault, Fault::NoCertificateCheck);
        let Step::Send(send) = &scenario.steps[1] else {
            panic!("second step is a send")
        };
        assert_eq!(send.requests[0].authority, Authority::of(Role::Foreign));
        assert_eq!(
            send.requests[0].expect[0].check,
            Check::Server(ServerCheck::UncoveredRefused)
        );
        assert_eq!(send.requests[0].expect[0].span.line, 15);
    }

    #[test]
    fn unknown_key_points_at_the_key() {
        check(
            &VALID.replace(
                "      authority: foreign",
                "      authority: foreign\n      authorty: primary",
            ),
            "error: unknown field `authorty`, expected one of on, method, authority, host, second_authority, form, scheme, path, headers, body, expect\n  --> suites/x/broken.yaml:14:7\n   |\n14 |       authorty: primary\n   |       ^",
        );
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        check(
            &VALID.replace(
                "uncovered_refused: true",
                "uncovered_refused: true\n          if_advertised: maybe",
            ),
            "error: invalid boolean (strict mode expects true/false)\n  --> suites/x/broken.yaml:17:26\n   |\n17 |           if_advertised: maybe\n   |                          ^",
        );
    }

    #[test]
    fn a_client_certificate_names_an_mtls_tenant() {
        check(
            &VALID.replace(
                "sni: primary }",
                "sni: primary, client_certificate: wildcard }",
            ),
            "error: `wildcard` trusts no client CA: name an mTLS tenant (mtls, partner) or write `true`\n  --> suites/x/broken.yaml:10:62\n   |\n10 |   - connect: { name: main, sni: primary, client_certificate: wildcard }\n   |                                                              ^",
        );
    }

    #[test]
    fn a_requirement_the_catalogue_does_not_list_is_an_error() {
        check(
            &VALID.replace("  - id: R9110-7.4-b", "  - id: R9110-7.4-q"),
            "error: `R9110-7.4-q` is not in the requirements catalogue; did you mean `R9110-7.4-a`?\n --> suites/x/broken.yaml:3:9\n  |\n3 |   - id: R9110-7.4-q\n  |         ^",
        );
        // Without a section, the catalogue's.
        let text = VALID.replace("    section: RFC 9110 §7.4\n", "");
        let scenario = load_str(Path::new("x.yaml"), "x", &text).unwrap();
        assert_eq!(scenario.requirements[0].section, "RFC 9110 §7.4");
    }

    #[test]
    fn a_level_other_than_the_catalogue_s_needs_a_reason() {
        let text = VALID.replace("    level: MUST\n", "    level: SHOULD\n");
        check(
            &text,
            "error: the catalogue gives `R9110-7.4-b` as MUST; cite it so, or say with `because:` why this scenario judges it as SHOULD\n --> suites/x/broken.yaml:4:12\n  |\n4 |     level: SHOULD\n  |            ^",
        );
        let reasoned = text
            .replace(
                "    section: RFC 9110 §7.4\n",
                "    section: RFC 9110 §7.4\n    because: a test of the rule\n",
            )
            .replace("verdict: fail", "verdict: warn");
        let scenario = load_str(Path::new("x.yaml"), "x", &reasoned).unwrap();
        assert_eq!(
            scenario.requirements[0].because.as_deref(),
            Some("a test of the rule")
        );
        // MUST NOT is judged as MUST is: no reason needed.
        let negated = VALID.replace("    level: MUST\n", "    level: MUST NOT\n");
        assert!(load_str(Path::new("x.yaml"), "x", &negated).is_ok());
    }

    #[test]
    fn no_authority_is_never_absolute_nor_a_host() {
        let none = VALID.replace("authority: foreign", "authority: none");
        assert!(load_str(Path::new("x.yaml"), "x", &none).is_ok());
        let absolute = none.replace("authority: none", "authority: none\n      form: absolute");
        let error = load_str(Path::new("x.yaml"), "x", &absolute).unwrap_err();
        assert!(error.message.contains("always has one"), "{error}");
        for form in ["none", "empty"] {
            let host = VALID.replace(
                "authority: foreign",
                &format!("authority: foreign\n      host: {form}"),
            );
            let error = load_str(Path::new("x.yaml"), "x", &host).unwrap_err();
            assert!(error.message.contains("leave `host` out"), "{error}");
        }
    }

    #[test]
    fn a_second_authority_is_for_http2_and_http3() {
        let twice = VALID.replace(
            "authority: foreign",
            "authority: primary\n      second_authority: foreign",
        );
        let error = load_str(Path::new("x.yaml"), "x", &twice).unwrap_err();
        assert!(error.message.contains("list only h2 and h3"), "{error}");
        let h2 = twice.replace("protocols: [h1, h2]", "protocols: [h2]");
        let scenario = load_str(Path::new("x.yaml"), "x", &h2).unwrap();
        let Step::Send(send) = &scenario.steps[1] else {
            panic!("the second step sends");
        };
        assert_eq!(
            send.requests[0].second_authority,
            Some(Authority::of(Role::Foreign))
        );
        let suffix = VALID.replace(
            "authority: foreign",
            "authority: { role: primary, suffix: \"\\u0001\" }",
        );
        let error = load_str(Path::new("x.yaml"), "x", &suffix).unwrap_err();
        assert!(error.message.contains("printable ASCII"), "{error}");
    }

    #[test]
    fn tls_1_2_is_for_connections_over_tcp() {
        let tls12 = VALID.replace(
            "connect: { name: main, sni: primary }",
            "connect: { name: main, sni: primary, tls: \"1.2\" }",
        );
        let scenario = load_str(Path::new("x.yaml"), "x", &tls12).unwrap();
        let Step::Connect(connect) = &scenario.steps[0] else {
            panic!("the first step connects");
        };
        assert_eq!(connect.tls, Some(TlsVersion::Tls12));
        let h3 = tls12.replace("protocols: [h1, h2]", "protocols: [h1, h3]");
        let error = load_str(Path::new("x.yaml"), "x", &h3).unwrap_err();
        assert!(error.message.contains("QUIC runs TLS 1.3 only"), "{error}");
        let unknown = tls12.replace("\"1.2\"", "\"1.1\"");
        let error = load_str(Path::new("x.yaml"), "x", &unknown).unwrap_err();
        assert!(
            error.message.contains("unknown TLS version `1.1`"),
            "{error}"
        );
    }

    #[test]
    fn an_untestable_requirement_cannot_be_cited() {
        let text = VALID.replace("R9110-7.4-b", "R9110-7.4-d");
        let error = load_str(Path::new("x.yaml"), "x", &text).unwrap_err();
        assert!(
            error.message.contains("marks `R9110-7.4-d` untestable"),
            "{error}"
        );
    }

    #[test]
    fn an_http_scheme_over_http1_needs_the_absolute_form() {
        let http = VALID.replace(
            "authority: foreign",
            "authority: foreign\n      scheme: http",
        );
        let error = load_str(Path::new("x.yaml"), "x", &http).unwrap_err();
        assert!(error.message.contains("add `form: absolute`"), "{error}");
        let absolute = http.replace("scheme: http", "scheme: http\n      form: absolute");
        let scenario = load_str(Path::new("x.yaml"), "x", &absolute).unwrap();
        let Step::Send(send) = &scenario.steps[1] else {
            panic!("the second step sends");
        };
        assert_eq!(send.requests[0].scheme, Scheme::Http);
        let h2 = http.replace("protocols: [h1, h2]", "protocols: [h2]");
        assert!(load_str(Path::new("x.yaml"), "x", &h2).is_ok());
        let unknown = VALID.replace(
            "authority: foreign",
            "authority: foreign\n      scheme: ftp",
        );
        let error = load_str(Path::new("x.yaml"), "x", &unknown).unwrap_err();
        assert!(error.message.contains("unknown scheme `ftp`"), "{error}");
    }

    #[test]
    fn unknown_role_is_reported_at_its_use() {
        check(
            &VALID.replace("authority: foreign", "authority: tenant"),
            "error: unknown role `tenant` (expected one of: primary, sibling, foreign, wildcard, mtls, partner, strict-tls, unconfigured, unknown)\n  --> suites/x/broken.yaml:13:18\n   |\n13 |       authority: tenant\n   |                  ^",
        );
    }

    #[test]
    fn undeclared_requirement_is_an_error() {
        check(
            &VALID.replace("- requirement: R9110-7.4-b", "- requirement: R9110-7.4-c"),
            "error: requirement `R9110-7.4-c` is not listed under `requirements:`\n  --> suites/x/broken.yaml:15:24\n   |\n15 |         - requirement: R9110-7.4-c\n   |                        ^",
        );
    }

    #[test]
    fn unopened_connection_is_an_error() {
        check(
            &VALID.replace("on: main", "on: other"),
            "error: connection `other` is not opened by an earlier step\n  --> suites/x/broken.yaml:12:11\n   |\n12 |       on: other\n   |           ^",
        );
    }

    #[test]
    fn unknown_fault_is_an_error() {
        let error = load_str(
            Path::new("s.yaml"),
            "s",
            &VALID.replace("no-certificate-check", "no-such-fault"),
        )
        .unwrap_err();
        assert!(
            error.message.starts_with("unknown fault `no-such-fault`"),
            "{error}"
        );
        assert_eq!(error.span.unwrap().line, 8);
    }

    #[test]
    fn detection_verdict_must_match_a_level() {
        let error = load_str(
            Path::new("s.yaml"),
            "s",
            &VALID.replace("verdict: fail", "verdict: warn"),
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "no requirement of this scenario has a level that yields WARN"
        );
    }

    #[test]
    fn two_checks_in_one_expectation_are_an_error() {
        let error = load_str(
            Path::new("s.yaml"),
            "s",
            &VALID.replace(
                "uncovered_refused: true",
                "uncovered_refused: true\n          status: 421",
            ),
        )
        .unwrap_err();
        assert!(error.message.contains("exactly one check"), "{error}");
    }

    #[test]
    fn an_unknown_check_points_at_its_key_and_lists_every_check() {
        let error = load_str(
            Path::new("s.yaml"),
            "s",
            &VALID.replace("uncovered_refused: true", "uncovered_refusd: true"),
        )
        .unwrap_err();
        assert_eq!(
            error.span.as_ref().map(|span| (span.line, span.column)),
            Some((16, 11))
        );
        for name in RawCheck::names() {
            assert!(error.message.contains(name), "{name} missing: {error}");
        }
    }

    #[test]
    fn a_client_expectation_takes_no_request_fields_but_protocols() {
        let client = "\
title: c
requirements:
  - { id: R9110-15.5.20-c, level: SHOULD, section: RFC 9110 §15.5.20, because: a test }
protocols: [h2]
client:
  origin: first-request
  fetch:
    - url: primary
  expect:
    - { requirement: R9110-15.5.20-c, if_uncovered: true, retried_on_new_connection: true }
";
        let error = load_str(Path::new("c.yaml"), "c", client).unwrap_err();
        assert!(
            error.message.starts_with(
                "unknown field `if_uncovered`, expected one of requirement, protocols, coalesced_only_covered"
            ),
            "{error}"
        );
        assert_eq!(error.span.map(|span| span.line), Some(10));
        let h3 = client.replace("if_uncovered: true", "protocols: [h3]");
        let error = load_str(Path::new("c.yaml"), "c", &h3).unwrap_err();
        assert!(
            error
                .message
                .contains("names h3, which the scenario does not run on"),
            "{error}"
        );
        let h2 = client.replace("if_uncovered: true", "protocols: [h2]");
        let scenario = load_str(Path::new("c.yaml"), "c", &h2).unwrap();
        let plan = scenario.client.as_ref().unwrap();
        assert_eq!(plan.expect[0].protocols, vec![Protocol::Http2]);
    }

    #[test]
    fn a_checks_value_is_validated_where_it_stands() {
        let error = load_str(
            Path::new("s.yaml"),
            "s",
            &VALID.replace("uncovered_refused: true", "status: 99"),
        )
        .unwrap_err();
        assert_eq!(error.message, "status codes lie between 100 and 599");
        assert_eq!(
            error.span.map(|span| (span.line, span.column)),
            Some((16, 19))
        );
    }

    #[test]
    fn a_scenario_must_expect_something() {
        let text = VALID.split("      expect:").next().unwrap();
        let error = load_str(Path::new("s.yaml"), "s", text).unwrap_err();
        assert!(error.message.contains("expects nothing"), "{error}");
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let error = load_str(Path::new("s.yaml"), "s", "title: [unclosed\n").unwrap_err();
        let span = error.span.unwrap();
        assert_eq!((span.line, span.column), (1, 8));
    }

    #[test]
    fn ids_come_from_the_path_below_suites() {
        assert_eq!(
            scenario_id(Path::new("suites/server/own.yaml")),
            "server/own"
        );
        assert_eq!(scenario_id(Path::new("/x/suites/a/b/c.yaml")), "a/b/c");
        assert_eq!(scenario_id(Path::new("elsewhere/mine/c.yaml")), "mine/c");
    }
}
