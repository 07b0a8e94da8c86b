//! What differs between the SQL backends, decided in one place: which
//! backend a URL names, and how a portable statement is spelled for it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Turns portable `?` placeholders into this backend's syntax.
    pub(super) fn placeholders(self, sql: &str) -> String {
        match self {
            Backend::Sqlite => sql.to_string(),
            Backend::Postgres => {
                let mut out = String::with_capacity(sql.len() + 16);
                let mut n = 0;
                let mut in_literal = false;
                for c in sql.chars() {
                    match c {
                        '\'' => {
                            in_literal = !in_literal;
                            out.push(c);
                        }
                        '?' if !in_literal => {
                            n += 1;
                            out.push('$');
                            out.push_str(&n.to_string());
                        }
                        _ => out.push(c),
                    }
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_placeholders_are_numbered_outside_literals() {
        let sql = "SELECT '?' FROM t WHERE a = ? AND b = ?";
        assert_eq!(
            Backend::Postgres.placeholders(sql),
            "SELECT '?' FROM t WHERE a = $1 AND b = $2"
        );
        assert_eq!(Backend::Sqlite.placeholders(sql), sql);
    }
}
