//! The keys a full pull has written, so that a record the vendor serves twice (a repeated
//! page, a record that moved while the pages were read) is written once — in memory that
//! does not grow with the table. Keys arrive as 128-bit keyed fingerprints. The newest are
//! held in an exact set; when it fills up they are sorted and spilled to a run in an
//! anonymous temporary file, and a Bloom filter over every spilled key stands in front of
//! the runs, so only a key the filter cannot rule out (a real repeat, or a few new keys in
//! a thousand) reads a block of each run. The filter is rebuilt from the runs a quarter
//! larger whenever the keys outgrow it, so its size follows the keys spilled so far, not the
//! next doubling of them. At ten million keys this holds about 22 MB instead of the 285 MB
//! a hash set of all fingerprints took.

use std::collections::HashSet;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

/// Keys held exactly before they are spilled: 7/8 of a 2^18-slot table, so the set never
/// grows past its first allocation (about 4.5 MB, and as much again for the sorted copy a
/// spill writes). Every source of a run holds one, all at once while they pull together.
const SPILL_AT: usize = (1 << 18) / 8 * 7;
/// Keys per block of a run: a lookup reads one block (4 KiB) of each run.
const BLOCK_KEYS: usize = 256;
/// Bloom filter bits per key it is sized for: about 0.4 % false positives when full. Every
/// full pull of a run holds one while they all pull at once, and this is the part of their
/// memory that grows with the table (16 bits and a filter doubled when outgrown made a
/// 10 M-lead run peak 1.3 × a 1 M-lead one); a false positive costs one 4 KiB read from each
/// run, from the page cache.
const FILTER_BITS_PER_KEY: usize = 12;

/// The capacity of a filter for `keys` spilled keys: a quarter more, so that it is rebuilt
/// from the runs after every quarter's growth (reading the spilled keys back about five times
/// in all, sequentially) instead of holding up to twice the bits it needs.
fn filter_capacity(keys: usize) -> usize {
    keys + keys / 4
}

/// See the module documentation.
#[derive(Debug)]
pub(super) struct SeenKeys {
    recent: HashSet<u128, BuildHasherDefault<Fingerprinted>>,
    spill_at: usize,
    spilled: Option<Spilled>,
}

impl Default for SeenKeys {
    fn default() -> Self {
        SeenKeys::with_spill_at(SPILL_AT)
    }
}

impl SeenKeys {
    /// Spill every `spill_at` keys (tests use small values).
    fn with_spill_at(spill_at: usize) -> Self {
        SeenKeys {
            recent: HashSet::default(),
            spill_at: spill_at.max(1),
            spilled: None,
        }
    }

    /// Record `key`; `true` the first time it is seen.
    pub(super) fn insert(&mut self, key: u128) -> std::io::Result<bool> {
        if self.recent.is_empty() {
            self.recent.reserve(self.spill_at);
        }
        // One probe of the table (a cache miss a key, the table being megabytes): the key
        // goes in at once, and out again in the rare case a spilled run holds it.
        if !self.recent.insert(key) {
            return Ok(false);
        }
        if let Some(spilled) = &self.spilled
            && spilled.contains(key)?
        {
            self.recent.remove(&key);
            return Ok(false);
        }
        if self.recent.len() >= self.spill_at {
            let mut run: Vec<u128> = self.recent.drain().collect();
            run.sort_unstable();
            match &mut self.spilled {
                Some(spilled) => spilled.add_run(&run)?,
                None => self.spilled = Some(Spilled::new(&run)?),
            }
        }
        Ok(true)
    }
}

/// Fingerprints are uniform already: their low 64 bits are the table's hash.
#[derive(Debug, Default)]
struct Fingerprinted(u64);

impl Hasher for Fingerprinted {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used; any other input is folded in whole.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

/// The spilled keys: sorted runs in one temporary file, a sparse index per run, and the
/// filter over all of them.
#[derive(Debug)]
struct Spilled {
    file: File,
    runs: Vec<Run>,
    filter: Bloom,
    keys: usize,
}

#[derive(Debug)]
struct Run {
    /// Byte offset of the run in the file.
    offset: u64,
    /// Keys in the run.
    len: usize,
    /// The first key of each block.
    firsts: Vec<u128>,
}

impl Spilled {
    fn new(run: &[u128]) -> std::io::Result<Self> {
        let mut spilled = Spilled {
            file: tempfile::tempfile()?,
            runs: Vec::new(),
            filter: Bloom::for_keys(filter_capacity(run.len())),
            keys: 0,
        };
        spilled.add_run(run)?;
        Ok(spilled)
    }

    /// Append a sorted run.
    fn add_run(&mut self, run: &[u128]) -> std::io::Result<()> {
        let offset = self.file.seek(SeekFrom::End(0))?;
        let mut out = BufWriter::with_capacity(1 << 16, &mut self.file);
        for key in run {
            out.write_all(&key.to_le_bytes())?;
        }
        out.flush()?;
        drop(out);
        self.runs.push(Run {
            offset,
            len: run.len(),
            firsts: run.iter().step_by(BLOCK_KEYS).copied().collect(),
        });
        self.keys += run.len();
        if self.keys > self.filter.capacity {
            // Outgrown: a larger filter, from every run on disk. The old one goes first:
            // both at once were more than the filter at its peak.
            self.filter = Bloom::for_keys(0);
            self.filter = Bloom::for_keys(filter_capacity(self.keys));
            self.file.seek(SeekFrom::Start(0))?;
            let mut reader = std::io::BufReader::with_capacity(1 << 16, &self.file);
            let mut bytes = [0u8; 16];
            for _ in 0..self.keys {
                reader.read_exact(&mut bytes)?;
                self.filter.insert(u128::from_le_bytes(bytes));
            }
        } else {
            for &key in run {
                self.filter.insert(key);
            }
        }
        Ok(())
    }

