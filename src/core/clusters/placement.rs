//! Placement: which cluster a new preview goes to, under the caps, or that it has to wait.

use std::collections::BTreeMap;

use crate::clusters::layout::Layout;
use crate::error::{Error, Result};
use crate::model::EnvRecord;

/// How many previews count against the caps: per cluster, and per author.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Occupancy {
    clusters: BTreeMap<String, usize>,
    authors: BTreeMap<String, usize>,
}

impl Occupancy {
    /// Count `records` (with the file each is in) as `layout` says: sleeping ones only with
    /// `count_sleeping`.
    pub fn of<'r>(layout: &Layout, records: impl Iterator<Item = &'r EnvRecord>) -> Occupancy {
        let mut o = Occupancy::default();
        for r in records {
            o.add(layout, r, 1);
        }
        o
    }

    /// Count `r` in (`+1`) or out (`-1`).
    pub fn add(&mut self, layout: &Layout, r: &EnvRecord, delta: isize) {
        if !layout.count_sleeping && r.sleeping_since.is_some() {
            return;
        }
        let bump = |map: &mut BTreeMap<String, usize>, k: String| {
            let n = map.entry(k).or_default();
            *n = n.saturating_add_signed(delta);
        };
        if let Some(c) = layout.cluster_of(&r.file) {
            bump(&mut self.clusters, c.name.clone());
        }
        if let Some(a) = &r.author {
            bump(&mut self.authors, a.to_lowercase());
        }
    }

    pub fn in_cluster(&self, name: &str) -> usize {
        self.clusters.get(name).copied().unwrap_or(0)
    }

    pub fn of_author(&self, author: &str) -> usize {
        self.authors
            .get(&author.to_lowercase())
            .copied()
            .unwrap_or(0)
    }
}

/// Where a preview can go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// This cluster has room.
    Into(String),
    /// No allowed cluster has room: it waits, and why.
    Full(String),
}

/// What is asked: a cluster by name, for whom, and whether the preview exists already (a move,
/// which does not add to its author's previews).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask<'a> {
    pub cluster: Option<&'a str>,
    pub author: Option<&'a str>,
    pub moving: bool,
}

/// The cluster for a preview: the one asked for, else the first allowed one with room, in the
/// configured order. A cluster that does not exist or that the application may not use is
/// refused, naming the allowed ones.
pub fn place(layout: &Layout, occ: &Occupancy, ask: Ask) -> Result<Placement> {
    if let Some(name) = ask.cluster {
        if layout.named(name).is_none() || !layout.is_allowed(name) {
            return Err(Error::input(format!(
                "there is no cluster {name:?} for this application; the clusters it may use are: {}",
                layout.allowed.join(", ")
            )));
        }
    }
    if let (Some(max), Some(a), false) = (layout.max_per_author, ask.author, ask.moving) {
        let has = occ.of_author(a);
        if has >= max {
            return Ok(Placement::Full(format!(
                "{a} has {has} previews, the most one author may have (max_previews_per_author {max})"
            )));
        }
    }
    let room = |name: &str| {
        let cap = layout.named(name).and_then(|c| c.max_previews);
        cap.is_none_or(|max| occ.in_cluster(name) < max)
    };
    match ask.cluster {
        Some(name) if room(name) => Ok(Placement::Into(name.to_string())),
        Some(name) => Ok(Placement::Full(format!(
            "cluster {name} is full ({} of {} previews)",
            occ.in_cluster(name),
            layout.named(name).and_then(|c| c.max_previews).unwrap_or(0)
        ))),
        None => Ok(layout
            .allowed_clusters()
            .find(|c| room(&c.name))
            .map(|c| Placement::Into(c.name.clone()))
            .unwrap_or_else(|| Placement::Full(full_reason(layout, occ)))),
    }
}

