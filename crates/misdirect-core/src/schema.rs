//! JSON Schemas (draft-07, what yaml-language-server and most editors read) for the files people
//! write: scenarios and baselines here, target profiles in the shell, which owns their format.
//!
//! The schemas are built from the same declarations the loaders read (the check families, the
//! roles, protocols, faults, origin scripts and the requirements catalogue), so an editor offers
//! exactly the names the loader accepts. They catch the shape of a file (keys, types, names,
//! one check per expectation); what needs more than one value at a time (an expectation citing
//! a requirement its scenario lists, a `detects:` verdict its levels can yield) is the loader's,
//! which reports it with `file:line:col`. `cargo test` validates every file of the project
//! against them and checks that the committed copies in `docs/schemas/` are current.

use serde_json::{Map, Value, json};

use crate::catalogue;
use crate::check::{self, Documented};
use crate::deployment::Role;
use crate::fault::Fault;
use crate::origin_script::OriginScript;
use crate::protocol::Protocol;
use crate::scenario::{ADDRESS, CLIENT_FIELDS, EMPTY_AUTHORITY, NO_AUTHORITY, REQUEST_FIELDS};
use crate::verdict::Level;

/// The draft every schema here is written in.
const DRAFT: &str = "http://json-schema.org/draft-07/schema#";

/// A schema document: its draft, title, description, root and shared definitions.
pub fn document(title: &str, description: &str, mut root: Value, definitions: Value) -> Value {
    let mut head = json!({
        "$schema": DRAFT,
        "title": title,
        "description": description,
    });
    if let (Some(head), Some(root)) = (head.as_object_mut(), root.as_object_mut()) {
        head.append(root);
        head.insert("definitions".to_owned(), definitions);
    }
    head
}

/// A value that is one of `keys`, described.
fn one_of(keys: impl IntoIterator<Item = impl Into<String>>, description: &str) -> Value {
    let keys: Vec<String> = keys.into_iter().map(Into::into).collect();
    json!({ "enum": keys, "description": description })
}

/// The roles, for the shell's profile schema too.
pub fn role() -> Value {
    one_of(
        Role::ALL.map(Role::key),
        "a role of the standard deployment, mapped to a name by the target",
    )
}

fn protocols() -> Value {
    json!({
        "type": "array",
        "items": one_of(Protocol::ALL.map(Protocol::key), "a protocol"),
        "uniqueItems": true,
    })
}

fn requirement_id() -> Value {
    one_of(
        catalogue::entries().iter().map(|entry| entry.id.clone()),
        "an ID of the requirements catalogue (`misdirect list --requirements`)",
    )
}

/// An object of exactly these `properties`, of which `required` must be there.
fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}

