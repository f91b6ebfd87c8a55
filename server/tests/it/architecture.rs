//! The layout's rules, checked on the source (docs/ARCHITECTURE.md, "The rules"): a change
//! that ties the engine to an edge, or two edges together, fails here instead of creeping
//! back in unnoticed.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// Every `.rs` file under `dir`, with its text minus comment lines and test modules (what
/// a test imports does not shape the layout).
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                if name.ends_with("tests.rs") || name == "testing.rs" {
                    continue;
                }
                let text = fs::read_to_string(&path).unwrap();
                let code: String = text
                    .split("#[cfg(test)]\nmod tests")
                    .next()
                    .unwrap()
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .collect::<Vec<_>>()
                    .join("\n");
                out.push((path, code));
            }
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules a file's code names (`crate::x`, or `x` inside `use crate::{..}`).
fn modules_used(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::b, c, d::{e, f}}`: the names at depth 0.
            let mut depth = 0;
            let mut name = String::new();
            let mut at_start = true;
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if at_start && !name.is_empty() {
                            used.insert(std::mem::take(&mut name));
                        }
                        at_start = true;
                        name.clear();
                    }
                    c if depth == 0 && at_start && (c.is_alphanumeric() || c == '_') => {
                        name.push(c)
                    }
                    _ if depth == 0 && at_start && !name.is_empty() => {
                        used.insert(std::mem::take(&mut name));
                        at_start = false;
                    }
                    _ => {}
                }
            }
            if at_start && !name.is_empty() {
                used.insert(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    used
}

/// The top-level module a file belongs to.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn the_engine_stands_under_every_edge() {
    for (path, code) in sources(&src().join("engine")) {
        let used = modules_used(&code);
        for edge in [
            "live", "http", "pages", "app", "state", "services", "session",
        ] {
            assert!(
                !used.contains(edge),
                "{} imports crate::{edge}: the engine must not know the edges",
                path.display()
            );
        }
        assert!(
            !code.contains("axum::"),
            "{} uses axum: the engine speaks no HTTP",
            path.display()
        );
        if !path.components().any(|c| c.as_os_str() == "pg") {
            assert!(
                !code.contains("sqlx"),
                "{} uses sqlx: only engine/pg/ speaks to Postgres",
                path.display()
            );
        }
    }
}

#[test]
fn only_the_assembly_reaches_into_the_app() {
    for (path, code) in sources(&src()) {
        let module = module_of(&path);
        if ["main", "cli", "lib", "app"].contains(&module.as_str()) {
            continue;
        }
        assert!(
            !modules_used(&code).contains("app"),
            "{} imports crate::app, which only assembles",
            path.display()
        );
    }
}

#[test]
fn edges_do_not_talk_to_each_other() {
    let edges = ["http", "pages", "live"];
    for (path, code) in sources(&src()) {
        let module = module_of(&path);
        let used = modules_used(&code);
        if edges.contains(&module.as_str()) {
            for other in edges.iter().filter(|e| **e != module) {
                assert!(
                    !used.contains(*other),
                    "{} ({module}) imports crate::{other}: edges share services, not each other",
                    path.display()
                );
            }
        }
        // Below the edges, nothing imports one.
        if [
            "services", "state", "error", "session", "limits", "store", "engine",
        ]
        .contains(&module.as_str())
        {
            for edge in edges.iter().chain(&["app"]) {
                assert!(
                    !used.contains(*edge),
                    "{} ({module}) imports the edge crate::{edge}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_module_graph_has_no_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, code) in sources(&src()) {
        let module = module_of(&path);
        let deps = graph.entry(module.clone()).or_default();
        for used in modules_used(&code) {
            if used != module && used != "self" && used != "super" {
                deps.insert(used);
            }
        }
    }
    let names: Vec<String> = graph.keys().cloned().collect();
    for start in &names {
        // Any path from `start` back to itself is a cycle.
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((node, trail)) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if next == start {
                    panic!("import cycle: {} -> {start}", trail.join(" -> "));
                }
                if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
}

#[test]
fn the_checker_sees_imports() {
    let used = modules_used("use crate::{a::b, c, d::{e, f}, g};\nlet x = crate::h::i();");
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        ["a", "c", "d", "g", "h"]
    );
}
