//! Templates come from the GitOps repository and its configuration: data, not code that may take
//! the service down. Before a template is accepted it is parsed and checked, and it renders
//! within limits:
//! - no `include`, `extends`, `import` or `macro` (the ways a template reaches another, or itself,
//!   and recurses until the stack runs out);
//! - at most [`MAX_SETS`] `set`s, never `set_global` (a string doubled in a loop or in a chain
//!   of `set`s grows past any memory);
//! - `for` loops only over a variable or `range(...)`, nested at most [`MAX_LOOP_DEPTH`] deep,
//!   and `range` yields at most [`MAX_RANGE`] items;
//! - filter arguments are literals (`replace(from="a", to=s)` squares a string at every use);
//! - brackets nested at most [`MAX_NESTING`] deep (the parser recurses on them);
//! - the output is cut off at a size limit (an error, not a truncated file).

use std::collections::HashMap;
use std::io::Write;

use tera::ast::{Expr, ExprVal, Node};

pub const MAX_SETS: usize = 8;
pub const MAX_LOOP_DEPTH: usize = 2;
pub const MAX_RANGE: i64 = 1000;
pub const MAX_NESTING: usize = 32;
/// The largest template source accepted.
pub const MAX_SOURCE: usize = 256 * 1024;

/// Why a template is refused, in words for whoever edits it.
pub fn check_source(source: &str) -> Result<(), String> {
    if source.len() > MAX_SOURCE {
        return Err(format!(
            "is {} bytes; templates are at most {MAX_SOURCE}",
            source.len()
        ));
    }
    let mut depth = 0usize;
    for c in source.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!("nests brackets more than {MAX_NESTING} deep"));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Check a parsed template against the limits above.
pub fn check_ast(nodes: &[Node]) -> Result<(), String> {
    let mut sets = 0;
    walk(nodes, 0, &mut sets)
}

fn walk(nodes: &[Node], loops: usize, sets: &mut usize) -> Result<(), String> {
    for node in nodes {
        match node {
            Node::Extends(..) => {
                return Err("uses extends, which flux-ephemeral templates may not".into())
            }
            Node::Include(..) => {
                return Err("uses include, which flux-ephemeral templates may not".into())
            }
            Node::ImportMacro(..) => {
                return Err("uses import, which flux-ephemeral templates may not".into())
            }
            Node::MacroDefinition(..) => {
                return Err("defines a macro, which flux-ephemeral templates may not".into())
            }
            Node::Block(..) | Node::Super => {
                return Err("uses block, which flux-ephemeral templates may not".into())
            }
            Node::VariableBlock(_, e) => check_expr(e)?,
            Node::Set(_, set) => {
                check_expr(&set.value)?;
                if set.global {
                    return Err("uses set_global, which flux-ephemeral templates may not".into());
                }
                *sets += 1;
                if *sets > MAX_SETS {
                    return Err(format!("has more than {MAX_SETS} set tags"));
                }
            }
            Node::Forloop(_, f, _) => {
                if loops + 1 > MAX_LOOP_DEPTH {
                    return Err(format!("nests for loops more than {MAX_LOOP_DEPTH} deep"));
                }
                match &f.container.val {
                    ExprVal::Ident(_) => {}
                    ExprVal::FunctionCall(call) if call.name == "range" => {}
                    _ => {
                        return Err(
                            "loops over something other than a variable or range(...)".into()
                        )
                    }
                }
                walk(&f.body, loops + 1, sets)?;
                if let Some(body) = &f.empty_body {
                    walk(body, loops + 1, sets)?;
                }
            }
            Node::If(cond, _) => {
                for (_, e, body) in &cond.conditions {
                    check_expr(e)?;
                    walk(body, loops, sets)?;
                }
                if let Some((_, body)) = &cond.otherwise {
                    walk(body, loops, sets)?;
                }
            }
            Node::FilterSection(_, f, _) => {
                if f.filter.args.values().any(|a| !is_literal(a)) {
                    return Err(format!(
                        "passes a variable to the filter {}: filter arguments must be literals",
                        f.filter.name
                    ));
                }
                walk(&f.body, loops, sets)?
            }
            _ => {}
        }
    }
    Ok(())
}

