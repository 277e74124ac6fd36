//! Per-preview limits: `quota` resolved into what the templates render as a ResourceQuota and a
//! LimitRange in the preview's namespace, so one preview cannot take a cluster.

use serde::Serialize;

use crate::clusters::config::QuotaConfig;
use crate::error::{Error, Result};

/// The quota of every preview of an application, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quota {
    /// `spec.hard` of the ResourceQuota: `requests.cpu`, `limits.memory`, `pods`, …
    pub hard: Vec<(String, String)>,
    /// The LimitRange's container defaults.
    pub default_request_cpu: String,
    pub default_request_memory: String,
    pub default_limit_cpu: String,
    pub default_limit_memory: String,
}

/// A Kubernetes quantity: `500m`, `2`, `1.5`, `512Mi`, `4Gi`, `1e3`.
fn is_quantity(s: &str) -> bool {
    let re = regex::Regex::new(
        r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+)?$",
    );
    s.len() <= 40 && re.is_ok_and(|re| re.is_match(s))
}

impl Quota {
    /// Check `c`; `None` when it sets nothing.
    pub fn resolve(c: &QuotaConfig) -> Result<Option<Quota>> {
        let check = |key: &str, v: &Option<String>, default: &str| -> Result<String> {
            let v = v.clone().unwrap_or_else(|| default.to_string());
            if is_quantity(&v) {
                Ok(v)
            } else {
                Err(Error::config(format!(
                    "quota {key} {v:?} is not a Kubernetes quantity like 500m, 2, 512Mi or 4Gi"
                )))
            }
        };
        let mut hard = Vec::new();
        for (key, field, v) in [
            ("requests_cpu", "requests.cpu", &c.requests_cpu),
            ("requests_memory", "requests.memory", &c.requests_memory),
            ("limits_cpu", "limits.cpu", &c.limits_cpu),
            ("limits_memory", "limits.memory", &c.limits_memory),
        ] {
            if v.is_some() {
                hard.push((field.to_string(), check(key, v, "")?));
            }
        }
        match c.pods {
            Some(0) => {
                return Err(Error::config(
                    "quota pods is 0: no pod of a preview could start; raise it or leave it out",
                ))
            }
            Some(p) => hard.push(("pods".into(), p.to_string())),
            None => {}
        }
        let quota = Quota {
            default_request_cpu: check("default_request_cpu", &c.default_request_cpu, "100m")?,
            default_request_memory: check(
                "default_request_memory",
                &c.default_request_memory,
                "128Mi",
            )?,
            default_limit_cpu: check("default_limit_cpu", &c.default_limit_cpu, "500m")?,
            default_limit_memory: check("default_limit_memory", &c.default_limit_memory, "512Mi")?,
            hard,
        };
        Ok((c != &QuotaConfig::default()).then_some(quota))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_checked() {
        for good in ["500m", "2", "1.5", "512Mi", "4Gi", "1e3", ".5"] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", "two", "4 Gi", "-1", "4GB", "1;rm"] {
            assert!(!is_quantity(bad), "{bad}");
        }
        let c = QuotaConfig {
            requests_cpu: Some("2".into()),
            limits_memory: Some("4Gi".into()),
            pods: Some(10),
            ..QuotaConfig::default()
        };
        let q = Quota::resolve(&c).unwrap().unwrap();
        assert_eq!(q.hard[0], ("requests.cpu".to_string(), "2".to_string()));
        assert_eq!(q.hard.len(), 3);
        assert_eq!(q.default_limit_memory, "512Mi");
        assert_eq!(Quota::resolve(&QuotaConfig::default()).unwrap(), None);
        let bad = QuotaConfig {
            limits_cpu: Some("lots".into()),
            ..c
        };
        assert!(Quota::resolve(&bad)
            .unwrap_err()
            .message
            .contains("limits_cpu \"lots\""));
    }
}
