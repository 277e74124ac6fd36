//! Rendering one environment's sync file from a Tera template, and checking what came out.
//!
//! Template variables (documented for users in the README):
//! `slug`, `name`, `namespace`, `flux_namespace`, `branch`, `sha` (empty when following the branch),
//! `ref_kind` (`commit`/`branch`), `source_url`, `path`, `interval`, `secret_ref`,
//! `service_account`, `chart`, `image_tag`, `id`, `author`, `title`, `environment`,
//! `preview_url`, `preview_host`, `deployed_at`, `ttl`, `sleeping` (true while the environment
//! sleeps: scale its workloads to zero), `labels` and `annotations` (maps), `cluster` (the
//! cluster the preview is placed in; empty without `clusters`) and `quota` (with `quota`
//! configured: `hard`, a list of `[field, quantity]`, and the `default_*` container values).
//! The `yaml` filter writes any string as a YAML scalar that reads back exactly.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use serde_yaml_ng::Value;
use tera::{Context, Tera};

use crate::error::{Error, Result};
use crate::model::{annotations_for, format_time, keys, EnvSpec};
use crate::slug::{is_dns_label, is_reserved_namespace};
use crate::yaml_quote::quote;

pub const BUILTIN_KUSTOMIZATION: &str = include_str!("../../templates/kustomization.yaml.tera");
pub const BUILTIN_HELM: &str = include_str!("../../templates/helm.yaml.tera");

/// Everything about rendering that does not depend on the branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderSettings {
    /// Prefix of object names and namespaces: `<prefix>-<slug>`.
    pub prefix: String,
    /// Namespace of the Flux objects themselves.
    pub flux_namespace: String,
    /// Path of the overlay inside the source repository.
    pub path: String,
    /// Path inside an OCI artifact (the configured `path`, else its root).
    pub artifact_path: String,
    pub interval: String,
    pub secret_ref: Option<String>,
    pub service_account: Option<String>,
    /// Tera template of the preview URL, e.g. `https://{{ slug }}.preview.example.com`.
    pub preview_url: Option<String>,
    /// Chart path for the Helm template.
    pub chart: String,
    /// The configured time to live (already capped by `max_ttl`): with it, every sync file
    /// records when the environment expires.
    pub ttl: Option<std::time::Duration>,
    /// The ResourceQuota and LimitRange of each preview's namespace.
    pub quota: Option<crate::clusters::quota::Quota>,
}

impl Default for RenderSettings {
    fn default() -> Self {
        RenderSettings {
            prefix: "app".into(),
            flux_namespace: "flux-system".into(),
            path: "./overlays/ephemeral".into(),
            artifact_path: "./".into(),
            interval: "1m".into(),
            secret_ref: None,
            service_account: None,
            preview_url: None,
            chart: "./charts/app".into(),
            ttl: None,
            quota: None,
        }
    }
}

impl RenderSettings {
    pub fn object_name(&self, slug: &str) -> String {
        if self.prefix.is_empty() {
            slug.to_string()
        } else {
            format!("{}-{slug}", self.prefix)
        }
    }
}

/// The result of rendering one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub content: String,
    pub name: String,
    pub namespace: String,
    pub preview_url: Option<String>,
}

/// A loaded template, ready to render environments.
pub struct Renderer {
    tera: Tera,
    template: String,
    settings: RenderSettings,
}

const MAIN: &str = "sync";
const URL: &str = "preview_url";

impl Renderer {
    /// `template_name` names the template in error messages (a built-in name or a file path).
    pub fn new(template_name: &str, source: &str, settings: RenderSettings) -> Result<Self> {
        let mut tera = Tera::default();
        tera.autoescape_on(vec![]);
        tera.register_filter("yaml", yaml_filter);
        // Templates come from the GitOps repository: whoever edits it must not read the bot's
        // environment (tokens) or anything else outside the documented variables.
        for f in SEALED_FUNCTIONS {
            tera.register_function(f, sealed(f));
        }
        // ... and it must not be able to take the service down (recursion, unbounded output).
        tera.register_function("range", crate::template_guard::capped_range);
        add_guarded(&mut tera, MAIN, source)
            .map_err(|e| Error::config(format!("template {template_name}: {e}")))?;
        if let Some(url) = &settings.preview_url {
            add_guarded(&mut tera, URL, url)
                .map_err(|e| Error::config(format!("preview_url template: {e}")))?;
        }
        for (what, value) in [
            ("prefix", &settings.prefix),
            ("flux_namespace", &settings.flux_namespace),
        ] {
            if !value.is_empty() && !is_dns_label(value) {
                return Err(Error::config(format!(
                    "{what} {value:?} must be a DNS-1123 label"
                )));
            }
        }
        Ok(Renderer {
            tera,
            template: template_name.to_string(),
            settings,
        })
    }

