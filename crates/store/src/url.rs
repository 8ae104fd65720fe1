//! A PostgreSQL database URL that keeps its password to itself: `Debug` and `describe` show the
//! URL with the password (in the user info or a `password` query parameter) replaced.

use crate::{Result, StoreError};

const REDACTED: &str = "***";

#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    url: String,
    shown: String,
}

impl PostgresUrl {
    /// Accepts `postgres://` and `postgresql://` URLs with a host. The parse error never repeats
    /// the URL (it may hold a password).
    pub fn parse(text: &str) -> Result<PostgresUrl> {
        let parsed = ::url::Url::parse(text).map_err(|e| {
            StoreError::Open(format!(
                "the PostgreSQL database URL is not valid ({e}); write postgres://user:password@host:5432/database"
            ))
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(StoreError::Open(format!(
                "the database URL's scheme `{}` is not a PostgreSQL one",
                parsed.scheme()
            )));
        }
        let has_socket_host = parsed.query_pairs().any(|(k, _)| k == "host");
        if parsed.host_str().is_none_or(str::is_empty) && !has_socket_host {
            return Err(StoreError::Open(
                "the PostgreSQL database URL names no host; write postgres://user:password@host:5432/database"
                    .to_owned(),
            ));
        }
        Ok(PostgresUrl {
            url: text.to_owned(),
            shown: redact(parsed),
        })
    }

    /// The URL to connect with, password included: for the driver only.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL without its password, for messages and logs.
    pub fn describe(&self) -> &str {
        &self.shown
    }
}

/// Any database URL as it may be shown: the password (user info or `password` query parameter)
/// replaced; a URL that does not parse is not repeated at all.
pub fn redact_database_url(text: &str) -> String {
    match ::url::Url::parse(text) {
        Ok(url) => redact(url),
        Err(_) => "[a database URL that does not parse]".to_owned(),
    }
}

fn redact(mut url: ::url::Url) -> String {
    if url.password().is_some() {
        let _ = url.set_password(Some(REDACTED));
    }
    if url.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PostgresUrl").field(&self.shown).finish()
    }
}

impl std::fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        for text in [
            "postgres://latchkey:s3cr%3Aet-pw@db.example:5432/latchkey",
            "postgresql://latchkey:s3cr%3Aet-pw@db.example/latchkey?sslmode=require",
            "postgres://latchkey@db.example/latchkey?password=s3cr%3Aet-pw&application_name=x",
        ] {
            let url = PostgresUrl::parse(text).unwrap();
            for shown in [
                format!("{url:?}"),
                url.to_string(),
                url.describe().to_owned(),
            ] {
                assert!(!shown.contains("s3cr"), "{shown}");
                assert!(shown.contains("db.example"), "{shown}");
            }
            assert_eq!(url.expose(), text);
        }
    }

    #[test]
    fn any_database_url_is_shown_without_its_password() {
        assert_eq!(
            redact_database_url("postgres://u:pw@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            redact_database_url("sqlite:///tmp/x.db"),
            "sqlite:///tmp/x.db"
        );
        assert!(!redact_database_url("postgres://u:pw@[::1/db").contains("pw"));
    }

    #[test]
    fn a_bad_url_is_refused_without_repeating_it() {
        let err = PostgresUrl::parse("postgres://user:s3cret@[::1/db").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let err = PostgresUrl::parse("postgres:///db").unwrap_err();
        assert!(err.to_string().contains("names no host"), "{err}");
        PostgresUrl::parse("postgres:///db?host=/run/postgresql").unwrap();
    }
}
