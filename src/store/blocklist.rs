//! Imported weak-key blocklists (table `key_blocklist`, migration 0009).

use super::Conn;
use crate::error::Result;

/// Rows per statement: three parameters each, under SQLite's historic limit of 999.
const BATCH: usize = 300;

fn placeholders(rows: usize, per_row: usize) -> String {
    (0..rows)
        .map(|r| {
            let cols: Vec<String> = (1..=per_row)
                .map(|c| format!("${}", r * per_row + c))
                .collect();
            if per_row == 1 {
                cols.join("")
            } else {
                format!("({})", cols.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Add `entries` under `list`; entries already present keep their first list. Returns how many
/// were new.
pub async fn insert(conn: &mut Conn, entries: &[String], list: &str, now: i64) -> Result<u64> {
    let mut added = 0;
    for chunk in entries.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO key_blocklist (entry, list, imported_at) VALUES {} ON CONFLICT (entry) DO NOTHING",
            placeholders(chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for entry in chunk {
            q = q.bind(entry).bind(list).bind(now);
        }
        added += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(added)
}

/// How many of `entries` are already listed.
pub async fn count_listed(conn: &mut Conn, entries: &[String]) -> Result<i64> {
    let mut n = 0;
    for chunk in entries.chunks(BATCH) {
        let sql = format!(
            "SELECT COUNT(*) FROM key_blocklist WHERE entry IN ({})",
            placeholders(chunk.len(), 1)
        );
        let mut q = sqlx::query_scalar::<_, i64>(&sql);
        for entry in chunk {
            q = q.bind(entry);
        }
        n += q.fetch_one(&mut *conn).await?;
    }
    Ok(n)
}

/// The first of `entries` that is listed, with the list that added it.
pub async fn find(conn: &mut Conn, entries: &[String]) -> Result<Option<(String, String)>> {
    if entries.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT entry, list FROM key_blocklist WHERE entry IN ({}) ORDER BY entry LIMIT 1",
        placeholders(entries.len(), 1)
    );
    let mut q = sqlx::query_as::<_, (String, String)>(&sql);
    for entry in entries {
        q = q.bind(entry);
    }
    Ok(q.fetch_optional(conn).await?)
}

/// How many entries the blocklists hold.
pub async fn count(conn: &mut Conn) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM key_blocklist")
        .fetch_one(conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn placeholders_number_every_parameter() {
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(3, 1), "$1, $2, $3");
    }

    #[tokio::test]
    async fn batched_insert_skips_known_entries_and_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let entries: Vec<String> = (0..(BATCH * 2 + 7)).map(|i| format!("e{i}")).collect();
        let (first, second) = store
            .write({
                let entries = entries.clone();
                crate::store::job!(|c, _| {
                    let first = insert(c, &entries[..BATCH + 1], "a", 1).await?;
                    let second = insert(c, &entries, "b", 2).await?;
                    Ok((first, second))
                })
            })
            .await
            .unwrap();
        assert_eq!((first, second), ((BATCH + 1) as u64, (BATCH + 6) as u64));
        let mut c = store.read().await.unwrap();
        assert_eq!(count(&mut c).await.unwrap(), entries.len() as i64);
        assert_eq!(
            count_listed(&mut c, &entries).await.unwrap(),
            entries.len() as i64
        );
        let probe = vec!["nope".to_string(), entries[BATCH + 3].clone()];
        assert_eq!(
            find(&mut c, &probe).await.unwrap(),
            Some((entries[BATCH + 3].clone(), "b".to_string()))
        );
        assert_eq!(
            find(&mut c, &["e0".to_string()]).await.unwrap(),
            Some(("e0".to_string(), "a".to_string()))
        );
        assert_eq!(find(&mut c, &["nope".to_string()]).await.unwrap(), None);
    }
}
