//! ARCHITECTURE.md's table of which module may use which is the rule; this
//! test holds the source to it. Every `crate::x` path written in a module
//! must name a module its row allows, every module under `src/` must have a
//! row, and the table itself must have no cycle. So the document stays true:
//! a new dependency changes the table (and is seen in review) or fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const TABLE_HEADING: &str = "## Which module may use which";

/// The table's rows: module → the modules it may use.
fn rules() -> BTreeMap<String, BTreeSet<String>> {
    let doc = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md is readable");
    let section = doc
        .split_once(TABLE_HEADING)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has a `{TABLE_HEADING}` section"))
        .1;
    let mut rules = BTreeMap::new();
    for line in section.lines().skip_while(|l| !l.starts_with('|')) {
        let Some(row) = line.strip_prefix('|') else { break };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let module = cells[0].trim_matches('`');
        if cells.len() < 2 || module.is_empty() || module.starts_with('-') || module == "module" {
            continue;
        }
        let may_use = backticked(cells[1]);
        rules.insert(module.to_owned(), may_use);
    }
    assert!(!rules.is_empty(), "the table under `{TABLE_HEADING}` has rows");
    rules
}

/// The `names` written in backticks in a table cell.
fn backticked(cell: &str) -> BTreeSet<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The library's top-level modules and the files each is made of.
fn modules() -> BTreeMap<String, Vec<PathBuf>> {
    let src = root().join("src");
    let mut modules = BTreeMap::new();
    for entry in fs::read_dir(&src).expect("src/ is readable") {
        let path = entry.expect("src/ entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("UTF-8 name")
            .to_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let files = modules.entry(name).or_insert_with(Vec::new);
        if path.is_dir() {
            collect_rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    modules
}

fn collect_rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("directory is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect_rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The top-level modules a file's code names through `crate::`, with the
/// first line that does. Comments are skipped: a doc link is not a use.
fn crate_paths(file: &Path) -> BTreeMap<String, String> {
    let text = fs::read_to_string(file).expect("source file is readable");
    let mut found = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let names: Vec<&str> = match after.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or_default().split(',').collect(),
                None => vec![after],
            };
            for name in names {
                let name: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    let place = format!("{}:{}: {}", file.display(), number + 1, line.trim());
                    found.entry(name).or_insert(place);
                }
            }
            rest = after;
        }
    }
    found
}

#[test]
fn every_module_uses_only_what_the_architecture_table_allows() {
    let rules = rules();
    let modules = modules();
    let mut broken = Vec::new();
    for (module, files) in &modules {
        let Some(allowed) = rules.get(module) else {
            broken.push(format!("src/{module} has no row in ARCHITECTURE.md's table"));
            continue;
        };
        for file in files {
            for (used, place) in crate_paths(file) {
                if used != *module && modules.contains_key(&used) && !allowed.contains(&used) {
                    broken.push(format!("`{module}` may not use `{used}`: {place}"));
                }
            }
        }
    }
    for module in rules.keys() {
        if !modules.contains_key(module) {
            broken.push(format!(
                "ARCHITECTURE.md's table names `{module}`, which is not in src/"
            ));
        }
    }
    assert!(broken.is_empty(), "\n{}\n", broken.join("\n"));
}

#[test]
fn the_architecture_table_has_no_cycle() {
    let rules = rules();
    // Depth-first search; `path` is the chain being walked.
    fn visit<'a>(
        module: &'a str,
        rules: &'a BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<&'a str>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(start) = path.iter().position(|m| *m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module);
            return Some(cycle);
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for used in rules.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(used, rules, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in rules.keys() {
        if let Some(cycle) = visit(module, &rules, &mut done, &mut Vec::new()) {
            panic!("the table has a cycle: {}", cycle.join(" → "));
        }
    }
}
