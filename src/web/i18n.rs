//! The console's languages: English and Simplified Chinese, from plain TOML catalogs embedded in
//! the binary. The language is `?lang=` (remembered in a cookie), else the cookie, else the
//! browser's Accept-Language, else English. Dates are shown in the language's own style.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Simplified Chinese.
    ZhCn,
}

/// One catalog: key → text.
pub type Catalog = BTreeMap<String, String>;

const EN: &str = include_str!("i18n/en.toml");
const ZH_CN: &str = include_str!("i18n/zh-CN.toml");

fn parse(text: &str) -> Catalog {
    // The catalogs are part of the binary and checked by the tests below; a broken one shows
    // its keys rather than stopping the server.
    toml::from_str(text).unwrap_or_default()
}

impl Lang {
    /// The language's tag, as in `?lang=` and `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The language a tag names (`zh-CN`, `zh`, `zh-Hans…`, `en…`), ignoring case.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag == "zh" || tag.starts_with("zh-cn") || tag.starts_with("zh-hans") || tag == "zh-sg" {
            Some(Lang::ZhCn)
        } else if tag == "en" || tag.starts_with("en-") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The best language for an Accept-Language header (highest q first; English when none
    /// fits).
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',').take(32) {
            let mut fields = part.split(';');
            let tag = fields.next().unwrap_or("");
            let q = fields
                .find_map(|f| f.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Lang::from_tag(tag) {
                if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    /// This language's catalog.
    pub fn catalog(self) -> &'static Catalog {
        static CATALOGS: OnceLock<(Catalog, Catalog)> = OnceLock::new();
        let (en, zh) = CATALOGS.get_or_init(|| (parse(EN), parse(ZH_CN)));
        match self {
            Lang::En => en,
            Lang::ZhCn => zh,
        }
    }

    /// The text of `key`, or the key itself when the catalog lacks it.
    pub fn t(self, key: &str) -> &str {
        match self.catalog().get(key) {
            Some(text) => text.as_str(),
            None => key,
        }
    }

    /// A date and time (RFC 3339, UTC) in this language's style; the input as it is when it
    /// does not parse.
    pub fn datetime(self, rfc3339: &str) -> String {
        use time::format_description::well_known::Rfc3339;
        let Ok(t) = time::OffsetDateTime::parse(rfc3339, &Rfc3339) else {
            return rfc3339.to_string();
        };
        let t = t.to_offset(time::UtcOffset::UTC);
        match self {
            Lang::En => {
                const MONTHS: [&str; 12] = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                    "Dec",
                ];
                format!(
                    "{} {} {}, {:02}:{:02} UTC",
                    t.day(),
                    MONTHS[usize::from(u8::from(t.month())) - 1],
                    t.year(),
                    t.hour(),
                    t.minute()
                )
            }
            Lang::ZhCn => format!(
                "{}年{}月{}日 {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_audit_action_is_named_in_both_languages() {
        for lang in [Lang::En, Lang::ZhCn] {
            for a in crate::audit::Action::ALL {
                let key = format!("audit.{}", a.as_str());
                assert!(
                    lang.catalog().get(&key).is_some_and(|t| !t.is_empty()),
                    "{} lacks {key}",
                    lang.tag()
                );
            }
        }
    }

    #[test]
    fn both_catalogs_have_the_same_keys_and_no_empty_text() {
        let en = parse(EN);
        let zh = parse(ZH_CN);
        assert!(en.len() > 50, "the English catalog parses: {}", en.len());
        let ek: Vec<&String> = en.keys().collect();
        let zk: Vec<&String> = zh.keys().collect();
        let only_en: Vec<_> = ek.iter().filter(|k| !zh.contains_key(**k)).collect();
        let only_zh: Vec<_> = zk.iter().filter(|k| !en.contains_key(**k)).collect();
        assert!(
            only_en.is_empty() && only_zh.is_empty(),
            "en only: {only_en:?}; zh-CN only: {only_zh:?}"
        );
        for (k, v) in en.iter().chain(zh.iter()) {
            assert!(!v.trim().is_empty(), "{k} is empty");
        }
        assert_ne!(en.get("login_title"), zh.get("login_title"));
    }

    #[test]
    fn the_language_comes_from_accept_language_by_quality() {
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Lang::ZhCn
        );
        assert_eq!(
            Lang::from_accept_language("en-GB,en;q=0.9,zh;q=0.8"),
            Lang::En
        );
        assert_eq!(Lang::from_accept_language("fr-FR, zh;q=0.5"), Lang::ZhCn);
        assert_eq!(Lang::from_accept_language("de"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
        assert_eq!(Lang::from_tag("zh-cn"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_tag("xx"), None);
    }

    #[test]
    fn dates_are_in_the_language_s_style() {
        let t = "2026-11-29T12:05:09Z";
        assert_eq!(Lang::En.datetime(t), "29 Nov 2026, 12:05 UTC");
        assert_eq!(Lang::ZhCn.datetime(t), "2026年11月29日 12:05 UTC");
        assert_eq!(Lang::En.datetime("soon"), "soon");
    }
}
