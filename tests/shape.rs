//! The shape of the code, as tests: the core crate names no I/O crate, and neither the modules of
//! a crate nor the files of one folder import each other in a circle. Both promises are in
//! ARCHITECTURE.md; these keep them true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates that do I/O (an async runtime, sockets, TLS, QUIC, HTTP protocol stacks, processes):
/// none may appear among the core's dependencies, direct or transitive.
const IO_CRATES: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "libc",
    "nix",
    "rustls",
    "tokio-rustls",
    "ring",
    "aws-lc-rs",
    "quinn",
    "quinn-proto",
    "quinn-udp",
    "h2",
    "h3",
    "h3-quinn",
    "hyper",
    "rcgen",
];

#[test]
fn the_core_depends_on_no_io_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--package",
            "misdirect-core",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    let packages: BTreeSet<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        packages.contains("misdirect-core"),
        "cargo tree did not list the core: {tree}"
    );
    let offending: Vec<&&str> = IO_CRATES
        .iter()
        .filter(|name| packages.contains(**name))
        .collect();
    assert!(
        offending.is_empty(),
        "misdirect-core depends on {offending:?}; the core must stay free of I/O"
    );
}

/// What the standard library offers beyond files: sockets, processes, threads and clocks. The
/// core's loaders read files; nothing in the core uses these.
const IO_APIS: &[&str] = &[
    "std::net",
    "std::process",
    "std::thread",
    "Instant::now",
    "SystemTime::now",
];

#[test]
fn the_core_opens_no_socket_starts_nothing_and_reads_no_clock() {
    let core = root().join("crates/misdirect-core/src");
    let mut uses = Vec::new();
    for file in rust_files(&core) {
        let source = std::fs::read_to_string(&file).expect("readable source");
        for (number, line) in source.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for api in IO_APIS.iter().filter(|api| code.contains(**api)) {
                uses.push(format!("{}:{}: {api}", file.display(), number + 1));
            }
        }
    }
    assert!(uses.is_empty(), "the core does I/O: {uses:#?}");
}

#[test]
fn the_cores_modules_form_no_circle() {
    assert_no_circle(&root().join("crates/misdirect-core/src"));
}

#[test]
fn the_shells_modules_form_no_circle() {
    assert_no_circle(&root().join("src"));
}

#[test]
fn no_files_of_one_folder_import_each_other_in_a_circle() {
    for source_root in [root().join("crates/misdirect-core/src"), root().join("src")] {
        for folder in folders(&source_root) {
            let graph = sibling_graph(&folder);
            if let Some(circle) = find_circle(&graph) {
                panic!(
                    "files of {} import each other in a circle: {}",
                    folder.display(),
                    circle.join(" → ")
                );
            }
        }
    }
}

#[test]
fn a_circle_is_found() {
    let graph = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(find_circle(&graph), Some(vec!["a", "b", "c", "a"]));
    let layered = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::new()),
    ]);
    assert_eq!(find_circle(&layered), None);
}

#[test]
fn imports_are_read_from_paths_and_groups() {
    let source = "use crate::{alpha::One, beta};\n// crate::gamma in a comment\nfn f() { crate::delta::g(); }";
    let named: Vec<String> = modules_named(source, "crate::").into_iter().collect();
    assert_eq!(named, ["alpha", "beta", "delta"]);
    let siblings: Vec<String> = modules_named("use super::{h1::Read, gateway};", "super::")
        .into_iter()
        .collect();
    assert_eq!(siblings, ["gateway", "h1"]);
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn assert_no_circle(source_root: &Path) {
    let graph = module_graph(source_root);
    assert!(
        graph.len() > 3,
        "no modules found under {}",
        source_root.display()
    );
    if let Some(circle) = find_circle(&graph) {
        panic!(
            "modules of {} import each other in a circle: {}",
            source_root.display(),
            circle.join(" → ")
        );
    }
}

/// Top-level module → the other top-level modules of the same crate that it names.
fn module_graph(source_root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(source_root) {
        let relative = file.strip_prefix(source_root).expect("below the root");
        let first = relative
            .components()
            .next()
            .expect("a path")
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let source = std::fs::read_to_string(&file).expect("readable source");
        graph
            .entry(module)
            .or_default()
            .extend(modules_named(&source, "crate::"));
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for (module, named) in &mut graph {
        named.retain(|other| other != module && modules.contains(other));
    }
    graph
}

fn rust_files(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).expect("readable folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
    files
}

/// Every folder below `root`, `root` included.
fn folders(root: &Path) -> Vec<PathBuf> {
    let mut found = vec![root.to_owned()];
    for entry in std::fs::read_dir(root).expect("readable folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            found.extend(folders(&path));
        }
    }
    found
}

/// The files of one folder (its `mod.rs`, `lib.rs` and `main.rs` left out, which declare the
/// others) → the other files of the folder each names through `super::`.
fn sibling_graph(folder: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(folder).expect("readable folder") {
        let path = entry.expect("a folder entry").path();
        let Some(stem) = path
            .extension()
            .filter(|extension| *extension == "rs")
            .and(path.file_stem())
            .map(|stem| stem.to_string_lossy().into_owned())
        else {
            continue;
        };
        if ["mod", "lib", "main"].contains(&stem.as_str()) {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("readable source");
        graph.insert(stem, modules_named(&source, "super::"));
    }
    let files: BTreeSet<String> = graph.keys().cloned().collect();
    for (file, named) in &mut graph {
        named.retain(|other| other != file && files.contains(other));
    }
    graph
}

/// The first segment of every path in `source` that starts with `prefix` (`crate::`,
/// `super::`), comments left out.
fn modules_named(source: &str, prefix: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (index, _) in code.match_indices(prefix) {
            let rest = &code[index + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = group.split('}').next().unwrap_or("");
                named.extend(group.split(',').filter_map(first_identifier));
            } else if let Some(module) = first_identifier(rest) {
                named.insert(module);
            }
        }
    }
    named
}

fn first_identifier(text: &str) -> Option<String> {
    let identifier: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!identifier.is_empty()).then_some(identifier)
}

/// A path that leaves a module and comes back to it, if the graph has one.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<&str>> {
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(start) = path.iter().position(|on_path| *on_path == module) {
            let mut circle = path[start..].to_vec();
            circle.push(module);
            return Some(circle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module);
        for next in graph.get(module).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(module);
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(module, graph, &mut Vec::new(), &mut done))
}
