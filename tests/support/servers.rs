//! Real Git servers on 127.0.0.1 for the tests: git daemon, smart HTTP (git http-backend behind
//! lighttpd, with basic auth) and SSH (sshd with a deploy key). Each one is stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{skip, write};

pub struct Server {
    child: Child,
    pub port: u16,
    /// The URL of the repository `gitops.git` served from the base directory.
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16, child: &mut Child, what: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not listen on 127.0.0.1:{port}");
}

fn git_exec_path() -> PathBuf {
    let out = Command::new("git").arg("--exec-path").output().unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn find(cands: &[&str]) -> Option<PathBuf> {
    cands.iter().map(PathBuf::from).find(|p| p.exists())
}

/// `git daemon --enable=receive-pack` serving `base` (which holds gitops.git).
pub fn git_daemon(base: &Path) -> Option<Server> {
    if !git_exec_path().join("git-daemon").exists() {
        skip("git daemon is not installed (apt-get install git-daemon-run or git)");
        return None;
    }
    let port = free_port();
    let mut child = Command::new("git")
        .args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            "--listen=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(port, &mut child, "git daemon");
    Some(Server {
        child,
        port,
        url: format!("git://127.0.0.1:{port}/gitops.git"),
    })
}

/// lighttpd running git http-backend at /git/, requiring basic auth `user`:`password`.
pub fn http_backend(base: &Path, work: &Path, user: &str, password: &str) -> Option<Server> {
    let Some(lighttpd) = find(&["/usr/sbin/lighttpd", "/usr/bin/lighttpd"]) else {
        skip("lighttpd is not installed (apt-get install lighttpd)");
        return None;
    };
    let backend = git_exec_path().join("git-http-backend");
    let port = free_port();
    std::fs::create_dir_all(work).unwrap();
    write(&work.join("users"), &format!("{user}:{password}\n"));
    let conf = work.join("lighttpd.conf");
    write(
        &conf,
        &format!(
            r#"server.document-root = "{base}"
server.port = {port}
server.bind = "127.0.0.1"
server.errorlog = "{work}/error.log"
server.modules = ("mod_alias", "mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv")
alias.url = ( "/git" => "{backend}" )
$HTTP["url"] =~ "^/git" {{
  cgi.assign = ( "" => "" )
  setenv.add-environment = ( "GIT_PROJECT_ROOT" => "{base}", "GIT_HTTP_EXPORT_ALL" => "" )
}}
auth.backend = "plain"
auth.backend.plain.userfile = "{work}/users"
auth.require = ( "/git" => ( "method" => "basic", "realm" => "git", "require" => "valid-user" ) )
"#,
            base = base.display(),
            work = work.display(),
            backend = backend.display(),
        ),
    );
    let mut child = Command::new(lighttpd)
        .arg("-D")
        .arg("-f")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(port, &mut child, "lighttpd");
    Some(Server {
        child,
        port,
        url: format!("http://127.0.0.1:{port}/git/gitops.git"),
    })
}

/// An SSH server and the files a client needs.
pub struct Ssh {
    pub server: Server,
    /// The private deploy key.
    pub key: PathBuf,
    /// A known_hosts line for this server.
    pub known_hosts_line: String,
}

/// sshd on 127.0.0.1 accepting `key` (generated here) for the current user.
pub fn sshd(base: &Path, work: &Path) -> Option<Ssh> {
    let Some(sshd) = find(&["/usr/sbin/sshd"]) else {
        skip("sshd is not installed (apt-get install openssh-server)");
        return None;
    };
    std::fs::create_dir_all(work).unwrap();
    let keygen = |path: &Path| {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen failed");
    };
    let host_key = work.join("host_ed25519");
    let key = work.join("deploy_key");
    keygen(&host_key);
    keygen(&key);
    std::fs::copy(work.join("deploy_key.pub"), work.join("authorized_keys")).unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = free_port();
    let conf = work.join("sshd_config");
    write(
        &conf,
        &format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {w}/sshd.pid\n\
             AuthorizedKeysFile {w}/authorized_keys\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
             StrictModes no\nUsePAM no\n",
            hk = host_key.display(),
            w = work.display()
        ),
    );
    let mut child = Command::new(sshd)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(port, &mut child, "sshd");
    let host_pub = std::fs::read_to_string(work.join("host_ed25519.pub")).unwrap();
    let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    Some(Ssh {
        server: Server {
            child,
            port,
            url: format!("ssh://{user}@127.0.0.1:{port}{}/gitops.git", base.display()),
        },
        key,
        known_hosts_line: format!("[127.0.0.1]:{port} {} {}\n", host_pub[0], host_pub[1]),
    })
}

/// Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 over plain HTTP, filesystem storage
/// under `work`, htpasswd (bcrypt) auth for `user`:`password`, deletion enabled. `url` is
/// `oci://127.0.0.1:PORT`.
pub fn docker_registry(work: &Path, user: &str, password: &str) -> Option<Server> {
    let Some(bin) = find(&["/usr/bin/docker-registry"]) else {
        skip("docker-registry is not installed (apt-get install docker-registry)");
        return None;
    };
    if find(&["/usr/bin/htpasswd"]).is_none() {
        skip("htpasswd is not installed (apt-get install apache2-utils)");
        return None;
    }
    std::fs::create_dir_all(work.join("storage")).unwrap();
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .unwrap();
    assert!(out.status.success(), "htpasswd failed");
    write(
        &work.join("htpasswd"),
        &String::from_utf8(out.stdout).unwrap(),
    );
    let port = free_port();
    let conf = work.join("config.yml");
    write(
        &conf,
        &format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {w}/storage\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: flux-ephemeral-tests\n    path: {w}/htpasswd\n",
            w = work.display()
        ),
    );
    let mut child = Command::new(bin)
        .arg("serve")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(port, &mut child, "docker-registry");
    Some(Server {
        child,
        port,
        url: format!("oci://127.0.0.1:{port}"),
    })
}