    /// A built-in template by name: `kustomization` or `helm`.
    pub fn builtin(name: &str, settings: RenderSettings) -> Result<Self> {
        let source = builtin_source(name).ok_or_else(|| {
            Error::config(format!(
                "unknown built-in template {name:?}: use kustomization or helm, or a file path"
            ))
        })?;
        Self::new(name, source, settings)
    }

    pub fn settings(&self) -> &RenderSettings {
        &self.settings
    }

    /// Render the sync file of `spec`, recording `deployed_at`, and check the result.
    pub fn render(&self, spec: &EnvSpec, deployed_at: SystemTime) -> Result<Rendered> {
        let s = &self.settings;
        let name = s.object_name(&spec.slug);
        let namespace = name.clone();
        if is_reserved_namespace(&namespace) {
            return Err(Error::input(format!(
                "environment {:?} would land in the reserved namespace {namespace}",
                spec.slug
            )));
        }
        let mut ctx = Context::new();
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        ctx.insert("slug", &spec.slug);
        ctx.insert("name", &name);
        ctx.insert("namespace", &namespace);
        ctx.insert("flux_namespace", &s.flux_namespace);
        ctx.insert("branch", &spec.branch);
        ctx.insert("sha", &opt(&spec.sha));
        ctx.insert(
            "ref_kind",
            if spec.sha.is_some() {
                "commit"
            } else {
                "branch"
            },
        );
        ctx.insert("source_url", &spec.source_url);
        ctx.insert(
            "path",
            if spec.artifact.is_some() {
                &s.artifact_path
            } else {
                &s.path
            },
        );
        ctx.insert("interval", &s.interval);
        ctx.insert("secret_ref", &opt(&s.secret_ref));
        ctx.insert("service_account", &opt(&s.service_account));
        ctx.insert("chart", &s.chart);
        ctx.insert("image_tag", spec.sha.as_deref().unwrap_or(&spec.slug));
        ctx.insert("id", &opt(&spec.id));
        ctx.insert("author", &opt(&spec.author));
        ctx.insert("title", &opt(&spec.title));
        ctx.insert("environment", &opt(&spec.environment));
        ctx.insert("deployed_at", &format_time(deployed_at));
        insert_artifact(&mut ctx, spec);
        ctx.insert(
            "ttl",
            &spec
                .ttl
                .map(|t| humantime::format_duration(t).to_string())
                .unwrap_or_default(),
        );
        let mut labels = BTreeMap::new();
        labels.insert("app.kubernetes.io/managed-by", "flux-ephemeral");
        ctx.insert("labels", &labels);
        ctx.insert(
            "annotations",
            &annotations_for(spec, deployed_at, spec.ttl.or(s.ttl)),
        );
        ctx.insert("cluster", &opt(&spec.cluster));
        ctx.insert("quota", &s.quota);
        // Asleep: the built-in templates patch every Deployment and StatefulSet to 0 replicas.
        ctx.insert("sleeping", &spec.lifecycle.sleeping.is_some());

        let preview_url = match &s.preview_url {
            Some(_) => Some(
                crate::template_guard::render(&self.tera, URL, &ctx, MAX_URL)
                    .map_err(|e| Error::config(format!("preview_url template: {e}")))?,
            ),
            None => spec.preview_url.clone(),
        };
        let url = preview_url.clone().unwrap_or_default();
        ctx.insert("preview_host", &host_of(&url));
        ctx.insert("preview_url", &url);

        let mut content = crate::template_guard::render(&self.tera, MAIN, &ctx, MAX_SYNC_FILE)
            .map_err(|e| Error::config(format!("template {}: {e}", self.template)))?;
        if !content.ends_with('\n') {
            content.push('\n');
        }
        validate(&self.template, &content, spec)?;
        Ok(Rendered {
            content,
            name,
            namespace,
            preview_url,
        })
    }
}

/// Where the manifests come from: `source_kind` and the artifact's variables.
fn insert_artifact(ctx: &mut Context, spec: &EnvSpec) {
    let artifact = spec.artifact.as_ref();
    ctx.insert(
        "source_kind",
        if artifact.is_some() { "oci" } else { "git" },
    );
    ctx.insert(
        "artifact_url",
        &artifact.map(|a| a.url.clone()).unwrap_or_default(),
    );
    ctx.insert(
        "artifact_digest",
        &artifact.map(|a| a.digest.clone()).unwrap_or_default(),
    );
    ctx.insert("artifact_insecure", &artifact.is_some_and(|a| a.insecure));
}

pub fn builtin_source(name: &str) -> Option<&'static str> {
    match name {
        "kustomization" => Some(BUILTIN_KUSTOMIZATION),
        "helm" => Some(BUILTIN_HELM),
        _ => None,
    }
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or("");
    host.split(':').next().unwrap_or("").to_string()
}

fn yaml_filter(value: &tera::Value, _: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let text = match value {
        tera::Value::String(s) => s.clone(),
        tera::Value::Null => String::new(),
        other => other.to_string(),
    };
    Ok(tera::Value::String(quote(&text)))
}

