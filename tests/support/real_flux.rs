//! A real Flux for the end-to-end tests: the stack `scripts/real-flux.sh start DIR` runs (a real
//! kube-apiserver, kube-controller-manager, kube-scheduler, kwok and Flux's controllers), found
//! through `FLUX_EPHEMERAL_REAL_FLUX=DIR`, which `scripts/test.sh` sets. Each test gets its own
//! world: a GitOps repository and an application repository served over smart HTTP (Flux accepts
//! only http(s) and ssh URLs), and its own Flux namespace, bootstrapped as users do it: a
//! GitRepository for the GitOps repository plus `overlays/ephemeral-instances/sync.yaml` applied
//! with kubectl.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::servers::{http_backend, Server};
use super::{copy_dir, git, skip, to_run, write, Run, TestEnv, ROOT};

pub const GIT_USER: &str = "flux";
pub const GIT_PASSWORD: &str = "s3cret-for-flux";
pub const RECEIVER_TOKEN: &str = "receiver-token-0123456789";

/// The running stack, as `scripts/real-flux.sh start` described it.
pub struct RealFlux {
    pub kubeconfig: PathBuf,
    pub receiver_base: String,
    pub kubectl: PathBuf,
    pub vars: BTreeMap<String, String>,
}

impl RealFlux {
    /// The stack named by FLUX_EPHEMERAL_REAL_FLUX, or a skip (a failure in CI) saying how to
    /// start it.
    pub fn connect() -> Option<RealFlux> {
        let Some(dir) = std::env::var_os("FLUX_EPHEMERAL_REAL_FLUX").filter(|d| !d.is_empty())
        else {
            skip(
                "the real Flux stack is not running: ./scripts/test.sh starts it, or run \
                 `scripts/real-flux.sh start DIR` and set FLUX_EPHEMERAL_REAL_FLUX=DIR",
            );
            return None;
        };
        let env = Path::new(&dir).join("env");
        let text = std::fs::read_to_string(&env)
            .unwrap_or_else(|e| panic!("FLUX_EPHEMERAL_REAL_FLUX: cannot read {env:?}: {e}"));
        let vars: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(RealFlux {
            kubeconfig: PathBuf::from(&vars["KUBECONFIG"]),
            receiver_base: vars["FLUX_RECEIVER_BASE"].clone(),
            kubectl: PathBuf::from(&vars["KUBECTL"]),
            vars,
        })
    }

    /// The kubeconfig context of cluster `i` (1-based) of `start DIR --clusters N`; `None`
    /// (a skip, a failure in CI) when the stack has fewer clusters.
    pub fn context(&self, i: usize) -> Option<String> {
        let found = self.vars.get(&format!("KUBE_CONTEXT_{i}")).cloned();
        if found.is_none() {
            skip(&format!(
                "the real Flux stack has no cluster {i}: start it with `scripts/real-flux.sh start DIR --clusters 2` (./scripts/test.sh does)"
            ));
        }
        found
    }

    /// kubectl against the stack, with `stdin` piped in.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Run {
        self.kubectl_in(None, args, stdin)
    }

    /// kubectl against one cluster of the stack (`None`: the current context).
    pub fn kubectl_in(&self, context: Option<&str>, args: &[&str], stdin: Option<&str>) -> Run {
        let mut c = Command::new(&self.kubectl);
        if let Some(ctx) = context {
            c.args(["--context", ctx]);
        }
        c.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        to_run(child.wait_with_output().unwrap())
    }

    #[track_caller]
    pub fn apply(&self, yaml: &str) {
        self.apply_in(None, yaml)
    }

    #[track_caller]
    pub fn apply_in(&self, context: Option<&str>, yaml: &str) {
        let r = self.kubectl_in(context, &["apply", "-f", "-"], Some(yaml));
        assert_eq!(r.code, 0, "kubectl apply failed: {r:#?}\n{yaml}");
    }

    /// The object as JSON, or `None` when it does not exist.
    pub fn get(&self, namespace: Option<&str>, kind: &str, name: &str) -> Option<Value> {
        self.get_in(None, namespace, kind, name)
    }

    /// [`Self::get`] in one cluster.
    pub fn get_in(
        &self,
        context: Option<&str>,
        namespace: Option<&str>,
        kind: &str,
        name: &str,
    ) -> Option<Value> {
        let mut args = vec!["get", kind, name, "-o", "json", "--ignore-not-found"];
        if let Some(ns) = namespace {
            args.extend(["-n", ns]);
        }
        let r = self.kubectl_in(context, &args, None);
        assert_eq!(r.code, 0, "kubectl get failed: {r:#?}");
        (!r.stdout.trim().is_empty()).then(|| serde_json::from_str(&r.stdout).unwrap())
    }

    /// Poll `probe` every 250 ms until it gives a value; panics after `limit` with `what`.
    #[track_caller]
    pub fn eventually<T>(
        &self,
        what: &str,
        limit: Duration,
        mut probe: impl FnMut() -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = probe() {
                return v;
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The environment variables the binary needs to reach this cluster.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("KUBECONFIG", self.kubeconfig.display().to_string())]
    }
}

