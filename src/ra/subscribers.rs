//! Vetting: subscribers (people and organisations) and the identity evidence a clerk examined.
//! Vouch keeps the document's type, number, issuer, validity and optionally the SHA-256 of a scan;
//! never the scan itself.

use super::email::check_email;
use super::{new_id, rfc3339, Operator, Ra, Role};
use crate::audit::{self, Action, Event};
use crate::error::{Error, Result};
use crate::store::job;
use crate::store::subscribers::{self as rows, EvidenceRow, SubscriberRow};
use crate::x509::profile::SubscriberKind;
use crate::x509::subject::{checked_name, is_printable_string, UB_NAME};
use serde::Serialize;
use time::{Date, OffsetDateTime};
use unicode_normalization::UnicodeNormalization;

/// Most pieces of identity evidence given when a subscriber is registered.
pub const MAX_IDENTIFIERS: usize = 16;

/// Roles that may read subscribers and requests.
pub const READERS: [Role; 4] = [Role::Clerk, Role::Approver, Role::Admin, Role::Revoker];

/// Input for a new subscriber, as the clerk typed it.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    /// `person` or `organisation`.
    pub kind: String,
    /// Name, as certified.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Organisation (of a person).
    pub organisation: Option<String>,
    /// Identity evidence the clerk examined.
    pub identifiers: Vec<NewEvidence>,
}

#[derive(Debug, Clone)]
/// A piece of identity evidence a clerk examined.
pub struct NewEvidence {
    /// Type of document (passport, national-id, ...).
    pub doc_type: String,
    /// Its number.
    pub number: String,
    /// Who issued it.
    pub issuer: String,
    /// Its last valid day, YYYY-MM-DD.
    pub valid_until: String,
    /// SHA-256 of a scan of it, hex; never the scan.
    pub document_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
/// A piece of identity evidence as the API shows it.
pub struct EvidenceView {
    #[serde(rename = "type")]
    /// Type of document.
    pub doc_type: String,
    /// Its number.
    pub number: String,
    /// Who issued it.
    pub issuer: String,
    /// Its last valid day, YYYY-MM-DD.
    pub valid_until: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// SHA-256 of a scan of it, hex.
    pub document_sha256: Option<String>,
    /// Whether this evidence can support a request today.
    pub valid: bool,
    /// The clerk who recorded it.
    pub recorded_by: String,
    /// When, RFC 3339.
    pub recorded_at: String,
}

#[derive(Debug, Clone, Serialize)]
/// A subscriber as the API shows it.
pub struct SubscriberView {
    /// Subscriber identifier.
    pub id: String,
    /// `person` or `organisation`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Organisation.
    pub organisation: Option<String>,
    /// Identity evidence.
    pub identifiers: Vec<EvidenceView>,
    /// The clerk who registered it.
    pub created_by: String,
    /// When, RFC 3339.
    pub created_at: String,
}

pub(super) fn field(name: &str, msg: impl Into<String>) -> Error {
    Error::invalid("invalid_field", format!("{name}: {}", msg.into()))
}

fn text(name: &str, value: &str, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n == 0 || n > max {
        return Err(field(name, format!("must be 1..={max} characters")));
    }
    if let Some((i, c)) = value.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(field(
            name,
            format!(
                "contains the control character U+{:04X} at position {}",
                c as u32,
                i + 1
            ),
        ));
    }
    if value.trim() != value {
        return Err(field(name, "must not have leading or trailing spaces"));
    }
    Ok(())
}

/// A date field `name` as YYYY-MM-DD.
pub fn parse_date(name: &str, s: &str) -> Result<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).map_err(|_| field(name, "must be a date YYYY-MM-DD"))
}