/// An expectation: `fields` (the requirement and what limits it) and exactly one of `checks`.
fn expectation(fields: &[&str], checks: &[&'static [Documented]]) -> Value {
    let mut properties = Map::new();
    for field in fields {
        let schema = match *field {
            "requirement" => json!({
                "type": "string",
                "description": "the ID of a requirement this scenario lists",
            }),
            "protocols" => {
                let mut limited = protocols();
                limited["description"] = json!("only on these protocols");
                limited
            }
            "if_advertised" => json!({
                "const": true,
                "description": "only on connections on which the target sent ORIGIN frames",
            }),
            "if_uncovered" => json!({
                "const": true,
                "description": "only for authorities the presented certificate does not cover",
            }),
            "premise" => json!({
                "description": "what the case presupposes: unmet, the case SKIPs (with the scenario ID that judges its cause)",
                "oneOf": [{ "const": true }, { "type": "string" }],
            }),
            other => json!({ "description": other }),
        };
        properties.insert((*field).to_owned(), schema);
    }
    let mut one_check = Vec::new();
    for check in checks.iter().flat_map(|family| family.iter()) {
        let mut schema = (check.schema)();
        schema["description"] = json!(check.paragraph());
        properties.insert(check.name.to_owned(), schema);
        one_check.push(json!({ "required": [check.name] }));
    }
    let mut schema = object(Value::Object(properties), &["requirement"]);
    schema["oneOf"] = Value::Array(one_check);
    schema["description"] = json!("one check, citing the requirement it judges by");
    schema
}

/// The schema of a scenario file.
pub fn scenario() -> Value {
    let [server, origin, gateway, client] = check::catalogue().map(|(_, checks)| checks);
    let request_expectation = expectation(REQUEST_FIELDS, &[server, origin, gateway]);
    let client_expectation = expectation(CLIENT_FIELDS, &[client]);
    let request = |required: &[&str]| {
        object(
            json!({
                "on": { "type": "string", "description": "the connection it travels on" },
                "method": { "type": "string", "description": "GET unless stated" },
                "authority": { "$ref": "#/definitions/authority" },
                "host": {
                    "$ref": "#/definitions/authority",
                    "description": "a Host header apart from :authority (HTTP/1.1: with form: absolute)",
                },
                "second_authority": {
                    "$ref": "#/definitions/authority",
                    "description": "a second :authority field after the first (HTTP/2 and HTTP/3 only)",
                },
                "form": one_of(["origin", "absolute"], "HTTP/1.1 request-target form"),
                "scheme": one_of(["https", "http"], ":scheme, or the absolute-form target's (https unless stated)"),
                "path": { "type": "string", "pattern": "^/\\S*$" },
                "headers": {
                    "type": "object",
                    "additionalProperties": { "type": "string" },
                    "description": "extra header fields",
                },
                "body": { "type": "string" },
                "expect": { "type": "array", "items": { "$ref": "#/definitions/expectation" } },
            }),
            required,
        )
    };
    let step = |name: &str, schema: Value| object(json!({ name: schema }), &[name]);
    let root = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["title", "requirements", "protocols"],
        "oneOf": [{ "required": ["steps"] }, { "required": ["client"] }],
        "properties": {
            "title": { "type": "string" },
            "description": { "type": "string" },
            "gateway": {
                "type": "boolean",
                "description": "the target is a gateway in front of misdirect's mock upstreams",
            },
            "requirements": {
                "type": "array",
                "minItems": 1,
                "items": object(json!({
                    "id": requirement_id(),
                    "level": one_of(Level::ALL.map(Level::keyword), "the BCP 14 level an unmet expectation citing it is judged by"),
                    "section": { "type": "string", "description": "where it is written (default: the catalogue's)" },
                    "because": { "type": "string", "minLength": 1, "description": "why the level differs from the catalogue's, where it does" },
                }), &["id", "level"]),
            },
            "protocols": protocols(),
            "detects": {
                "type": "array",
                "items": object(json!({
                    "fault": one_of(Fault::ALL.iter().map(|fault| fault.key()), "a fault of the embedded target (`misdirect faults`)"),
                    "verdict": one_of(["fail", "warn", "info"], "the verdict the fault must drive the scenario to"),
                    "protocols": protocols(),
                }), &["fault", "verdict"]),
            },
            "steps": {
                "type": "array",
                "minItems": 1,
                "items": { "oneOf": [
                    step("connect", json!({ "$ref": "#/definitions/connect" })),
                    step("send", request(&["on", "authority"])),
                    step("burst", object(json!({
                        "on": { "type": "string" },
                        "rounds": { "type": "integer", "minimum": 1, "maximum": 100 },
                        "requests": { "type": "array", "minItems": 1, "items": request(&["authority"]) },
                    }), &["on", "requests"])),
                ]},
            },
            "client": object(json!({
                "origin": one_of(OriginScript::ALL.map(OriginScript::key), "how the embedded origin answers"),
                "origin_frame": {
                    "type": "array",
                    "items": { "$ref": "#/definitions/role" },
                    "description": "the roles the origin's HTTP/2 ORIGIN frame lists",
                },
                "origin_frame_stream": { "type": "integer", "minimum": 0 },
                "fetch": {
                    "type": "array",
                    "minItems": 1,
                    "items": object(json!({
                        "url": { "$ref": "#/definitions/role" },
                        "method": { "type": "string" },
                        "body": { "type": "string" },
                    }), &["url"]),
                },
                "expect": { "type": "array", "minItems": 1, "items": client_expectation },
            }), &["fetch", "expect"]),
        },
    });
    let definitions = json!({
        "role": role(),
        "host": {
            "anyOf": [
                { "$ref": "#/definitions/role" },
                { "const": ADDRESS, "description": "the target's IP address instead of a name" },
                { "const": NO_AUTHORITY, "description": "no authority field: no Host (HTTP/1.1), neither :authority nor Host (HTTP/2, HTTP/3)" },
                { "const": EMPTY_AUTHORITY, "description": "an authority field with an empty value" },
            ],
        },
        "authority": {
            "oneOf": [
                { "$ref": "#/definitions/host" },
                object(json!({
                    "role": { "$ref": "#/definitions/host" },
                    "port": one_of(["target", "explicit", "other", "leading-zero", "omitted", "overflowing"], "which port the authority names"),
                    "uppercase": { "type": "boolean" },
                    "trailing_dot": { "type": "boolean" },
                    "userinfo": {
                        "$ref": "#/definitions/role",
                        "description": "this role's name as userinfo before the host (role@host)",
                    },
                    "suffix": {
                        "type": "string", "minLength": 1, "maxLength": 32,
                        "description": "characters written after the authority, such as /x, # or ?",
                    },
                }), &["role"]),
            ],
        },
        "connect": object(json!({
            "name": { "type": "string", "minLength": 1 },
            "sni": {
                "description": "the role whose name goes into SNI, or none",
                "anyOf": [{ "$ref": "#/definitions/role" }, { "const": "none" }],
            },
            "client_certificate": {
                "description": "present a client certificate: true for the mtls tenant's, or the mTLS role whose client CA issued it",
                "anyOf": [
                    { "type": "boolean" },
                    one_of(Role::ALL.into_iter().filter(|role| role.requires_client_certificate()).map(Role::key), "the mTLS role whose client CA issued the certificate"),
                ],
            },
            "resume": { "type": "string", "description": "resume the TLS session of this connection" },
            "protocol": one_of(Protocol::ALL.map(Protocol::key), "another protocol than the case's"),
            "via_alt_svc": { "type": "string", "description": "reach the HTTP/3 alternative this connection's responses advertised" },
            "tls": one_of(["1.2", "1.3"], "the one TLS version to offer (h1 and h2 only for 1.2); both by default"),
        }), &["name", "sni"]),
        "expectation": request_expectation,
    });
    document(
        "misdirect scenario",
        "One scenario of a misdirect suite: the requirements it cites, the protocols it runs on, the faults that prove it can fail, and its steps (or, for a client under test, what the origin does and what the client must send).",
        root,
        definitions,
    )
}