/// One test's world on the real Flux.
pub struct FluxWorld {
    pub env: TestEnv,
    pub flux: RealFlux,
    pub http: Server,
    /// This test's Flux namespace (the `flux-system` of its GitOps repository).
    pub ns: String,
    /// The application (object names and preview namespaces are `<app>-<slug>`).
    pub app: String,
    pub gitops_url: String,
    pub app_url: String,
    app_work: PathBuf,
    /// The kubeconfig contexts of `Bootstrap::clusters`, in order.
    pub contexts: Vec<String>,
}

/// How a world is bootstrapped.
pub struct Bootstrap<'a> {
    /// The GitOps GitRepository's interval: how soon Flux sees a push nobody announced.
    pub interval: &'a str,
    /// Extra lines of `.flux-ephemeral.yaml`.
    pub config: &'a str,
    /// Keep `notifications.yaml` in the instances directory with this Provider address.
    pub provider_address: Option<&'a str>,
    /// The Secret the preview's source uses (`git-credentials`: the Git server's user).
    pub secret_ref: &'a str,
    /// Applications of a fleet (`applications:`), instead of the world's one application.
    pub applications: &'a [&'a str],
    /// Clusters (`clusters:`), each a cluster of the stack in order: name and `max_previews`.
    /// Each gets `clusters/<name>/previews`, watched by its own Flux.
    pub clusters: &'a [(&'a str, Option<usize>)],
}

impl Default for Bootstrap<'_> {
    fn default() -> Self {
        Bootstrap {
            interval: "1m",
            config: "",
            provider_address: None,
            secret_ref: "git-credentials",
            applications: &[],
            clusters: &[],
        }
    }
}

impl FluxWorld {
    /// `serve` on this world's GitOps repository with the cluster's kubeconfig and the page
    /// open to the token `page-token`.
    pub fn serve_page(&self) -> crate::support::serving::Serving {
        crate::support::serving::Serving::start(
            &self.env,
            &self.gitops_url,
            &[
                ("KUBECONFIG", self.flux.kubeconfig.display().to_string()),
                ("GIT_USERNAME", GIT_USER.into()),
                ("GIT_TOKEN", GIT_PASSWORD.into()),
                ("FLUX_EPHEMERAL_UI_TOKEN", "page-token".into()),
            ],
        )
    }

