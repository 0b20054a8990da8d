//! The crate layering rule, written once: each crate of the workspace may depend only on the
//! crates listed for it here, which are all below it. Read from `cargo metadata`, so a new
//! dependency that reaches up (or a new crate nobody placed in a layer) fails this test.
//!
//! ```text
//!   strata (binary: CLI, config, roles, pop, clients)
//!     ├── strata-edge (serving data plane) ── strata-http, strata-kernel, strata-wire
//!     ├── strata-control (control plane) ──── strata-wire, strata-flow (and strata-http where it must)
//!     ├── strata-dns (nameserver) ─────────── strata-wire
//!     └── strata-client (strata fetch) ─────── strata-wire
//!   strata-http · strata-kernel (→ strata-common) · strata-wire · strata-flow (map solver)
//! ```
//!
//! Tools (xtask, bench, strata-tests) sit beside the layers: they drive the binary as a
//! process and may not link the layers in (the bench harness times the pure map solver).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Crate → the workspace crates it may depend on (in any dependency kind).
const MAY_DEPEND_ON: &[(&str, &[&str])] = &[
    // Bottom: shared with the eBPF programs.
    ("strata-common", &[]),
    ("strata-ebpf", &["strata-common"]),
    // Layer 1: no I/O of ours, kernel paths, what crosses a process boundary.
    ("strata-http", &[]),
    ("strata-flow", &[]),
    ("strata-kernel", &["strata-common"]),
    ("strata-wire", &[]),
    // Layer 2: the serving data plane and the control plane, side by side.
    (
        "strata-edge",
        &["strata-http", "strata-kernel", "strata-wire", "strata-common"],
    ),
    ("strata-control", &["strata-wire", "strata-http", "strata-flow"]),
    ("strata-dns", &["strata-wire"]),
    ("strata-live", &["strata-http", "strata-wire"]),
    ("strata-client", &["strata-wire"]),
    // Top: the binary.
    (
        "strata",
        &[
            "strata-http",
            "strata-kernel",
            "strata-wire",
            "strata-edge",
            "strata-control",
            "strata-live",
            "strata-dns",
            "strata-client",
            "strata-flow",
            "strata-common",
        ],
    ),
    // Tools beside the layers.
    ("strata-tests", &[]),
    // The harness times the map solver directly (a pure crate).
    ("bench", &["strata-tests", "strata-flow"]),
    ("xtask", &[]),
];

/// Each workspace crate and the workspace crates it depends on, from `cargo metadata`.
fn workspace_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root)
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let members: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect();
    packages
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or_default().to_string();
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["name"].as_str())
                .filter(|d| members.contains(*d))
                .map(String::from)
                .collect();
            (name, deps)
        })
        .collect()
}

/// Every dependency the rule does not allow, and every crate it does not place, as messages.
fn violations(graph: &BTreeMap<String, BTreeSet<String>>, rule: &[(&str, &[&str])]) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = rule.iter().copied().collect();
    let mut found = Vec::new();
    for (krate, deps) in graph {
        let Some(may) = allowed.get(krate.as_str()) else {
            found.push(format!(
                "{krate} is in no layer: add it to MAY_DEPEND_ON in tests/layering.rs"
            ));
            continue;
        };
        for dep in deps {
            if !may.contains(&dep.as_str()) {
                found.push(format!(
                    "{krate} depends on {dep}, which is not below it (allowed: {may:?})"
                ));
            }
        }
    }
    found
}

#[test]
fn no_crate_depends_on_a_crate_above_it() {
    let graph = workspace_graph();
    assert!(
        graph.contains_key("strata-edge") && graph.contains_key("strata-control"),
        "cargo metadata did not list the layer crates: {graph:?}"
    );
    let found = violations(&graph, MAY_DEPEND_ON);
    assert!(found.is_empty(), "layering broken:\n{}", found.join("\n"));
}

#[test]
fn the_rule_catches_an_upward_dependency_and_an_unplaced_crate() {
    let mut graph = workspace_graph();
    graph
        .get_mut("strata-kernel")
        .expect("strata-kernel")
        .insert("strata-edge".into());
    graph.insert("strata-new".into(), BTreeSet::new());
    let found = violations(&graph, MAY_DEPEND_ON);
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("strata-kernel depends on strata-edge")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|v| v.starts_with("strata-new is in no layer")),
        "{found:?}"
    );
}

/// A module of a crate: its path (`server::connection`; "" for the crate root) and its file.
struct Module {
    path: String,
    source: String,
}

/// Every module file of the crate whose sources are under `src`.
fn modules(src: &Path) -> Vec<Module> {
    let mut found = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("reading a source directory")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src").with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).expect("reading a source file");
            // Unit tests may reach anywhere in their crate.
            let source = text.split("#[cfg(test)]").next().unwrap_or_default().to_string();
            found.push(Module {
                path: parts.join("::"),
                source,
            });
        }
    }
    found
}

