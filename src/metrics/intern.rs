//! String interning for the metric accumulators. They fold one lead at a time into maps
//! keyed by channel, campaign or owner; keying those maps by a small id instead of an owned
//! `String` means a lookup allocates nothing, and only the few distinct names (channels,
//! campaigns, owners — not leads) are ever copied. Their maps hash with `FastHasher`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The hasher of the accumulators' maps: FxHash's multiply-and-rotate. Those maps are looked
/// up several times per lead, where SipHash's cost per lookup shows; their keys are small
/// (ids, months, dimension names) and few, so resisting crafted collisions is not needed.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the entropy in the high bits; the table indexes by the low.
        self.0.rotate_left(26)
    }
}

/// A `HashMap` with `FastHasher`.
pub(super) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Names ↔ dense ids, in order of first appearance.
#[derive(Debug, Default, Clone)]
pub(super) struct Interner {
    ids: FastMap<Box<str>, usize>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The id of `name`, adding it on first sight.
    pub(super) fn id(&mut self, name: &str) -> usize {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len();
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// The id of an optional name.
    pub(super) fn opt(&mut self, name: Option<&str>) -> Option<usize> {
        name.map(|n| self.id(n))
    }

    /// The id of `name` if it was seen.
    pub(super) fn get(&self, name: &str) -> Option<usize> {
        self.ids.get(name).copied()
    }

    /// The name of an id this interner handed out.
    pub(super) fn name(&self, id: usize) -> &str {
        &self.names[id]
    }

    /// Each id's place among the names in byte order (`str`'s `Ord`): sorting rows by
    /// these ranks orders them as sorting by the names would, with no string compared.
    pub(super) fn ranks(&self) -> Vec<u32> {
        let mut by_name: Vec<usize> = (0..self.names.len()).collect();
        by_name.sort_unstable_by(|a, b| self.names[*a].cmp(&self.names[*b]));
        let mut ranks = vec![0; self.names.len()];
        for (rank, id) in by_name.into_iter().enumerate() {
            ranks[id] = u32::try_from(rank).expect("fewer than 2^32 names");
        }
        ranks
    }

    /// The name of an optional id, as an owned key for the output's ordered maps.
    pub(super) fn owned(&self, id: Option<usize>) -> Option<String> {
        id.map(|i| self.name(i).to_string())
    }
}