    /// A world named `name`: its application is `<name>-<4 hex>` and its Flux namespace
    /// `e2e-<application>`, new for every run (the last run's may still be terminating).
    pub fn new(name: &str, boot: Bootstrap) -> Option<FluxWorld> {
        let flux = RealFlux::connect()?;
        let env = TestEnv::new();
        let srv = env.path("srv");
        let http = http_backend(&srv, &env.path("lighttpd"), GIT_USER, GIT_PASSWORD)?;
        let base = format!("http://127.0.0.1:{}/git", http.port);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let app = format!("{name}-{:04x}", (nanos ^ std::process::id()) & 0xffff);
        let ns = format!("e2e-{app}");
        let mut contexts = Vec::new();
        for i in 1..=boot.clusters.len() {
            contexts.push(flux.context(i)?);
        }
        let world = FluxWorld {
            contexts,
            gitops_url: format!("{base}/gitops.git"),
            app_url: format!("{base}/app.git"),
            app_work: env.path("app-work"),
            env,
            flux,
            http,
            ns,
            app,
        };
        world.seed_app();
        if boot.clusters.is_empty() {
            world.configure(&boot);
            world.bootstrap(&boot);
        } else {
            world.configure_clusters(&boot);
            for (i, (name, _)) in boot.clusters.iter().enumerate() {
                world.bootstrap_in(
                    &boot,
                    Some(&world.contexts[i]),
                    &format!("clusters/{name}/previews/sync.yaml"),
                );
            }
        }
        Some(world)
    }