/// Check a piece of evidence and put its issuer in the stored (NFC) form.
fn check_evidence(e: &mut NewEvidence) -> Result<()> {
    let ok_type = (1..=32).contains(&e.doc_type.len())
        && e.doc_type
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if !ok_type {
        return Err(field(
            "identifiers.type",
            "must be 1..=32 of [A-Za-z0-9_-], e.g. national-id, passport",
        ));
    }
    text("identifiers.number", &e.number, UB_NAME)?;
    if !is_printable_string(&e.number) {
        return Err(field(
            "identifiers.number",
            "may use letters, digits, spaces and '()+,-./:=?",
        ));
    }
    e.issuer = checked_name("identifiers.issuer", &e.issuer, 128)?;
    parse_date("identifiers.valid_until", &e.valid_until)?;
    if let Some(h) = &e.document_sha256 {
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(field(
                "identifiers.document_sha256",
                "must be 64 hex digits",
            ));
        }
    }
    Ok(())
}

impl NewSubscriber {
    /// Check the input and put the names in the form that is stored and certified (NFC).
    fn check(&mut self) -> Result<SubscriberKind> {
        let kind = SubscriberKind::parse(&self.kind)
            .ok_or_else(|| field("kind", "must be \"person\" or \"organisation\""))?;
        self.name = checked_name("name", &self.name, UB_NAME)?;
        if let Some(e) = &self.email {
            check_email(e)?;
        }
        if let Some(o) = &self.organisation {
            self.organisation = Some(checked_name("organisation", o, UB_NAME)?);
        }
        if self.identifiers.is_empty() {
            return Err(field(
                "identifiers",
                "at least one identity document is required",
            ));
        }
        if self.identifiers.len() > MAX_IDENTIFIERS {
            return Err(field("identifiers", format!("at most {MAX_IDENTIFIERS}")));
        }
        self.identifiers.iter_mut().try_for_each(check_evidence)?;
        Ok(kind)
    }
}

/// YYYY-MM-DD, the form evidence dates are stored in (so that they compare as text).
pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Evidence still valid on `today` (valid through its valid_until date).
pub fn evidence_valid(e: &EvidenceRow, today: Date) -> bool {
    parse_date("valid_until", &e.valid_until)
        .map(|d| d >= today)
        .unwrap_or(false)
}

fn view(s: SubscriberRow, evidence: Vec<EvidenceRow>, today: Date) -> SubscriberView {
    SubscriberView {
        identifiers: evidence
            .into_iter()
            .map(|e| EvidenceView {
                valid: evidence_valid(&e, today),
                doc_type: e.doc_type,
                number: e.number,
                issuer: e.issuer,
                valid_until: e.valid_until,
                document_sha256: e.document_sha256,
                recorded_by: e.recorded_by,
                recorded_at: rfc3339(e.recorded_at),
            })
            .collect(),
        id: s.id,
        kind: s.kind,
        name: s.name,
        email: s.email,
        organisation: s.organisation,
        created_by: s.created_by,
        created_at: rfc3339(s.created_at),
    }
}

impl Ra {
    /// Register a subscriber with their identity evidence; clerks only.
    pub async fn register_subscriber(
        &self,
        op: &Operator,
        mut input: NewSubscriber,
    ) -> Result<String> {
        self.authorize(op, Role::Clerk, "subscriber.create", None)
            .await?;
        let kind = match input.check() {
            Ok(kind) => kind,
            Err(e) => {
                let details = serde_json::json!({"error": e.code(), "message": e.to_string()});
                self.audit_refusal(Some(&op.id), Action::SubscriberRefused, None, details)
                    .await;
                return Err(e);
            }
        };
        let now: OffsetDateTime = self.now();
        let id = new_id("sub");
        let subscriber = SubscriberRow {
            id: id.clone(),
            kind: kind.as_str().to_string(),
            name: input.name.clone(),
            email: input.email.clone(),
            organisation: input.organisation.clone(),
            created_by: op.id.clone(),
            created_at: now.unix_timestamp(),
        };
        let evidence: Vec<EvidenceRow> = input
            .identifiers
            .iter()
            .map(|e| EvidenceRow {
                doc_type: e.doc_type.clone(),
                number: e.number.clone(),
                issuer: e.issuer.clone(),
                valid_until: parse_date("valid_until", &e.valid_until)
                    .map(format_date)
                    .unwrap_or_else(|_| e.valid_until.clone()),
                document_sha256: e.document_sha256.as_ref().map(|h| h.to_ascii_lowercase()),
                recorded_by: op.id.clone(),
                recorded_at: now.unix_timestamp(),
            })
            .collect();
        let summary: Vec<_> = input
            .identifiers
            .iter()
            .map(|e| serde_json::json!({"type": e.doc_type, "number": e.number, "issuer": e.issuer, "valid_until": e.valid_until}))
            .collect();
        let event = Event::new(
            Some(&op.id),
            Action::SubscriberRegistered,
            Some(&id),
            serde_json::json!({"kind": kind.as_str(), "name": input.name, "email": input.email,
                "organisation": input.organisation, "evidence": summary}),
        );
        self.store()
            .write(job!(|c, log| {
                rows::insert(c, &subscriber).await?;
                for e in &evidence {
                    rows::insert_evidence(c, &subscriber.id, e).await?;
                }
                audit::record(log, now, event);
                Ok(())
            }))
            .await?;
        Ok(id)
    }

