//! A short-lived cache of credential reads. Bounded; an entry is fresh for one second, then for
//! one more second one reader refreshes it while the others still get it (so that not every
//! reader asks the database at the same moment); a change made by another process therefore shows
//! within two seconds. Every write through this process empties it at once. It holds stored rows
//! as the database has them — secrets only sealed, never opened.

use latchkey_store::CredentialRow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub(crate) struct ReadCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Moves on with every write, so that a read that started before a write is not kept.
    generation: u64,
    /// By workspace, then by reference: a lookup borrows both, and allocates nothing. Hashed with
    /// foldhash, seeded per map: a lookup costs a third of SipHash's.
    entries: HashMap<String, References, Hasher>,
    /// How many entries there are in all.
    len: usize,
}

type Hasher = foldhash::fast::RandomState;
type References = HashMap<String, Entry, Hasher>;

struct Entry {
    row: Arc<CredentialRow>,
    at: Instant,
    refreshing: bool,
}

impl ReadCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A cached read, or `None` when the caller is to read the database (and `put` the result).
    pub fn get(&self, workspace: &str, reference: &str) -> Option<Arc<CredentialRow>> {
        let mut inner = self.lock();
        let entry = inner.entries.get_mut(workspace)?.get_mut(reference)?;
        let age = entry.at.elapsed();
        if age < TTL || (age < 2 * TTL && entry.refreshing) {
            return Some(entry.row.clone());
        }
        if age < 2 * TTL {
            entry.refreshing = true;
        }
        None
    }

    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keep a read made at `generation`, unless a write happened since.
    pub fn put(&self, workspace: &str, reference: &str, row: &Arc<CredentialRow>, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.len >= MAX_ENTRIES {
            inner.entries.values_mut().for_each(|references| {
                references.retain(|_, e| e.at.elapsed() < 2 * TTL);
            });
            inner.entries.retain(|_, references| !references.is_empty());
            inner.len = inner.entries.values().map(References::len).sum();
            if inner.len >= MAX_ENTRIES {
                inner.entries.clear();
                inner.len = 0;
            }
        }
        let entry = Entry {
            row: row.clone(),
            at: Instant::now(),
            refreshing: false,
        };
        let references = match inner.entries.get_mut(workspace) {
            Some(references) => references,
            None => inner.entries.entry(workspace.to_owned()).or_default(),
        };
        if references.insert(reference.to_owned(), entry).is_none() {
            inner.len += 1;
        }
    }

    /// A credential changed: forget every read.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
        inner.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(name: &str) -> Arc<CredentialRow> {
        Arc::new(CredentialRow {
            id: "c1".into(),
            workspace_id: "w1".into(),
            provider: "aircall".into(),
            name: name.into(),
            name_key: name.into(),
            description: String::new(),
            settings: "{}".into(),
            secret_hints: "{}".into(),
            envelope: Vec::new(),
            key_id: "mk_0".into(),
            status: "active".into(),
            status_reason: None,
            enabled: true,
            verified_at: None,
            identity: None,
            last_used_at: None,
            revision: 1,
            created_at: 0,
            updated_at: 0,
        })
    }

    /// Makes every entry older by `by`.
    fn age(cache: &ReadCache, by: Duration) {
        let mut inner = cache.lock();
        for references in inner.entries.values_mut() {
            references.values_mut().for_each(|e| e.at -= by);
        }
    }

    #[test]
    fn a_full_cache_keeps_its_fresh_entries_and_counts_them() {
        let cache = ReadCache::default();
        let g = cache.generation();
        for i in 0..MAX_ENTRIES - 1 {
            cache.put(
                &format!("w{}", i % 7),
                &format!("c{i}"),
                &credential("a"),
                g,
            );
        }
        cache.put("w0", "c0", &credential("b"), g);
        assert_eq!(cache.lock().len, MAX_ENTRIES - 1, "replaced, not added");
        assert_eq!(cache.get("w0", "c0").unwrap().name, "b");
        cache.put("w0", "last", &credential("a"), g);
        assert_eq!(cache.lock().len, MAX_ENTRIES);
        age(&cache, 2 * TTL);
        cache.put("w1", "fresh", &credential("a"), g);
        // Full: the stale entries went, and the new one is the only one left.
        assert_eq!(cache.lock().len, 1);
        assert!(cache.get("w1", "fresh").is_some());
        assert!(cache.get("w0", "c0").is_none());
    }

    #[test]
    fn a_write_drops_reads_and_reads_begun_before_it() {
        let cache = ReadCache::default();
        let g = cache.generation();
        cache.put("default", "c1", &credential("a"), g);
        assert_eq!(cache.get("default", "c1").unwrap().name, "a");
        let before = cache.generation();
        cache.clear();
        assert!(cache.get("default", "c1").is_none());
        // A read that started before the write is not kept.
        cache.put("default", "c1", &credential("old"), before);
        assert!(cache.get("default", "c1").is_none());
    }

    #[test]
    fn after_a_second_one_reader_refreshes_while_others_get_the_entry() {
        let cache = ReadCache::default();
        cache.put("default", "c1", &credential("a"), cache.generation());
        age(&cache, TTL + Duration::from_millis(10));
        assert!(
            cache.get("default", "c1").is_none(),
            "the first reader refreshes"
        );
        assert!(
            cache.get("default", "c1").is_some(),
            "the others still get it"
        );
        age(&cache, TTL);
        assert!(
            cache.get("default", "c1").is_none(),
            "never older than two seconds"
        );
    }
}
