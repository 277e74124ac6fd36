//! The house rules: the layering stays a layering (no import cycle among the top-level modules
//! of `src/`, every arrow pointing down), and the parts stay small.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let edges = edges();
    // Every module that can reach itself again is in a cycle.
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((m, trail)) = stack.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if next == start {
                    panic!("import cycle: {} -> {start}", trail.join(" -> "));
                }
                if seen.insert(next.clone()) {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
}

/// The top-level modules of `src/` and the `crate::` modules each reaches (tests aside).
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let top = |p: &Path| {
        let rel = p.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        first.trim_end_matches(".rs").to_string()
    };
    let modules: BTreeSet<String> = files.iter().map(|p| top(p)).collect();
    let path = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let from = top(f);
        if from == "main" || from == "lib" || from.ends_with("_tests") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for c in path.captures_iter(line) {
                let to = c[1].to_string();
                if to != from && modules.contains(&to) {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
        edges.entry(from).or_default();
    }
    edges
}

/// The layers point one way: `cli` → `server` → `service` → the edges that do I/O (`forge`,
/// `git`, `flux`, `oci`, `reconcile`, `local_default`, `output`) → the pure core (`src/core/`,
/// and anything else). The core reaches no I/O module, no edge reaches `service`, `server` or `cli`, `service`
/// never reaches `server` or `cli`, and `server` never reaches `cli`.
#[test]
fn the_layers_point_one_way() {
    let io = [
        "forge",
        "git",
        "flux",
        "oci",
        "reconcile",
        "local_default",
        "output",
    ];
    let layer = |m: &str| match m {
        "cli" => 4,
        "server" => 3,
        "service" => 2,
        m if io.contains(&m) => 1,
        _ => 0,
    };
    let mut wrong = Vec::new();
    for (from, tos) in edges() {
        for to in tos {
            // The pure core reaches nothing above it; every other layer only downwards (edges
            // may use one another: the Git transaction uses the forge's types, say).
            let bad = layer(&to) > layer(&from) || (layer(&from) == 0 && layer(&to) > 0);
            if bad {
                wrong.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "arrows running back up: {wrong:?}");
    assert!(edges().len() > 10, "the walk found too few modules");
    assert!(
        edges().contains_key("core"),
        "the core is a module of its own"
    );
}

/// Small parts: no file of `src/` over 600 lines and no function over 100 (tests aside: a
/// file's `#[cfg(test)]` module and the `*_tests.rs` files).
#[test]
fn no_function_over_100_lines_and_no_file_over_600() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let fn_start =
        regex::Regex::new(r"^\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?fn\s+(\w+)").unwrap();
    let mut too_long = Vec::new();
    for f in files
        .iter()
        .filter(|f| !f.to_string_lossy().ends_with("_tests.rs"))
    {
        let text = std::fs::read_to_string(f).unwrap();
        let code = text.split("\n#[cfg(test)]").next().unwrap();
        let lines: Vec<&str> = code.lines().collect();
        let name = f.strip_prefix(&src).unwrap().display().to_string();
        if lines.len() > 600 {
            too_long.push(format!("{name}: {} lines", lines.len()));
        }
        let mut i = 0;
        while i < lines.len() {
            let Some(m) = fn_start.captures(lines[i]) else {
                i += 1;
                continue;
            };
            // From the signature to the brace that closes the body (a declaration has none).
            let (mut depth, mut started, mut j) = (0i32, false, i);
            while j < lines.len() {
                for c in lines[j].chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            started = true;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                if (started && depth == 0) || (!started && lines[j].trim_end().ends_with(';')) {
                    break;
                }
                j += 1;
            }
            if started && j + 1 - i > 100 {
                too_long.push(format!("{name}: fn {} is {} lines", &m[5], j + 1 - i));
            }
            i = j + 1;
        }
    }
    assert!(too_long.is_empty(), "split these: {too_long:#?}");
}