fn full_reason(layout: &Layout, occ: &Occupancy) -> String {
    let each: Vec<String> = layout
        .allowed_clusters()
        .map(|c| match c.max_previews {
            Some(max) => format!("{} {} of {max}", c.name, occ.in_cluster(&c.name)),
            None => c.name.clone(),
        })
        .collect();
    match each.as_slice() {
        [one] if !layout.configured => format!("the cluster is full ({one})"),
        _ => format!("every cluster is full ({})", each.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clusters::config::ClusterConfig;
    use crate::clusters::layout::LayoutInput;

    fn layout(caps: &[(&str, Option<usize>)], per_author: Option<usize>) -> Layout {
        let list: Vec<ClusterConfig> = caps
            .iter()
            .map(|(n, max)| ClusterConfig {
                name: n.to_string(),
                instances_dir: format!("clusters/{n}"),
                max_previews: *max,
                ..ClusterConfig::default()
            })
            .collect();
        let input = LayoutInput {
            clusters: Some(&list),
            max_per_author: per_author,
            ..LayoutInput::default()
        };
        Layout::resolve(&input, "x").unwrap()
    }

    fn record(cluster: &str, n: usize, author: &str, sleeping: bool) -> EnvRecord {
        EnvRecord {
            slug: format!("s{n}"),
            file: format!("{cluster}/sync-s{n}.yaml"),
            author: Some(author.into()),
            sleeping_since: sleeping.then(|| "2026-01-01T00:00:00Z".into()),
            ..EnvRecord::default()
        }
    }

    #[test]
    fn placement_in_order_then_spill_over_then_full() {
        let l = layout(&[("eu", Some(2)), ("us", Some(1))], None);
        let mut recs = vec![];
        let mut placed = vec![];
        for n in 0..4 {
            let occ = Occupancy::of(&l, recs.iter());
            match place(&l, &occ, Ask::default()).unwrap() {
                Placement::Into(c) => {
                    recs.push(record(&c, n, "ann", false));
                    placed.push(c);
                }
                Placement::Full(why) => placed.push(why),
            }
        }
        assert_eq!(placed[..3], ["eu", "eu", "us"]);
        assert_eq!(placed[3], "every cluster is full (eu 2 of 2, us 1 of 1)");
    }

    #[test]
    fn a_cluster_by_name() {
        let l = layout(&[("eu", Some(1)), ("us", None)], None);
        let occ = Occupancy::of(&l, [record("eu", 0, "a", false)].iter());
        let ask = |c| Ask {
            cluster: Some(c),
            ..Ask::default()
        };
        assert_eq!(
            place(&l, &occ, ask("us")).unwrap(),
            Placement::Into("us".into())
        );
        assert_eq!(
            place(&l, &occ, ask("eu")).unwrap(),
            Placement::Full("cluster eu is full (1 of 1 previews)".into())
        );
        let e = place(&l, &occ, ask("ap")).unwrap_err();
        assert!(
            e.message.contains("\"ap\"") && e.message.contains("eu, us"),
            "{e}"
        );
        let mut only_eu = l.clone();
        only_eu.allowed = vec!["eu".into()];
        let e = place(&only_eu, &occ, ask("us")).unwrap_err();
        assert!(e.message.ends_with("are: eu"), "{e}");
    }

    #[test]
    fn the_author_cap_and_sleepers() {
        let mut l = layout(&[("eu", Some(2))], Some(1));
        let recs = [record("eu", 0, "Ann", true)];
        let occ = Occupancy::of(&l, recs.iter());
        let ann = Ask {
            author: Some("ann"),
            ..Ask::default()
        };
        assert!(
            matches!(place(&l, &occ, ann).unwrap(), Placement::Full(w) if w.contains("max_previews_per_author 1"))
        );
        let moving = Ask {
            moving: true,
            ..ann
        };
        assert_eq!(
            place(&l, &occ, moving).unwrap(),
            Placement::Into("eu".into())
        );
        // A sleeping preview runs no pods: with count_sleeping false it takes no room.
        l.count_sleeping = false;
        let occ = Occupancy::of(&l, recs.iter());
        assert_eq!(place(&l, &occ, ann).unwrap(), Placement::Into("eu".into()));
    }
}
