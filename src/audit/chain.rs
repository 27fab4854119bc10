//! The audit hash chain's arithmetic: the hash of one entry and the linking of new entries onto
//! the chain's head. Pure computation on sha2 alone: `store` calls it when it appends a batch
//! (the SQL stays there), and the verifier in this module's parent calls it when it walks the
//! stored rows, without a module cycle between `audit` and `store`.

use sha2::{Digest, Sha256};

/// prev_hash of the first entry.
pub const GENESIS: [u8; 32] = [0u8; 32];
/// Domain separation: the first bytes hashed for every entry.
const DOMAIN: &[u8] = b"vouch-audit-v1";

/// An entry waiting for its place in the chain.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Microseconds since the Unix epoch.
    pub at: i64,
    /// Operator id, or None for the system itself and unauthenticated callers.
    pub actor: Option<String>,
    /// The documented action string (`request.submitted`, ...).
    pub action: String,
    /// What it happened to: a request, subscriber, certificate serial, operator id.
    pub target: Option<String>,
    /// JSON text.
    pub details: String,
}

fn put(h: &mut Sha256, field: Option<&[u8]>) {
    match field {
        Some(bytes) => {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
        None => h.update(u64::MAX.to_be_bytes()),
    }
}

/// The hash that links an entry to its predecessor. Every field is length-prefixed, so field
/// boundaries are unambiguous.
pub fn entry_hash(
    prev: &[u8],
    seq: i64,
    at: i64,
    actor: Option<&str>,
    action: &str,
    target: Option<&str>,
    details: &str,
) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    put(&mut h, Some(prev));
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    put(&mut h, actor.map(str::as_bytes));
    put(&mut h, Some(action.as_bytes()));
    put(&mut h, target.map(str::as_bytes));
    put(&mut h, Some(details.as_bytes()));
    h.finalize().to_vec()
}

/// A new entry with its place in the chain: its number, its predecessor's hash and its own.
#[derive(Debug, Clone)]
pub struct Linked<'a> {
    /// The entry's number (1 for the first entry of the log).
    pub seq: i64,
    /// The entry itself.
    pub entry: &'a NewEntry,
    /// The hash of the entry before it ([`GENESIS`] for the first).
    pub prev_hash: Vec<u8>,
    /// This entry's [`entry_hash`].
    pub hash: Vec<u8>,
}

/// Chain `entries`, in order, onto the head `(seq, hash)` (`(0, GENESIS)` for an empty log).
pub fn link<'a>(head: &(i64, Vec<u8>), entries: &'a [NewEntry]) -> Vec<Linked<'a>> {
    let (mut seq, mut prev) = head.clone();
    let mut linked = Vec::with_capacity(entries.len());
    for entry in entries {
        seq += 1;
        let hash = entry_hash(
            &prev,
            seq,
            entry.at,
            entry.actor.as_deref(),
            &entry.action,
            entry.target.as_deref(),
            &entry.details,
        );
        linked.push(Linked {
            seq,
            entry,
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
    }
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_every_field() {
        let base = entry_hash(&GENESIS, 1, 10, Some("op"), "a", Some("t"), "{}");
        assert_ne!(
            base,
            entry_hash(&GENESIS, 2, 10, Some("op"), "a", Some("t"), "{}")
        );
        assert_ne!(
            base,
            entry_hash(&GENESIS, 1, 11, Some("op"), "a", Some("t"), "{}")
        );
        assert_ne!(
            base,
            entry_hash(&GENESIS, 1, 10, None, "a", Some("t"), "{}")
        );
        assert_ne!(
            base,
            entry_hash(&GENESIS, 1, 10, Some("op"), "b", Some("t"), "{}")
        );
        assert_ne!(
            base,
            entry_hash(&GENESIS, 1, 10, Some("op"), "a", None, "{}")
        );
        assert_ne!(
            base,
            entry_hash(&GENESIS, 1, 10, Some("op"), "a", Some("t"), "{ }")
        );
        assert_ne!(
            base,
            entry_hash(&[1u8; 32], 1, 10, Some("op"), "a", Some("t"), "{}")
        );
        // Field boundaries are unambiguous.
        assert_ne!(
            entry_hash(&GENESIS, 1, 10, Some("ab"), "c", None, ""),
            entry_hash(&GENESIS, 1, 10, Some("a"), "bc", None, "")
        );
    }

    /// The hash is part of the stored format: a change here breaks every existing chain.
    #[test]
    fn hash_is_stable() {
        assert_eq!(
            hex::encode(entry_hash(
                &GENESIS,
                1,
                10,
                Some("op"),
                "a",
                Some("t"),
                "{}"
            )),
            "2ba799df432bfff40909c21a4a6b1ab5ac5c5da16a1bbf3f920ac377e2792359"
        );
    }

    #[test]
    fn linking_numbers_and_chains_each_entry() {
        let e = |n: i64| NewEntry {
            at: n,
            actor: None,
            action: "a".into(),
            target: None,
            details: "{}".into(),
        };
        let entries = [e(1), e(2)];
        let head = (4, vec![7u8; 32]);
        let linked = link(&head, &entries);
        assert_eq!(linked[0].seq, 5);
        assert_eq!(linked[0].prev_hash, head.1);
        assert_eq!(linked[1].seq, 6);
        assert_eq!(linked[1].prev_hash, linked[0].hash);
        assert_eq!(
            linked[1].hash,
            entry_hash(&linked[0].hash, 6, 2, None, "a", None, "{}")
        );
        assert!(link(&head, &[]).is_empty());
    }
}
