//! The crate layering rule, written once: each crate of the workspace may depend only on the
//! crates listed for it here, which are all below it. Read from `cargo metadata`, so a new
//! dependency that reaches up (or a new crate nobody placed in a layer) fails this test.
//!
//! ```text
//!   strata (binary: CLI, config, roles, pop, clients)
//!     ├── strata-edge (serving data plane) ── strata-http, strata-kernel, strata-wire
//!     └── strata-control (control plane) ──── strata-wire (and strata-http where it must)
//!   strata-http · strata-kernel (→ strata-common) · strata-wire
//! ```
//!
//! Tools (xtask, bench, strata-tests) sit beside the layers: they drive the binary as a
//! process and may not link the layers in.

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
    ("strata-kernel", &["strata-common"]),
    ("strata-wire", &[]),
    // Layer 2: the serving data plane and the control plane, side by side.
    (
        "strata-edge",
        &["strata-http", "strata-kernel", "strata-wire", "strata-common"],
    ),
    ("strata-control", &["strata-wire", "strata-http"]),
    // Top: the binary.
    (
        "strata",
        &[
            "strata-http",
            "strata-kernel",
            "strata-wire",
            "strata-edge",
            "strata-control",
            "strata-common",
        ],
    ),
    // Tools beside the layers.
    ("strata-tests", &[]),
    ("bench", &["strata-tests"]),
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
