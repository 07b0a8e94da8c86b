//! The house rules that keep Careline easy to read, checked on every run:
//! - each top-level module of `src/` sits on a floor and imports only from
//!   floors below its own, so there is no import loop and no way for the
//!   records or the storage to reach up into the rules or the edge
//!   (README, "Layout", has the picture);
//! - no source file is longer than [`MAX_LINES`] without a reason written
//!   at its top.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Which module lives on which floor; a module may import only modules on
/// lower floors. A new top-level module must be given a floor here.
const FLOORS: &[(&str, u8)] = &[
    // The bottom floor imports nothing of the crate.
    ("model", 0),
    ("adapter", 0),
    ("connect_failure", 0),
    ("auth", 0),
    ("protocol", 0),
    // Ports and their adapters.
    ("store", 1),
    ("bus", 1),
    ("blobs", 1),
    ("egress", 1),
    ("bot", 2),
    ("mail", 2),
    ("metrics", 2),
    ("config", 2),
    // The rules.
    ("domain", 3),
    // The edge.
    ("web", 4),
];

/// Longest a source file may be without saying why at its top.
const MAX_LINES: usize = 600;

/// What a longer file writes in its first lines, followed by its reason.
const LENGTH_REASON: &str = "Longer than 600 lines:";

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The top-level module a file of `src/` belongs to (`src/domain/x.rs` →
/// `domain`, `src/config.rs` → `config`); `None` for `main.rs`, `lib.rs`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "main" | "lib")).then(|| name.to_string())
}

/// Every top-level module named by `crate::name` or `crate::{name, …}`,
/// in code and in doc links alike (a link is a dependency of the reader).
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `careline::…` in a test, or `other_crate::…`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let head = item.trim().split("::").next().unwrap_or("");
                if !head.is_empty() {
                    names.insert(head.to_string());
                }
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.insert(rest[..end].to_string());
        }
    }
    names
}

#[test]
fn each_module_imports_only_from_floors_below_its_own() {
    let src = root().join("src");
    let floors: BTreeMap<&str, u8> = FLOORS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut unplaced = BTreeSet::new();
    // (from, to) -> the files that make the edge
    let mut wrong: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = module_of(&src, file) else {
            continue;
        };
        let Some(&from_floor) = floors.get(from.as_str()) else {
            unplaced.insert(from);
            continue;
        };
        let text = fs::read_to_string(file).expect("source file reads");
        for to in named_modules(&text) {
            if to == from {
                continue;
            }
            let Some(&to_floor) = floors.get(to.as_str()) else {
                continue; // a function or type of lib.rs, not a module
            };
            if to_floor >= from_floor {
                let rel = file.strip_prefix(root()).unwrap_or(file);
                wrong
                    .entry((from.clone(), to))
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "give these top-level modules a floor in tests/architecture.rs (FLOORS) \
         and in the README's picture: {unplaced:?}"
    );
    let report: Vec<String> = wrong
        .iter()
        .map(|((from, to), files)| {
            format!(
                "{from} (floor {}) imports {to} (floor {}) in {}",
                floors[from.as_str()],
                floors[to.as_str()],
                files.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    assert!(
        report.is_empty(),
        "a module may import only from floors below its own (README, Layout); \
         move the shared part down a floor instead:\n{}",
        report.join("\n")
    );
}

#[test]
fn long_source_files_say_why_at_their_top() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "load-tests/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 50, "the source tree was found");
    let mut unexplained = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("source file reads");
        let lines = text.lines().count();
        let top: String = text.lines().take(15).collect::<Vec<_>>().join("\n");
        if lines > MAX_LINES && !top.contains(LENGTH_REASON) {
            let rel = file.strip_prefix(root()).unwrap_or(file);
            unexplained.push(format!("{} ({lines} lines)", rel.display()));
        }
    }
    assert!(
        unexplained.is_empty(),
        "split these files by job, or write `{LENGTH_REASON} <the reason>` in \
         their first lines:\n{}",
        unexplained.join("\n")
    );
}

#[test]
fn the_import_scanner_sees_paths_groups_and_links() {
    let text = "use crate::store::Store;\nuse crate::{bus, model::User};\n\
                /// See [`crate::domain::tickets`].\nlet x = careline::web::x;";
    let names: Vec<String> = named_modules(text).into_iter().collect();
    assert_eq!(names, ["bus", "domain", "model", "store"]);
}
