//! The rules for a subscriber's e-mail address, as it goes into a certificate's rfc822Name.

use super::subscribers::field;
use crate::error::Result;

/// RFC 5321 §4.5.3.1: local part at most 64 octets, domain at most 255, and a forward-path of
/// at most 256 octets with its angle brackets, so 254 for the address.
const MAX_EMAIL: usize = 254;
const MAX_LOCAL_PART: usize = 64;

/// An address for an rfc822Name: IA5 (ASCII) only, as a plain `local@domain` mailbox with a
/// dot-atom local part and a host name of letters, digits and hyphens. The `email_address`
/// crate parses it (RFC 5322 / 5321); the narrower rules here are what relying parties and
/// RFC 5280 §4.2.1.6 expect of a certificate's rfc822Name.
pub(super) fn check_email(email: &str) -> Result<()> {
    let bad = |msg: String| Err(field("email", msg));
    if let Some((i, c)) = email.chars().enumerate().find(|(_, c)| !c.is_ascii()) {
        return bad(format!(
            "contains the non-ASCII character U+{:04X} at position {}; an rfc822Name is ASCII \
             only (write an internationalised domain in its xn-- form)",
            c as u32,
            i + 1
        ));
    }
    if let Some((i, c)) = email
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_ascii_control() || *c == ' ')
    {
        return bad(format!(
            "contains U+{:04X} at position {}; an address has no spaces or control characters",
            c as u32,
            i + 1
        ));
    }
    if email.len() > MAX_EMAIL {
        return bad(format!(
            "is {} characters; RFC 5321 allows at most {MAX_EMAIL}",
            email.len()
        ));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return bad("must be an address like name@example.org".into());
    };
    if local.len() > MAX_LOCAL_PART {
        return bad(format!(
            "the part before @ is {} characters; RFC 5321 allows at most {MAX_LOCAL_PART}",
            local.len()
        ));
    }
    if local.starts_with('"') {
        return bad("quoted local parts are not accepted; use name@example.org".into());
    }
    let options = email_address::Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    if let Err(e) = email_address::EmailAddress::parse_with_options(email, options) {
        let why = match e {
            email_address::Error::DomainTooFew => {
                "the domain must have at least two labels, like example.org".to_string()
            }
            email_address::Error::UnsupportedDomainLiteral => {
                "an address literal such as [192.0.2.1] is not accepted; use a host name"
                    .to_string()
            }
            other => other.to_string().trim_end_matches('.').to_lowercase(),
        };
        return bad(format!("is not a valid address: {why}"));
    }
    // Host names: letters, digits and hyphens (RFC 1035 §2.3.1, RFC 5321 §4.1.2).
    if let Some(c) = domain
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.')))
    {
        return bad(format!(
            "the domain contains {c:?}; a host name has only letters, digits, hyphens and dots"
        ));
    }
    if domain
        .split('.')
        .any(|l| l.starts_with('-') || l.ends_with('-'))
    {
        return bad("a domain label must not start or end with a hyphen".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses() {
        let long_local = format!("{}@example.org", "a".repeat(64));
        let label = "d".repeat(63);
        let long_domain = format!("a@{label}.{label}.{label}.{}.org", "d".repeat(56));
        assert_eq!(long_domain.len(), 254);
        for good in [
            "li.wei@example.org",
            "LI.Wei+tag@Mail.Example.ORG",
            "o'brien@example.ie",
            "x_y-z@sub-1.example.co.uk",
            "a@xn--fiqs8s.cn",
            &long_local,
            &long_domain,
        ] {
            assert!(check_email(good).is_ok(), "{good}: {:?}", check_email(good));
        }
        let too_long_local = format!("{}@example.org", "a".repeat(65));
        let too_long = format!("a{long_domain}");
        let long_label = format!("a@{}.org", "d".repeat(64));
        for (bad, why) in [
            ("not-an-email", "like name@example.org"),
            ("a@b.c\r\nBcc: x@y.z", "U+000D at position 6"),
            ("li wei@example.org", "U+0020 at position 3"),
            (
                "李伟@example.org",
                "non-ASCII character U+674E at position 1",
            ),
            ("li@例子.中国", "non-ASCII character U+4F8B at position 4"),
            ("li@localhost", "at least two labels"),
            ("li@[192.0.2.1]", "address literal"),
            ("\"li wei\"@example.org", "U+0020"),
            ("\"li\"@example.org", "quoted local parts"),
            ("Li Wei <li@example.org>", "U+0020"),
            ("li..wei@example.org", "not a valid address"),
            (".li@example.org", "not a valid address"),
            ("li@example..org", "not a valid address"),
            ("li@-example.org", "not a valid address"),
            ("li@exa_mple.org", "the domain contains '_'"),
            ("li@example.org.", "not a valid address"),
            ("@example.org", "not a valid address"),
            ("li@", "not a valid address"),
            (&too_long_local, "the part before @ is 65 characters"),
            (&too_long, "is 255 characters; RFC 5321 allows at most 254"),
            (&long_label, "sub-domain is too long"),
        ] {
            let err = check_email(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_field");
            let msg = err.to_string();
            assert!(
                msg.starts_with("email: ") && msg.contains(why),
                "{bad}: {msg}"
            );
        }
    }
}