    /// The application repository: the example overlay on `main`.
    fn seed_app(&self) {
        let work = &self.app_work;
        std::fs::create_dir_all(work).unwrap();
        copy_dir(
            &Path::new(ROOT).join("overlays/ephemeral"),
            &work.join("overlays/ephemeral"),
        );
        git(work, &["init", "-q", "-b", "main"]);
        git(work, &["add", "-A"]);
        git(work, &["commit", "-q", "-m", "app"]);
        let bare = self.env.path("srv/app.git");
        git(
            self.env.dir.path(),
            &[
                "clone",
                "-q",
                "--bare",
                work.to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
        );
        git(work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    }

    /// Commit `files` (path → content, or `None` to delete) on `branch` of the application
    /// repository (created from main when new) and push; the new sha.
    pub fn app_commit(
        &self,
        branch: &str,
        files: &[(&str, Option<&str>)],
        message: &str,
    ) -> String {
        let work = &self.app_work;
        let exists = Command::new("git")
            .args([
                "rev-parse",
                "--verify",
                "-q",
                &format!("refs/heads/{branch}"),
            ])
            .current_dir(work)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        if exists {
            git(work, &["checkout", "-q", branch]);
        } else {
            git(work, &["checkout", "-q", "-b", branch, "main"]);
        }
        for (path, content) in files {
            match content {
                Some(c) => write(&work.join(path), c),
                None => std::fs::remove_file(work.join(path)).unwrap(),
            }
        }
        git(work, &["add", "-A"]);
        git(work, &["commit", "-q", "--allow-empty", "-m", message]);
        git(work, &["push", "-q", "origin", branch]);
        git(work, &["rev-parse", "HEAD"]).trim().to_string()
    }

    /// `.flux-ephemeral.yaml` and the instances directory adapted to this namespace, as a user
    /// whose Flux lives elsewhere than flux-system would do.
    fn configure(&self, boot: &Bootstrap) {
        let apps = if boot.applications.is_empty() {
            format!("app: {}\n", self.app)
        } else {
            let list: String = boot
                .applications
                .iter()
                .map(|a| {
                    format!(
                        "  - name: {}\n    github_repository: org/{a}\n",
                        self.application(a)
                    )
                })
                .collect();
            format!("applications:\n{list}")
        };
        let config = format!(
            "source_url: {app_url}\nflux_namespace: {ns}\nsecret_ref: {secret}\n\
             preview_url: \"https://{{{{ slug }}}}.preview.example.com\"\n{apps}{extra}",
            app_url = self.app_url,
            ns = self.ns,
            secret = boot.secret_ref,
            extra = boot.config,
        );
        let adapt = |file: &str| {
            let dir = if file == "sync.yaml" {
                "overlays/ephemeral-instances"
            } else {
                "examples/flux"
            };
            std::fs::read_to_string(Path::new(ROOT).join(dir).join(file))
                .unwrap()
                .replace("namespace: flux-system", &format!("namespace: {}", self.ns))
        };
        let notifications = boot.provider_address.map(|address| {
            adapt("notifications.yaml").replace("https://github.com/example-org/app", address)
        });
        self.env.commit_as_other(
            &[
                (".flux-ephemeral.yaml", Some(config.as_str())),
                (
                    "overlays/ephemeral-instances/sync.yaml",
                    Some(&adapt("sync.yaml")),
                ),
                (
                    "overlays/ephemeral-instances/receiver.yaml",
                    Some(&adapt("receiver.yaml")),
                ),
            ]
            .into_iter()
            // The Provider and Alert, adapted, where Flux applies them (the instances directory
            // users copy holds none: examples/flux/ has them).
            .chain(
                notifications
                    .as_deref()
                    .map(|n| ("overlays/ephemeral-instances/notifications.yaml", Some(n))),
            )
            .collect::<Vec<_>>(),
            "bootstrap for the e2e test",
        );
    }

    /// `.flux-ephemeral.yaml` with `clusters:`, and each cluster's instances directory with its
    /// own instances Kustomization and Receiver.
    fn configure_clusters(&self, boot: &Bootstrap) {
        let mut config = format!(
            "source_url: {app_url}\nflux_namespace: {ns}\nsecret_ref: {secret}\napp: {app}\n\
             preview_url: \"https://{{{{ slug }}}}.preview.example.com\"\n\
             receiver_name: flux-ephemeral\nreceiver_namespace: {ns}\nreceiver_type: generic-hmac\n{extra}clusters:\n",
            app_url = self.app_url,
            ns = self.ns,
            secret = boot.secret_ref,
            app = self.app,
            extra = boot.config,
        );
        let mut files: Vec<(String, String)> = Vec::new();
        let read = |dir: &str, file: &str| {
            std::fs::read_to_string(Path::new(ROOT).join(dir).join(file))
                .unwrap()
                .replace("namespace: flux-system", &format!("namespace: {}", self.ns))
        };
        for (i, (name, max)) in boot.clusters.iter().enumerate() {
            let base = &self.flux.vars[&format!("FLUX_RECEIVER_BASE_{}", i + 1)];
            config.push_str(&format!(
                "  - name: {name}\n    instances_dir: clusters/{name}/previews\n    kubeconfig_context: {ctx}\n    receiver_url: {base}\n",
                ctx = self.contexts[i],
            ));
            if let Some(m) = max {
                config.push_str(&format!("    max_previews: {m}\n"));
            }
            let dir = format!("clusters/{name}/previews");
            files.push((
                format!("{dir}/sync.yaml"),
                read("overlays/ephemeral-instances", "sync.yaml")
                    .replace("./overlays/ephemeral-instances", &format!("./{dir}")),
            ));
            files.push((
                format!("{dir}/receiver.yaml"),
                read("examples/flux", "receiver.yaml"),
            ));
        }
        let mut all: Vec<(&str, Option<&str>)> = vec![(".flux-ephemeral.yaml", Some(&config))];
        all.extend(files.iter().map(|(f, c)| (f.as_str(), Some(c.as_str()))));
        self.env
            .commit_as_other(&all, "bootstrap the clusters for the e2e test");
    }

    /// The namespace, the Git credentials and the Receiver's token, the GitOps GitRepository, and
    /// `sync.yaml` applied with kubectl; returns when the instances Kustomization is Ready.
    fn bootstrap(&self, boot: &Bootstrap) {
        self.bootstrap_in(boot, None, "overlays/ephemeral-instances/sync.yaml")
    }

    /// [`Self::bootstrap`] in one cluster, with the instances Kustomization of `sync`.
    fn bootstrap_in(&self, boot: &Bootstrap, context: Option<&str>, sync: &str) {
        let ns = &self.ns;
        self.flux.apply_in(context, &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata:\n  name: git-credentials\n  namespace: {ns}\n\
             stringData:\n  username: {GIT_USER}\n  password: {GIT_PASSWORD}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata:\n  name: flux-ephemeral-receiver\n  namespace: {ns}\n\
             stringData:\n  token: {RECEIVER_TOKEN}\n---\n\
             apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: {ns}\n\
             spec:\n  interval: {interval}\n  url: {url}\n  ref:\n    branch: main\n  secretRef:\n    name: git-credentials\n",
            interval = boot.interval,
            url = self.gitops_url,
        ));
        let sync = self.env.file(sync).unwrap();
        self.flux.apply_in(context, &sync);
        self.ready_in(
            context,
            "kustomization",
            "ephemeral-instances",
            Duration::from_secs(120),
        );
    }

    /// Wait until `kind/name` in this namespace is Ready=True; its JSON.
    #[track_caller]
    pub fn ready(&self, kind: &str, name: &str, limit: Duration) -> Value {
        self.ready_in(None, kind, name, limit)
    }

    /// [`Self::ready`] in one cluster.
    #[track_caller]
    pub fn ready_in(
        &self,
        context: Option<&str>,
        kind: &str,
        name: &str,
        limit: Duration,
    ) -> Value {
        self.flux.eventually(
            &format!("{kind}/{name} in {} Ready ({context:?})", self.ns),
            limit,
            || {
                let obj = self.flux.get_in(context, Some(&self.ns), kind, name)?;
                is_ready(&obj).then_some(obj)
            },
        )
    }

    /// The binary with this world's repository and cluster, and `--output json`.
    pub fn run(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
        self.run_as(true, args, extra_env)
    }

    /// The binary with this world's repository but no cluster credentials, as a CI job that can
    /// only read the forge.
    pub fn run_without_cluster(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
        self.run_as(false, args, extra_env)
    }

    fn run_as(&self, cluster: bool, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
        let mut c = self.env.command();
        c.args(args)
            .args(["--repo", &self.gitops_url, "--output", "json"])
            .env("GIT_USERNAME", GIT_USER)
            .env("GIT_TOKEN", GIT_PASSWORD);
        if cluster {
            for (k, v) in self.flux.env() {
                c.env(k, v);
            }
        }
        for (k, v) in extra_env {
            c.env(k, v);
        }
        to_run(c.output().unwrap())
    }

    /// The flags that make the binary notify this world's Receiver.
    pub fn notify_flags(&self) -> Vec<String> {
        vec![
            "--receiver-url".into(),
            self.flux.receiver_base.clone(),
            "--receiver-name".into(),
            "flux-ephemeral".into(),
            "--receiver-namespace".into(),
            self.ns.clone(),
            "--receiver-type".into(),
            "generic-hmac".into(),
        ]
    }

    /// The name of fleet application `a` in this world (`<a>-<the world's 4 hex>`).
    pub fn application(&self, a: &str) -> String {
        format!("{a}-{}", &self.app[self.app.len() - 4..])
    }

    /// The binary with `args` and this world's Receiver notified after the push; it must
    /// succeed; its JSON.
    #[track_caller]
    pub fn notified(&self, args: &[&str]) -> Value {
        let flags = self.notify_flags();
        let mut all = args.to_vec();
        all.extend(flags.iter().map(String::as_str));
        self.run(&all, &[("FLUX_RECEIVER_TOKEN", RECEIVER_TOKEN)])
            .ok()
            .json()
    }

    /// Object names and the preview's namespace for `branch`.
    pub fn name_of(&self, branch: &str) -> String {
        format!("{}-{}", self.app, super::slug_of(branch))
    }
}

impl Drop for FluxWorld {
    fn drop(&mut self) {
        // Leave the shared cluster as it was: the instances Kustomization prunes what it made.
        if !std::thread::panicking() {
            let contexts: Vec<Option<&str>> = match self.contexts.is_empty() {
                true => vec![None],
                false => self.contexts.iter().map(|c| Some(c.as_str())).collect(),
            };
            for context in contexts {
                let _ = self.flux.kubectl_in(
                    context,
                    &[
                        "delete",
                        "namespace",
                        &self.ns,
                        "--wait=false",
                        "--ignore-not-found",
                    ],
                    None,
                );
            }
        }
    }
}

/// Ready=True for the object's current generation.
pub fn is_ready(obj: &Value) -> bool {
    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c["type"] == "Ready"
                    && c["status"] == "True"
                    && (generation.is_none() || c["observedGeneration"].as_i64() == generation)
            })
        })
}

/// The Ready condition's message.
pub fn ready_message(obj: &Value) -> String {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or("")
        .to_string()
}