/// Tera's functions that reach outside the template's variables (environment, randomness, clock).
const SEALED_FUNCTIONS: [&str; 3] = ["get_env", "get_random", "now"];

fn sealed(name: &'static str) -> impl tera::Function {
    move |_: &HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
        Err(tera::Error::msg(format!(
            "{name}() is not available in flux-ephemeral templates: they see only the documented variables (slug, branch, sha, ...)"
        )))
    }
}

/// The longest preview URL a `preview_url` template may render.
const MAX_URL: usize = 2048;
/// The largest sync file a template may render (Kubernetes objects are at most 1.5 MB).
const MAX_SYNC_FILE: usize = 1024 * 1024;

/// Parse `source` as template `name` after checking it against the limits of
/// [`crate::template_guard`].
fn add_guarded(tera: &mut Tera, name: &str, source: &str) -> std::result::Result<(), String> {
    crate::template_guard::check_source(source)?;
    tera.add_raw_template(name, source)
        .map_err(|e| crate::template_guard::tera_message(&e))?;
    // Checked before it is ever rendered (a refused template leaves with the renderer).
    let parsed = tera
        .get_template(name)
        .map_err(|e| crate::template_guard::tera_message(&e))?;
    crate::template_guard::check_ast(&parsed.ast)
}

/// Parse every document of a rendered file and check what Kubernetes and flux-ephemeral need.
pub fn validate(template: &str, content: &str, spec: &EnvSpec) -> Result<()> {
    let bad = |what: String| {
        Error::config(format!(
            "template {template} rendered an invalid sync file: {what}"
        ))
    };
    let mut marked = false;
    let mut docs = 0;
    for (i, de) in serde_yaml_ng::Deserializer::from_str(content).enumerate() {
        let doc = <Value as serde::Deserialize>::deserialize(de)
            .map_err(|e| bad(format!("document {}: not valid YAML: {e}", i + 1)))?;
        if doc.is_null() {
            continue;
        }
        docs += 1;
        let n = i + 1;
        let field = |path: &[&str]| -> Option<&Value> {
            let mut v = &doc;
            for p in path {
                v = v.get(*p)?;
            }
            Some(v)
        };
        let text = |path: &[&str]| field(path).and_then(Value::as_str);
        let kind = text(&["kind"]).ok_or_else(|| bad(format!("document {n} has no kind")))?;
        text(&["apiVersion"])
            .ok_or_else(|| bad(format!("document {n} ({kind}) has no apiVersion")))?;
        let name = text(&["metadata", "name"])
            .ok_or_else(|| bad(format!("document {n} ({kind}) has no metadata.name")))?;
        if !is_dns_subdomain(name) {
            return Err(bad(format!(
                "{kind} name {name:?} is not a valid Kubernetes name"
            )));
        }
        for path in [
            &["metadata", "namespace"][..],
            &["spec", "targetNamespace"][..],
        ] {
            if let Some(ns) = text(path) {
                if !is_dns_label(ns) {
                    return Err(bad(format!(
                        "{kind} {name}: {} {ns:?} is not a DNS-1123 label",
                        path.join(".")
                    )));
                }
                if path[0] == "spec" && is_reserved_namespace(ns) {
                    return Err(bad(format!(
                        "{kind} {name} targets the reserved namespace {ns}"
                    )));
                }
            }
        }
        if kind == "Namespace" && is_reserved_namespace(name) {
            return Err(bad(format!("it creates the reserved namespace {name}")));
        }
        if kind == "HelmRelease" {
            let release = text(&["spec", "releaseName"]).unwrap_or(name);
            if release.len() > crate::slug::HELM_RELEASE_MAX {
                return Err(bad(format!(
                    "HelmRelease release name {release:?} is longer than 53 characters"
                )));
            }
        }
        if let Some(ann) = field(&["metadata", "annotations"]).and_then(Value::as_mapping) {
            let get = |k: &str| ann.get(k).and_then(Value::as_str);
            if get(keys::MANAGED_BY) == Some(keys::MANAGED_BY_VALUE) {
                if get(keys::SLUG) != Some(spec.slug.as_str())
                    || get(keys::BRANCH) != Some(spec.branch.as_str())
                {
                    return Err(bad(format!(
                        "{kind} {name}: the {} and {} annotations do not read back as the slug and branch; \
                         write values with the `yaml` filter",
                        keys::SLUG,
                        keys::BRANCH
                    )));
                }
                marked = true;
            }
        }
    }
    if docs == 0 {
        return Err(bad("it contains no document".into()));
    }
    if !marked {
        return Err(bad(format!(
            "no object carries the flux-ephemeral annotations ({} and the others); add \
             `{{% for key, value in annotations %}}{{{{ key }}}}: {{{{ value | yaml }}}}{{% endfor %}}` \
             under metadata.annotations",
            keys::MANAGED_BY
        )));
    }
    Ok(())
}

/// DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
