//! Site settings as admins edit them: validated before they are stored.

use super::{DomainError, DomainResult, invalid, parse_name};
use crate::store::SiteSettings;

pub const MAX_GREETING: usize = 500;

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
pub fn parse_origin(input: &str) -> DomainResult<String> {
    let origin = input.trim().trim_end_matches('/');
    let bad = || {
        invalid(
            "allowed_origins",
            format!("`{origin}` is not an origin like https://shop.example.com (no path)"),
        )
    };
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split(':').next().unwrap_or("");
    let port_ok = match rest.split_once(':') {
        Some((_, port)) => port.parse::<u16>().is_ok(),
        None => true,
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !host_ok || !port_ok || rest.contains('/') {
        return Err(bad());
    }
    Ok(origin.to_ascii_lowercase())
}

pub fn parse_color(input: &str) -> DomainResult<String> {
    let color = input.trim();
    let hex = color.strip_prefix('#').unwrap_or("");
    if !(hex.len() == 3 || hex.len() == 6) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid("color", "Use a colour like #1f5fc4."));
    }
    Ok(color.to_ascii_lowercase())
}

/// Checks every field of a site's settings form.
pub fn parse_settings(
    name: &str,
    origins: &str,
    greeting: &str,
    color: &str,
    require_email: bool,
) -> DomainResult<SiteSettings> {
    let name = parse_name(name).map_err(|e| match e {
        DomainError::Invalid { message, .. } => invalid("site_name", message),
        other => other,
    })?;
    let allowed_origins = origins
        .split(|c: char| c == '\n' || c == ',' || c.is_whitespace())
        .filter(|o| !o.trim().is_empty())
        .map(parse_origin)
        .collect::<DomainResult<Vec<_>>>()?;
    let greeting = greeting.trim().to_string();
    if greeting.chars().count() > MAX_GREETING {
        return Err(invalid(
            "greeting",
            format!("Use at most {MAX_GREETING} characters."),
        ));
    }
    Ok(SiteSettings {
        name,
        allowed_origins,
        greeting,
        color: parse_color(color)?,
        require_email,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_and_normalised() {
        assert_eq!(
            parse_origin("https://Shop.Example.com/").unwrap(),
            "https://shop.example.com"
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:8081").unwrap(),
            "http://127.0.0.1:8081"
        );
        for bad in [
            "shop.example.com",
            "https://shop.example.com/path",
            "ftp://x",
            "https://",
            "https://a b",
            "http://x:99999",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn colours_are_hex() {
        assert_eq!(parse_color("#1F5FC4").unwrap(), "#1f5fc4");
        assert!(parse_color("blue").is_err());
        assert!(parse_color("#12345").is_err());
    }

    #[test]
    fn settings_split_origins_on_lines_commas_and_spaces() {
        let s = parse_settings(
            "Shop",
            "https://a.example\nhttps://b.example, http://c.example",
            "Hi",
            "#fff",
            true,
        )
        .unwrap();
        assert_eq!(s.allowed_origins.len(), 3);
        assert!(s.require_email);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever an admin types, a stored origin is one a browser
            /// could send: scheme, host, optional port, nothing else.
            #[test]
            fn an_accepted_origin_is_canonical(input in "(https?://)?[ -~]{0,30}") {
                if let Ok(origin) = parse_origin(&input) {
                    let rest = origin
                        .strip_prefix("https://")
                        .or_else(|| origin.strip_prefix("http://"));
                    prop_assert!(rest.is_some(), "{origin}");
                    let rest = rest.unwrap();
                    prop_assert!(!rest.is_empty() && !rest.contains('/'));
                    prop_assert!(!origin.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase()));
                    prop_assert_eq!(parse_origin(&origin).unwrap(), origin.clone());
                }
            }
        }
    }
}
