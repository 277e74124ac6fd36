//! Branch name → environment slug.
//!
//! A slug is a DNS-1123 label that is deterministic and unique per branch name:
//! - a branch that already is a valid label within the length budget is used as is;
//! - anything else is lower-cased, every run of other characters becomes `-`, the result is cut to
//!   fit, and a hash of the *original* name is appended. `feature/login`, `Feature/Login`,
//!   `feature_login` and `feature.login` therefore get four different slugs.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Hex characters of the SHA-256 of the branch name appended when the name had to change.
pub const HASH_LEN: usize = 10;
/// Kubernetes' limit for a DNS-1123 label (namespaces, among others).
pub const LABEL_MAX: usize = 63;
/// Helm's limit for a release name.
pub const HELM_RELEASE_MAX: usize = 53;
/// The shortest slug budget we accept; below it the hash would be most of the name.
pub const MIN_BUDGET: usize = HASH_LEN + 4;

/// Namespaces no environment may ever be deployed into.
pub fn is_reserved_namespace(ns: &str) -> bool {
    matches!(
        ns,
        "default" | "flux-system" | "kube-system" | "kube-public" | "kube-node-lease"
    ) || ns.starts_with("kube-")
}

/// True when `s` is a DNS-1123 label: 1–63 of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= LABEL_MAX
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The longest slug that keeps `<prefix>-<slug>` within Helm's release-name limit (which also
/// keeps namespaces and object names within theirs).
pub fn budget_for_prefix(prefix: &str) -> usize {
    let used = if prefix.is_empty() {
        0
    } else {
        prefix.len() + 1
    };
    HELM_RELEASE_MAX.saturating_sub(used)
}

/// Compute the slug of `branch` in at most `budget` characters.
pub fn slugify(branch: &str, budget: usize) -> Result<String> {
    if branch.is_empty() {
        return Err(Error::input("the branch name is empty: pass --branch NAME"));
    }
    if budget < MIN_BUDGET {
        return Err(Error::config(format!(
            "the name prefix leaves only {budget} characters for the environment slug; \
             use a prefix of at most {} characters",
            HELM_RELEASE_MAX - MIN_BUDGET - 1
        )));
    }
    if is_dns_label(branch) && branch.len() <= budget {
        return Ok(branch.to_string());
    }
    let mut clean = String::with_capacity(branch.len());
    for c in branch.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            clean.push(c);
        } else if !clean.ends_with('-') {
            clean.push('-');
        }
    }
    let keep = budget - HASH_LEN - 1;
    clean.truncate(keep);
    let clean = clean.trim_matches('-');
    let hash = short_hash(branch);
    Ok(if clean.is_empty() {
        hash
    } else {
        format!("{clean}-{hash}")
    })
}

/// Check a slug given from outside (GitLab's `CI_ENVIRONMENT_SLUG`, a file name).
pub fn validate_slug(slug: &str, budget: usize) -> Result<()> {
    if !is_dns_label(slug) {
        return Err(Error::input(format!(
            "environment slug {slug:?} is not a DNS-1123 label (lower-case letters, digits and '-', \
             starting and ending with a letter or digit)"
        )));
    }
    if slug.len() > budget {
        return Err(Error::input(format!(
            "environment slug {slug:?} is {} characters long; with the configured prefix at most \
             {budget} fit Kubernetes' name limits",
            slug.len()
        )));
    }
    Ok(())
}

fn short_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(HASH_LEN);
    for byte in digest.iter() {
        out.push_str(&format!("{byte:02x}"));
        if out.len() >= HASH_LEN {
            break;
        }
    }
    out.truncate(HASH_LEN);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const B: usize = 49;

    #[test]
    fn valid_names_are_kept() {
        assert_eq!(slugify("feature-login", B).unwrap(), "feature-login");
        assert_eq!(slugify("main", B).unwrap(), "main");
        assert_eq!(slugify("123", B).unwrap(), "123");
    }

    #[test]
    fn look_alikes_never_collide() {
        let names = [
            "feature/login",
            "Feature/Login",
            "feature_login",
            "feature.login",
            "feature-login",
        ];
        let slugs: Vec<_> = names.iter().map(|n| slugify(n, B).unwrap()).collect();
        for (i, a) in slugs.iter().enumerate() {
            assert!(is_dns_label(a), "{a}");
            for b in &slugs[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert!(slugs[0].starts_with("feature-login-"));
    }

    #[test]
    fn hostile_names() {
        for name in [
            "../../etc/passwd",
            "a\"b'c",
            "#hash:colon",
            "ünïcödé/ブランチ",
            "日本語",
            "----",
            "-a-",
            &"x".repeat(200),
            &"Ab/".repeat(100),
        ] {
            let s = slugify(name, B).unwrap();
            assert!(is_dns_label(&s) && s.len() <= B, "{name:?} -> {s:?}");
        }
    }

    #[test]
    fn long_names_are_cut_with_hash_and_stay_distinct() {
        let a = format!("{}a", "x".repeat(199));
        let b = format!("{}b", "x".repeat(199));
        let (sa, sb) = (slugify(&a, B).unwrap(), slugify(&b, B).unwrap());
        assert_eq!(sa.len(), B);
        assert_ne!(sa, sb);
    }

    #[test]
    fn empty_and_tiny_budget_are_errors() {
        assert!(slugify("", B).is_err());
        assert!(slugify("x", 5).is_err());
    }

    #[test]
    fn reserved_namespaces() {
        for ns in ["default", "kube-system", "kube-anything", "flux-system"] {
            assert!(is_reserved_namespace(ns));
        }
        assert!(!is_reserved_namespace("app-default"));
    }

    #[test]
    fn many_generated_names_are_unique() {
        let mut seen: HashMap<String, String> = HashMap::new();
        let seps = ["/", "_", ".", "-", "//", "#", ":"];
        for i in 0..20_000u32 {
            let name = format!("Feature{}{}{}x", i % 7, seps[(i as usize) % seps.len()], i);
            let s = slugify(&name, B).unwrap();
            if let Some(prev) = seen.insert(s.clone(), name.clone()) {
                panic!("{prev:?} and {name:?} both map to {s}");
            }
        }
    }

    proptest! {
        #[test]
        fn any_name_gives_a_valid_deterministic_slug(name in "\\PC{1,220}", budget in MIN_BUDGET..=53usize) {
            let s = slugify(&name, budget).unwrap();
            prop_assert!(is_dns_label(&s));
            prop_assert!(s.len() <= budget);
            prop_assert_eq!(s, slugify(&name, budget).unwrap());
        }

        #[test]
        fn distinct_names_distinct_slugs(a in "[a-zA-Z0-9/._-]{1,80}", b in "[a-zA-Z0-9/._-]{1,80}") {
            prop_assume!(a != b);
            prop_assert_ne!(slugify(&a, B).unwrap(), slugify(&b, B).unwrap());
        }
    }
}
