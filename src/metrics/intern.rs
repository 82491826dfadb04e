//! String interning for the metric accumulators. They fold one lead at a time into maps
//! keyed by channel, campaign or owner; keying those maps by a small id instead of an owned
//! `String` means a lookup allocates nothing, and only the few distinct names (channels,
//! campaigns, owners — not leads) are ever copied.

use std::collections::HashMap;

/// Names ↔ dense ids, in order of first appearance.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ids: HashMap<Box<str>, usize>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The id of `name`, adding it on first sight.
    pub fn id(&mut self, name: &str) -> usize {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len();
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// The id of an optional name.
    pub fn opt(&mut self, name: Option<&str>) -> Option<usize> {
        name.map(|n| self.id(n))
    }

    /// The id of `name` if it was seen.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.ids.get(name).copied()
    }

    /// The name of an id this interner handed out.
    pub fn name(&self, id: usize) -> &str {
        &self.names[id]
    }

    /// The name of an optional id, as an owned key for the output's ordered maps.
    pub fn owned(&self, id: Option<usize>) -> Option<String> {
        id.map(|i| self.name(i).to_string())
    }
}