    async fn authorize_read(&self, op: &Operator, target: Option<&str>) -> Result<()> {
        self.authorize_any(op, &READERS, "subscriber.read", target)
            .await
    }

    /// Record another identity document for an existing subscriber (e.g. a renewed ID card).
    pub async fn add_evidence(
        &self,
        op: &Operator,
        subscriber_id: &str,
        mut e: NewEvidence,
    ) -> Result<SubscriberView> {
        self.authorize(
            op,
            Role::Clerk,
            "subscriber.add_evidence",
            Some(subscriber_id),
        )
        .await?;
        if let Err(err) = check_evidence(&mut e) {
            let details = serde_json::json!({"error": err.code(), "message": err.to_string()});
            self.audit_refusal(
                Some(&op.id),
                Action::SubscriberRefused,
                Some(subscriber_id),
                details,
            )
            .await;
            return Err(err);
        }
        let now = self.now();
        let row = EvidenceRow {
            valid_until: parse_date("valid_until", &e.valid_until).map(format_date)?,
            doc_type: e.doc_type,
            number: e.number,
            issuer: e.issuer,
            document_sha256: e.document_sha256.map(|h| h.to_ascii_lowercase()),
            recorded_by: op.id.clone(),
            recorded_at: now.unix_timestamp(),
        };
        let event = Event::new(
            Some(&op.id),
            Action::SubscriberEvidenceAdded,
            Some(subscriber_id),
            serde_json::json!({"type": row.doc_type, "number": row.number, "issuer": row.issuer, "valid_until": row.valid_until}),
        );
        let id = subscriber_id.to_string();
        self.store()
            .write(job!(|c, log| {
                if rows::get(c, &id).await?.is_none() {
                    return Err(Error::NotFound("subscriber"));
                }
                if rows::evidence(c, &id).await?.len() >= MAX_IDENTIFIERS {
                    return Err(field(
                        "identifiers",
                        format!("at most {MAX_IDENTIFIERS} per subscriber"),
                    ));
                }
                rows::insert_evidence(c, &id, &row).await?;
                audit::record(log, now, event);
                Ok(())
            }))
            .await?;
        self.subscriber(op, subscriber_id).await
    }

    /// One subscriber, with their evidence.
    pub async fn subscriber(&self, op: &Operator, id: &str) -> Result<SubscriberView> {
        self.authorize_read(op, Some(id)).await?;
        let mut c = self.store().read().await?;
        let s = rows::get(&mut c, id)
            .await?
            .ok_or(Error::NotFound("subscriber"))?;
        let evidence = rows::evidence(&mut c, id).await?;
        Ok(view(s, evidence, self.now().date()))
    }

