//! A bounded, sharded map whose entries expire: PUB's memory of routes and decisions.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use foldhash::fast::RandomState;

use crate::lock;

const SHARDS: usize = 16;

struct Entry<V> {
    value: V,
    expires: Instant,
}

pub struct TtlCache<K, V> {
    shards: Vec<Mutex<HashMap<K, Entry<V>, RandomState>>>,
    hasher: RandomState,
    per_shard: usize,
    ttl: Duration,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        TtlCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(RandomState::default())))
                .collect(),
            hasher: RandomState::default(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            ttl,
        }
    }

    /// `K` and its borrowed form hash alike (std's `Borrow` contract), so both find one shard.
    fn shard<Q: Hash + ?Sized>(
        &self,
        key: &Q,
    ) -> std::sync::MutexGuard<'_, HashMap<K, Entry<V>, RandomState>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        lock(&self.shards[i])
    }

    /// Looks up by a borrowed form of the key (e.g. `&[u8]` for `Vec<u8>` keys): no allocation.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut shard = self.shard(key);
        match shard.get(key) {
            Some(e) if e.expires > Instant::now() => Some(e.value.clone()),
            Some(_) => {
                shard.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, key: K, value: V) {
        self.insert_if(key, value, || true);
    }

    /// Inserts only if `still_valid` holds, asked under the shard's lock: a purge of this shard
    /// that began after the answer was read waits for the lock and then removes the entry, and
    /// one that began before it is what `still_valid` sees (see `Access::apply`).
    pub fn insert_if(&self, key: K, value: V, still_valid: impl FnOnce() -> bool) -> bool {
        let now = Instant::now();
        let mut shard = self.shard(&key);
        if !still_valid() {
            return false;
        }
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, e| e.expires > now);
            if shard.len() >= self.per_shard {
                // Still full of live entries: drop an arbitrary one; a miss only costs a lookup.
                let mut first = true;
                shard.retain(|_, _| !std::mem::take(&mut first));
            }
        }
        shard.insert(
            key,
            Entry {
                value,
                expires: now + self.ttl,
            },
        );
        true
    }

    /// Keeps only entries for which `keep` holds.
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        for shard in &self.shards {
            let mut shard = lock(shard);
            shard.retain(|k, e| keep(k, &e.value));
        }
    }

    pub fn clear(&self) {
        self.retain(|_, _| false);
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let c = TtlCache::new(10, Duration::from_millis(30));
        c.insert("a", 1);
        assert_eq!(c.get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get(&"a"), None);
        assert!(c.is_empty());
    }

    #[test]
    fn size_stays_bounded() {
        let c = TtlCache::new(64, Duration::from_secs(60));
        for i in 0..10_000 {
            c.insert(i, i);
        }
        assert!(c.len() <= 64, "{}", c.len());
        c.insert(42_000, 1);
        assert_eq!(c.get(&42_000), Some(1), "the newest entry is kept");
    }

    #[test]
    fn retain_and_clear() {
        // Room for all ten in any one shard: how the hash spreads them cannot evict any.
        let c = TtlCache::new(10 * SHARDS, Duration::from_secs(60));
        for i in 0..10 {
            c.insert(i, i % 2);
        }
        c.retain(|_, v| *v == 0);
        assert_eq!(c.len(), 5);
        assert_eq!(c.get(&1), None);
        c.clear();
        assert!(c.is_empty());
    }
}
