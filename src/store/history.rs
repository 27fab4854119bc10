//! The `status_history` table (migration 0012): every status change of a certificate or an
//! attribute certificate, appended in the transaction that makes it, so that the status at any
//! past time can be read back. The `certificates` and `attribute_certificates` rows keep only the
//! current status (a release from hold clears the revocation fields); this table keeps the
//! sequence. The functions that change a status ([`super::certificates`],
//! [`super::attributes`]) call [`record`] right after a change that took effect.

use super::Conn;
use crate::error::Result;
use crate::state::CertificateStatus;

/// Which kind of certificate a history row is about (serials of the two kinds are separate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistoryKind {
    /// An identity certificate (the `certificates` table).
    Certificate,
    /// An attribute certificate (the `attribute_certificates` table).
    Attribute,
}

impl HistoryKind {
    /// As stored in `status_history.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Certificate => "certificate",
            HistoryKind::Attribute => "attribute",
        }
    }

    /// The table holding the current status of this kind.
    fn table(self) -> &'static str {
        match self {
            HistoryKind::Certificate => "certificates",
            HistoryKind::Attribute => "attribute_certificates",
        }
    }
}

/// One status change: from `at` on, the certificate was `status`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HistoryRow {
    /// The serial (hex).
    pub serial: String,
    /// When the change was made (Unix seconds): the revocation or hold time, the release time,
    /// or the time a revocation's reason became keyCompromise.
    pub at: i64,
    /// The status it moved to.
    #[sqlx(try_from = "String")]
    pub status: CertificateStatus,
    /// The RFC 5280 reason's name then (`certificateHold` for a hold; none for `valid`).
    pub reason: Option<String>,
    /// When the key was then believed compromised (Unix seconds).
    pub invalidity_date: Option<i64>,
}

/// Append the current status of `serial` as a change made at `at`. Called by the store functions
/// that change a status, in their transaction, only when the change took effect; the status,
/// reason and invalidity date are copied from the row just updated, so the history says what the
/// row said.
pub(super) async fn record(
    conn: &mut Conn,
    kind: HistoryKind,
    serial: &str,
    at: i64,
) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO status_history (kind, serial, at, status, reason, invalidity_date) \
         SELECT '{kind}', serial, $2, status, revocation_reason, invalidity_date FROM {table} \
         WHERE serial = $1",
        kind = kind.as_str(),
        table = kind.table(),
    ))
    .bind(serial)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

const COLUMNS: &str = "serial, at, status, reason, invalidity_date";

/// The status `serial` had at time `at` (Unix seconds): of the changes stamped at or before it,
/// the last one made. Changes to one serial are made one after another (write transactions are
/// serialised), so the order they were made in is the order of their ids; their stamps come from
/// the clocks of the instances that made them, which may disagree by a second or two, so the
/// stamp only says which changes had happened by then. None when its status had not changed by
/// then: it was valid, if it was issued by then.
pub async fn status_at(
    conn: &mut Conn,
    kind: HistoryKind,
    serial: &str,
    at: i64,
) -> Result<Option<HistoryRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM status_history WHERE kind = $1 AND serial = $2 AND at <= $3 \
         ORDER BY id DESC LIMIT 1"
    ))
    .bind(kind.as_str())
    .bind(serial)
    .bind(at)
    .fetch_optional(conn)
    .await?)
}

/// Every status change of `serial`, oldest first.
pub async fn history(conn: &mut Conn, kind: HistoryKind, serial: &str) -> Result<Vec<HistoryRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM status_history WHERE kind = $1 AND serial = $2 ORDER BY id"
    ))
    .bind(kind.as_str())
    .bind(serial)
    .fetch_all(conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    async fn add(
        c: &mut Conn,
        kind: HistoryKind,
        serial: &str,
        at: i64,
        status: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO status_history (kind, serial, at, status, reason) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(kind.as_str())
        .bind(serial)
        .bind(at)
        .bind(status)
        .bind((status == "on-hold").then_some("certificateHold"))
        .execute(c)
        .await?;
        Ok(())
    }

    #[tokio::test]
    async fn the_status_at_a_time_is_the_last_change_up_to_it_and_ties_go_to_the_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        store
            .write(crate::store::job!(|c, _| {
                use HistoryKind::*;
                add(c, Certificate, "0A", 100, "on-hold").await?;
                // Released and held again within one second: the later row wins.
                add(c, Certificate, "0A", 200, "valid").await?;
                add(c, Certificate, "0A", 200, "on-hold").await?;
                add(c, Certificate, "0A", 300, "revoked").await?;
                // The same serial as an AC is another certificate.
                add(c, Attribute, "0A", 50, "revoked").await?;
                // Two instances a second apart: released at 200 by one, held again after that
                // by the other, whose clock says 199.
                add(c, Certificate, "0B", 100, "on-hold").await?;
                add(c, Certificate, "0B", 200, "valid").await?;
                add(c, Certificate, "0B", 199, "on-hold").await?;
                Ok(())
            }))
            .await
            .unwrap();
        let mut c = store.read().await.unwrap();
        let kind = HistoryKind::Certificate;
        let later = status_at(&mut c, kind, "0B", 250).await.unwrap().unwrap();
        assert_eq!(
            later.status,
            CertificateStatus::OnHold,
            "the last change made wins"
        );
        assert_eq!(status_at(&mut c, kind, "0A", 99).await.unwrap(), None);
        let held = status_at(&mut c, kind, "0A", 100).await.unwrap().unwrap();
        assert_eq!((held.at, held.status), (100, CertificateStatus::OnHold));
        assert_eq!(held.reason.as_deref(), Some("certificateHold"));
        let s = |r: Option<HistoryRow>| r.map(|r| (r.at, r.status));
        for (t, want) in [
            (199, (100, CertificateStatus::OnHold)),
            (200, (200, CertificateStatus::OnHold)),
            (299, (200, CertificateStatus::OnHold)),
            (300, (300, CertificateStatus::Revoked)),
            (i64::MAX, (300, CertificateStatus::Revoked)),
        ] {
            assert_eq!(
                s(status_at(&mut c, kind, "0A", t).await.unwrap()),
                Some(want),
                "{t}"
            );
        }
        assert_eq!(
            s(status_at(&mut c, HistoryKind::Attribute, "0A", 60)
                .await
                .unwrap()),
            Some((50, CertificateStatus::Revoked))
        );
        assert_eq!(status_at(&mut c, kind, "0C", 1000).await.unwrap(), None);
        let all: Vec<_> = history(&mut c, kind, "0A")
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.at, r.status.as_str()))
            .collect();
        assert_eq!(
            all,
            [
                (100, "on-hold"),
                (200, "valid"),
                (200, "on-hold"),
                (300, "revoked")
            ]
        );
        assert!(history(&mut c, kind, "0C").await.unwrap().is_empty());
    }
}