/// The module paths that follow `prefix` in `source` (`crate::a::b::Item` gives `a::b::Item`).
fn paths_after<'a>(source: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    source
        .match_indices(prefix)
        .filter(|(i, _)| {
            // Not the tail of a longer name (`super::super` counts from its first `super`).
            *i == 0 || !source.as_bytes()[i - 1].is_ascii_alphanumeric() && source.as_bytes()[i - 1] != b'_'
        })
        .map(|(i, _)| {
            source[i + prefix.len()..]
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or_default()
                .split("::")
                .filter(|s| !s.is_empty())
                .collect()
        })
        .collect()
}

/// Uses of `name::…` as a bare path (not `x::name::`, not `other_name::`).
fn paths_after_bare(source: &str, name: &str) -> Vec<usize> {
    let needle = format!("{name}::");
    source
        .match_indices(&needle)
        .map(|(i, _)| i)
        .filter(|i| {
            *i == 0
                || !matches!(source.as_bytes()[i - 1], b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b':')
        })
        .collect()
}

/// Module → the modules of the same crate it imports from (the deepest module each path names;
/// an item of a parent module counts as the parent).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(src);
    let known: BTreeSet<&str> = mods.iter().map(|m| m.path.as_str()).collect();
    let deepest = |base: Vec<&str>, rest: &[&str]| -> Option<String> {
        let mut full = base;
        full.extend_from_slice(rest);
        (0..=full.len())
            .rev()
            .map(|n| full[..n].join("::"))
            .find(|p| known.contains(p.as_str()))
    };
    let mut graph = BTreeMap::new();
    for m in &mods {
        let here: Vec<&str> = m.path.split("::").filter(|s| !s.is_empty()).collect();
        let parent: Vec<&str> = here.iter().take(here.len().saturating_sub(1)).copied().collect();
        let mut deps = BTreeSet::new();
        for rest in paths_after(&m.source, "crate::") {
            deps.extend(deepest(Vec::new(), &rest));
        }
        for rest in paths_after(&m.source, "super::") {
            // `super::super::x` climbs once more per `super`.
            let ups = rest.iter().take_while(|s| **s == "super").count();
            let base: Vec<&str> = parent
                .iter()
                .take(parent.len().saturating_sub(ups))
                .copied()
                .collect();
            deps.extend(deepest(base, &rest[ups..]));
        }
        // A parent that uses its child module by its bare name (`setup::n()`).
        for child in &mods {
            let Some(name) = child
                .path
                .strip_prefix(&m.path)
                .map(|r| r.trim_start_matches("::"))
            else {
                continue;
            };
            let is_child = !name.is_empty()
                && !name.contains("::")
                && (m.path.is_empty() || child.path.starts_with(&format!("{}::", m.path)));
            if is_child && !paths_after_bare(&m.source, name).is_empty() {
                deps.insert(child.path.clone());
            }
        }
        deps.remove(&m.path);
        graph.insert(m.path.clone(), deps);
    }
    graph
}

/// One circle of imports in `graph`, if there is one.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|s| s == next).unwrap_or(0);
                    let mut circle = stack[from..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node.as_str()) {
            if let Some(c) = visit(node, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn no_module_imports_in_a_circle_inside_a_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("userspace"))
        .expect("userspace/")
        .flatten()
    {
        let src = entry.path().join("src");
        if !src.is_dir() {
            continue;
        }
        let graph = module_graph(&src);
        checked += graph.len();
        if let Some(circle) = find_circle(&graph) {
            panic!(
                "{}: modules import in a circle: {}",
                src.display(),
                circle.join(" → ")
            );
        }
    }
    assert!(checked > 50, "found only {checked} modules under userspace/*/src");
}

#[test]
fn the_module_check_finds_a_circle_through_a_parent() {
    let dir = std::env::temp_dir().join(format!("strata-layering-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("server")).expect("temp dir");
    std::fs::write(dir.join("lib.rs"), "pub mod server;\npub mod metrics;\n").expect("write");
    std::fs::write(dir.join("metrics.rs"), "pub struct M;\n").expect("write");
    std::fs::write(
        dir.join("server/mod.rs"),
        "pub mod setup;\nuse crate::metrics::M;\npub fn cores() -> usize { setup::n() }\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("server/setup.rs"),
        "use super::cores;\npub fn n() -> usize { 1 }\n",
    )
    .expect("write");
    let graph = module_graph(&dir);
    let circle = find_circle(&graph);
    let _ = std::fs::remove_dir_all(&dir);
    let circle = circle.expect("the server ↔ server::setup circle");
    assert!(
        circle.contains(&"server".to_string()) && circle.contains(&"server::setup".to_string()),
        "{circle:?}"
    );
}