/// The schema of a baseline file.
pub fn baseline() -> Value {
    let root = object(
        json!({
            "server": { "type": "string", "description": "the server whose deviations these are" },
            "client": { "type": "string", "description": "or the client under test" },
            "deviations": {
                "type": "array",
                "items": object(json!({
                    "case": {
                        "type": "string",
                        "pattern": "^\\S+ \\[(h1|h2|h3)\\]$",
                        "description": "the case ID: scenario [protocol]",
                    },
                    "verdict": one_of(["fail", "warn", "error"], "the verdict it gets"),
                    "requirement": requirement_id(),
                    "reason": { "type": "string", "minLength": 1, "description": "why, from the evidence" },
                }), &["case", "verdict", "reason"]),
            },
        }),
        &[],
    );
    let mut root = root;
    if let Some(root) = root.as_object_mut() {
        root.insert(
            "oneOf".to_owned(),
            json!([{ "required": ["server"] }, { "required": ["client"] }]),
        );
    }
    document(
        "misdirect baseline",
        "A server's or client's known deviations: each case with the verdict it gets and why.",
        root,
        json!({}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_is_offered_with_its_words() {
        let schema = scenario();
        let properties = &schema["definitions"]["expectation"]["properties"];
        assert_eq!(properties["status"]["oneOf"][0]["minimum"], 100);
        assert_eq!(properties["served_by"]["$ref"], "#/definitions/role");
        assert_eq!(properties["uncovered_refused"]["const"], true);
        assert!(
            properties["uncovered_refused"]["description"]
                .as_str()
                .is_some_and(|words| !words.is_empty())
        );
        let one_check = schema["definitions"]["expectation"]["oneOf"]
            .as_array()
            .map_or(0, Vec::len);
        let [server, origin, gateway, _] = check::catalogue().map(|(_, checks)| checks.len());
        assert_eq!(one_check, server + origin + gateway);
        assert_eq!(schema["$schema"], DRAFT);
    }
}
