//! A short-lived cache of credential reads. Bounded, kept at most one second (so a change made by
//! another process shows within that), and emptied at once by every write through this process.
//! It holds views only — never a secret.

use crate::model::Credential;
use std::collections::HashMap;
use std::sync::Mutex;
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
    entries: HashMap<(String, String), (Credential, Instant)>,
}

impl ReadCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, workspace: &str, reference: &str) -> Option<Credential> {
        let inner = self.lock();
        let (credential, at) = inner
            .entries
            .get(&(workspace.to_owned(), reference.to_owned()))?;
        (at.elapsed() < TTL).then(|| credential.clone())
    }

    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keep a read made at `generation`, unless a write happened since.
    pub fn put(&self, workspace: &str, reference: &str, credential: &Credential, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.retain(|_, (_, at)| at.elapsed() < TTL);
            if inner.entries.len() >= MAX_ENTRIES {
                inner.entries.clear();
            }
        }
        inner.entries.insert(
            (workspace.to_owned(), reference.to_owned()),
            (credential.clone(), Instant::now()),
        );
    }

    /// A credential changed: forget every read.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }
}
