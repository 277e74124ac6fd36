//! Reading the environments recorded in the instances directory.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use crate::model::{slug_of_file_name, EnvRecord};

/// The sync files of the instances directory: file name → content.
pub type Files = BTreeMap<String, std::sync::Arc<str>>;

/// What a file in the instances directory is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Created by flux-ephemeral.
    Managed(Box<EnvRecord>),
    /// Named like a sync file but without the marker annotation: never touched.
    Foreign,
}

/// Classify one file by its annotations. Only `sync-*.yaml` files are ever considered.
pub fn classify(file: &str, content: &str) -> Option<Entry> {
    slug_of_file_name(file)?;
    for de in serde_yaml_ng::Deserializer::from_str(content) {
        let Ok(doc) = <Value as serde::Deserialize>::deserialize(de) else {
            return Some(Entry::Foreign);
        };
        let Some(ann) = doc
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_mapping)
        else {
            continue;
        };
        let map: BTreeMap<String, String> = ann
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
            .collect();
        if let Some(mut record) = EnvRecord::from_annotations(file, &map) {
            record.name = doc
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string);
            return Some(Entry::Managed(Box::new(record)));
        }
    }
    Some(Entry::Foreign)
}

/// Every environment flux-ephemeral manages, sorted by file name.
pub fn records(files: &Files) -> Vec<EnvRecord> {
    files
        .iter()
        .filter_map(|(name, content)| match classify(name, content)? {
            Entry::Managed(r) => Some(*r),
            Entry::Foreign => None,
        })
        .collect()
}