/// Filter (and function) arguments must be literals; checked through every sub-expression.
fn check_expr(e: &Expr) -> Result<(), String> {
    for f in &e.filters {
        for arg in f.args.values() {
            if !is_literal(arg) {
                return Err(format!(
                    "passes a variable to the filter {}: filter arguments must be literals",
                    f.name
                ));
            }
        }
    }
    match &e.val {
        ExprVal::Math(m) => {
            check_expr(&m.lhs)?;
            check_expr(&m.rhs)
        }
        ExprVal::Logic(l) => {
            check_expr(&l.lhs)?;
            check_expr(&l.rhs)
        }
        ExprVal::In(i) => {
            check_expr(&i.lhs)?;
            check_expr(&i.rhs)
        }
        ExprVal::Array(items) => items.iter().try_for_each(check_expr),
        ExprVal::FunctionCall(call) => call.args.values().try_for_each(check_expr),
        ExprVal::MacroCall(_) => {
            Err("calls a macro, which flux-ephemeral templates may not".into())
        }
        _ => Ok(()),
    }
}

fn is_literal(e: &Expr) -> bool {
    e.filters.is_empty()
        && matches!(
            e.val,
            ExprVal::String(_) | ExprVal::Int(_) | ExprVal::Float(_) | ExprVal::Bool(_)
        )
}

/// Tera's `range`, with at most [`MAX_RANGE`] items.
pub fn capped_range(args: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let int = |k: &str, default: Option<i64>| -> tera::Result<i64> {
        match args.get(k) {
            Some(v) => v
                .as_i64()
                .ok_or_else(|| tera::Error::msg(format!("range: {k} must be an integer"))),
            None => default.ok_or_else(|| tera::Error::msg(format!("range: {k} is required"))),
        }
    };
    let start = int("start", Some(0))?;
    let end = int("end", None)?;
    let step = int("step_by", Some(1))?;
    if step <= 0 {
        return Err(tera::Error::msg("range: step_by must be positive"));
    }
    let count = end.saturating_sub(start).max(0) / step;
    if count > MAX_RANGE {
        return Err(tera::Error::msg(format!(
            "range: at most {MAX_RANGE} items in flux-ephemeral templates"
        )));
    }
    let items: Vec<i64> = (0..count).map(|i| start + i * step).collect();
    Ok(tera::to_value(items).unwrap_or(tera::Value::Null))
}