    /// Subscribers whose name, e-mail address, organisation or evidence number contains `q`
    /// (ignoring case), newest first.
    pub async fn search_subscribers(
        &self,
        op: &Operator,
        q: &str,
        limit: i64,
    ) -> Result<Vec<SubscriberView>> {
        self.authorize_read(op, None).await?;
        if q.chars().count() > 128 {
            return Err(field("q", "at most 128 characters"));
        }
        // Names are stored in NFC: search in the same form.
        let q: String = q.nfc().collect();
        let mut c = self.store().read().await?;
        let found = rows::search(&mut c, &q, limit.clamp(1, 200)).await?;
        let today = self.now().date();
        let mut out = Vec::with_capacity(found.len());
        for s in found {
            let evidence = rows::evidence(&mut c, &s.id).await?;
            out.push(view(s, evidence, today));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> NewSubscriber {
        NewSubscriber {
            kind: "person".into(),
            name: "Li Wei".into(),
            email: Some("li.wei@example.org".into()),
            organisation: None,
            identifiers: vec![NewEvidence {
                doc_type: "national-id".into(),
                number: "110101199003070011".into(),
                issuer: "Beijing PSB".into(),
                valid_until: "2035-01-01".into(),
                document_sha256: None,
            }],
        }
    }

    #[test]
    fn accepts_a_well_formed_person() {
        assert_eq!(person().check().unwrap(), SubscriberKind::Person);
    }

    #[test]
    fn field_rules() {
        type Mutation = Box<dyn Fn(&mut NewSubscriber)>;
        let cases: Vec<Mutation> = vec![
            Box::new(|s| s.kind = "robot".into()),
            Box::new(|s| s.name = String::new()),
            Box::new(|s| s.name = "x".repeat(65)),
            Box::new(|s| s.email = Some("not-an-email".into())),
            Box::new(|s| s.email = Some("a@b.c\r\nBcc: x@y.z".into())),
            Box::new(|s| s.identifiers.clear()),
            Box::new(|s| s.identifiers[0].valid_until = "2035-13-01".into()),
            Box::new(|s| s.identifiers[0].valid_until = "01/01/2035".into()),
            Box::new(|s| s.identifiers[0].number = "12_34".into()),
            Box::new(|s| s.identifiers[0].doc_type = "national id".into()),
            Box::new(|s| s.identifiers[0].document_sha256 = Some("abc".into())),
        ];
        for (i, mutate) in cases.iter().enumerate() {
            let mut s = person();
            mutate(&mut s);
            assert_eq!(s.check().unwrap_err().code(), "invalid_field", "case {i}");
        }
    }

    #[test]
    fn names_are_checked_and_stored_in_nfc() {
        let mut s = person();
        s.name = "Ange\u{300}le Dubois".into();
        s.organisation = Some("Mairie de Ville\u{301}".into());
        s.identifiers[0].issuer = "Pre\u{301}fecture".into();
        s.check().unwrap();
        assert_eq!(s.name, "Angèle Dubois");
        assert_eq!(s.organisation.as_deref(), Some("Mairie de Villé"));
        assert_eq!(s.identifiers[0].issuer, "Préfecture");

        type Mutation = Box<dyn Fn(&mut NewSubscriber)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|s| s.name = "Ad\u{200B}min".into()),
                "name: contains U+200B ZERO WIDTH SPACE at position 3",
            ),
            (
                Box::new(|s| s.name = "\u{410}dmin".into()),
                "name: mixes scripts",
            ),
            (
                Box::new(|s| s.organisation = Some("City\u{202E}Hall".into())),
                "organisation: contains U+202E RIGHT-TO-LEFT OVERRIDE at position 5",
            ),
            (
                Box::new(|s| s.identifiers[0].issuer = "\u{FEFF}PSB".into()),
                "identifiers.issuer: contains U+FEFF",
            ),
            (
                Box::new(|s| s.identifiers[0].number = "11\u{0}1".into()),
                "identifiers.number: contains the control character U+0000 at position 3",
            ),
        ];
        for (mutate, expected) in cases {
            let mut s = person();
            mutate(&mut s);
            let err = s.check().unwrap_err();
            assert_eq!(err.code(), "invalid_field");
            assert!(err.to_string().starts_with(expected), "{err}");
        }
    }

    #[test]
    fn evidence_is_valid_through_its_last_day() {
        let e = EvidenceRow {
            doc_type: "passport".into(),
            number: "E1".into(),
            issuer: "X".into(),
            valid_until: "2030-06-30".into(),
            document_sha256: None,
            recorded_by: "op".into(),
            recorded_at: 0,
        };
        assert!(evidence_valid(&e, time::macros::date!(2030 - 06 - 30)));
        assert!(!evidence_valid(&e, time::macros::date!(2030 - 07 - 01)));
    }
}