    fn contains(&self, key: u128) -> std::io::Result<bool> {
        if !self.filter.may_contain(key) {
            return Ok(false);
        }
        let mut block = [0u8; BLOCK_KEYS * 16];
        for run in &self.runs {
            let after = run.firsts.partition_point(|first| *first <= key);
            let Some(b) = after.checked_sub(1) else {
                continue;
            };
            let keys = (run.len - b * BLOCK_KEYS).min(BLOCK_KEYS);
            let bytes = &mut block[..keys * 16];
            self.file
                .read_exact_at(bytes, run.offset + (b * BLOCK_KEYS * 16) as u64)?;
            let key_at = |i: usize| {
                let mut le = [0u8; 16];
                le.copy_from_slice(&bytes[i * 16..i * 16 + 16]);
                u128::from_le_bytes(le)
            };
            let (mut lo, mut hi) = (0, keys);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                match key_at(mid).cmp(&key) {
                    std::cmp::Ordering::Less => lo = mid + 1,
                    std::cmp::Ordering::Greater => hi = mid,
                    std::cmp::Ordering::Equal => return Ok(true),
                }
            }
        }
        Ok(false)
    }
}

/// A blocked Bloom filter: each key sets 7 bits in one 512-bit block (one cache line), all
/// taken from the key's own bits (a fingerprint is uniform).
#[derive(Debug)]
struct Bloom {
    blocks: Vec<[u64; 8]>,
    capacity: usize,
}

impl Bloom {
    fn for_keys(capacity: usize) -> Self {
        let blocks = (capacity * FILTER_BITS_PER_KEY).div_ceil(512).max(1);
        Bloom {
            blocks: vec![[0; 8]; blocks],
            capacity,
        }
    }

    /// The key's block, and its 7 bit positions in it.
    fn probe(&self, key: u128) -> (usize, [u16; 7]) {
        let high = (key >> 64) as u64;
        let block = ((u128::from(high) * self.blocks.len() as u128) >> 64) as usize;
        let low = key as u64;
        (
            block,
            std::array::from_fn(|i| ((low >> (9 * i)) & 511) as u16),
        )
    }

    fn insert(&mut self, key: u128) {
        let (block, bits) = self.probe(key);
        for bit in bits {
            self.blocks[block][usize::from(bit / 64)] |= 1 << (bit % 64);
        }
    }

    fn may_contain(&self, key: u128) -> bool {
        let (block, bits) = self.probe(key);
        bits.iter()
            .all(|bit| self.blocks[block][usize::from(bit / 64)] & (1 << (bit % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn fingerprint(state: &std::hash::RandomState, n: u64) -> u128 {
        (u128::from(state.hash_one(n)) << 64) | u128::from(state.hash_one(!n))
    }

    /// Against an exact set: with runs of 100 keys (and a filter rebuilt as they grow),
    /// every first sighting is new and every repeat — recent, spilled long ago, or
    /// repeated again — is not.
    #[test]
    fn spilled_keys_are_still_seen_and_new_ones_are_not() {
        let state = std::hash::RandomState::new();
        let mut seen = SeenKeys::with_spill_at(100);
        let mut exact = HashSet::new();
        let mut repeats = 0;
        for i in 0..20_000u64 {
            // Every 7th key repeats one from far back, every 11th the one just before.
            let n = if i % 7 == 6 {
                i / 3
            } else if i % 11 == 10 {
                i - 1
            } else {
                i
            };
            let key = fingerprint(&state, n);
            let new = exact.insert(key);
            repeats += usize::from(!new);
            assert_eq!(seen.insert(key).unwrap(), new, "key {n} at {i}");
        }
        assert!(repeats > 3_000, "{repeats}");
        let spilled = seen.spilled.as_ref().expect("spilled");
        assert!(spilled.runs.len() > 100, "{}", spilled.runs.len());
        // The filter holds every spilled key, and bits for at most a quarter more.
        assert!(spilled.filter.capacity >= spilled.keys);
        assert!(spilled.filter.capacity <= filter_capacity(spilled.keys));
    }

    #[test]
    fn the_filter_rules_out_most_new_keys() {
        let state = std::hash::RandomState::new();
        let mut filter = Bloom::for_keys(100_000);
        for n in 0..100_000 {
            filter.insert(fingerprint(&state, n));
        }
        assert!((0..100_000).all(|n| filter.may_contain(fingerprint(&state, n))));
        let false_hits = (100_000..200_000)
            .filter(|&n| filter.may_contain(fingerprint(&state, n)))
            .count();
        assert!(false_hits < 500, "{false_hits} of 100,000");
    }
}