/// A Tera error with its causes, in one line of words.
pub fn tera_message(e: &tera::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// A writer that refuses to grow past `max` bytes.
pub struct Capped {
    pub out: Vec<u8>,
    pub max: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.max {
            return Err(std::io::Error::other(format!(
                "the output is larger than {} bytes",
                self.max
            )));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Render `name` with at most `max` bytes of output, a panic inside the engine turned into an
/// error (a template must never take the process down).
pub fn render(
    tera: &tera::Tera,
    name: &str,
    ctx: &tera::Context,
    max: usize,
) -> Result<String, String> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut w = Capped {
            out: Vec::new(),
            max,
        };
        tera.render_to(name, ctx, &mut w)
            .map(|()| w.out)
            .map_err(|e| tera_message(&e))
    }))
    .map_err(|_| "the template engine failed on it".to_string())??;
    String::from_utf8(result).map_err(|_| "it rendered invalid UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(src: &str) -> Result<(), String> {
        check_source(src)?;
        let t = tera::Template::new("t", None, src).map_err(|e| e.to_string())?;
        check_ast(&t.ast)
    }

    #[test]
    fn what_is_refused() {
        for (src, why) in [
            (r#"{% include "preview_url" %}"#, "include"),
            (r#"{% extends "x" %}"#, "extends"),
            (r#"{% import "x" as m %}"#, "import"),
            ("{% macro f() %}{{ self::f() }}{% endmacro %}", "macro"),
            ("{% for i in range(end=3) %}{% set_global s = s ~ s %}{% endfor %}", "set_global"),
            (
                "{% for a in range(end=3) %}{% for b in range(end=3) %}{% for c in range(end=3) %}{% endfor %}{% endfor %}{% endfor %}",
                "nests for loops",
            ),
            ("{% for a in [1,2] | concat(with=3) %}{% endfor %}", "loops over"),
            (&"(".repeat(100), "nests brackets"),
            (
                "{% set a = 'xx' %}{% set b = a | replace(from='x', to=a) %}{{ b }}",
                "filter arguments must be literals",
            ),
            (
                "{% filter replace(from='x', to=slug) %}{% filter replace(from='x', to=slug) %}x{% endfilter %}{% endfilter %}",
                "filter arguments must be literals",
            ),
            (&"{% set a = 1 %}".repeat(9), "set tags"),
        ] {
            let e = verdict(src).unwrap_err();
            assert!(e.contains(why), "{src}: {e}");
        }
        for ok in [
            "https://{{ slug }}.preview.example.com",
            "{% if branch %}{{ branch | lower }}{% else %}x{% endif %}",
            "{% for k, v in labels %}{{ k }}={{ v }}{% endfor %}",
            "{% set h = slug ~ '.example' %}{{ h }}",
            include_str!("../../templates/kustomization.yaml.tera"),
            include_str!("../../templates/helm.yaml.tera"),
        ] {
            verdict(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Any sequence of Tera constructs, valid or not: accepted or refused, never a panic or
        /// an abort, and what renders stays within the output cap.
        #[test]
        fn random_templates_are_refused_or_bounded(pieces in proptest::collection::vec(0usize..PIECES.len(), 0..40)) {
            let src: String = pieces.iter().map(|i| PIECES[*i]).collect();
            let mut tera = tera::Tera::default();
            tera.register_function("range", capped_range);
            let accepted = check_source(&src)
                .and_then(|()| tera::Template::new("t", None, &src).map_err(|e| e.to_string()))
                .and_then(|t| check_ast(&t.ast));
            if accepted.is_ok() && tera.add_raw_template("t", &src).is_ok() {
                let mut ctx = tera::Context::new();
                ctx.insert("slug", "feature-x");
                ctx.insert("labels", &std::collections::BTreeMap::from([("a", "b")]));
                if let Ok(out) = render(&tera, "t", &ctx, 1 << 16) {
                    proptest::prop_assert!(out.len() <= 1 << 16);
                }
            }
        }
    }

    const PIECES: &[&str] = &[
        "{{ slug }}",
        "x",
        "{% for i in range(end=1000) %}",
        "{% for k, v in labels %}",
        "{% endfor %}",
        "{% if slug %}",
        "{% else %}",
        "{% endif %}",
        "{% set s = slug ~ slug %}",
        "{% set s = s ~ s %}",
        "{% set_global s = s ~ s %}",
        "{{ s }}",
        "{{ s | replace(from='a', to=s) }}",
        "{{ slug | upper | replace(from='X', to='yy') }}",
        "{% include 't' %}",
        "{% macro m() %}{{ self::m() }}{% endmacro %}",
        "{{ self::m() }}",
        "{% raw %}{{{% endraw %}",
        "((((",
        "{{ i * 1000 }}",
        "{% filter upper %}",
        "{% endfilter %}",
    ];

    #[test]
    fn range_and_output_are_capped() {
        let mut tera = tera::Tera::default();
        tera.register_function("range", capped_range);
        tera.add_raw_template("big", "{% for i in range(end=100000) %}x{% endfor %}")
            .unwrap();
        tera.add_raw_template("ok", "{% for i in range(end=1000) %}xxxxxxxxxx{% endfor %}")
            .unwrap();
        let ctx = tera::Context::new();
        assert!(render(&tera, "big", &ctx, 1 << 20)
            .unwrap_err()
            .contains("at most 1000"));
        assert!(render(&tera, "ok", &ctx, 100)
            .unwrap_err()
            .contains("larger than 100"));
        assert_eq!(render(&tera, "ok", &ctx, 1 << 20).unwrap().len(), 10_000);
    }
}
