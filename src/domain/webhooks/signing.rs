//! How a delivery is signed: `Careline-Signature: t=<unix seconds>,v1=<hex
//! HMAC-SHA256(secret, t + "." + body)>`, as Stripe signs its webhooks, so
//! receivers' existing code and habits apply. The timestamp is signed too,
//! so that a receiver can refuse an old delivery replayed at it.

use crate::auth::hmac_sha256_hex;

pub const SIGNATURE_HEADER: &str = "Careline-Signature";

/// The hex HMAC-SHA256 of `timestamp.body` under the endpoint's secret.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    hmac_sha256_hex(secret, &format!("{timestamp}.{body}"))
}

/// The value of [`SIGNATURE_HEADER`].
pub fn signature_header(secret: &str, timestamp: i64, body: &str) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_what_python_computes() {
        // python3 -c "import hmac,hashlib; print(hmac.new(b'whsec_test',
        //   b'1700000000.{\"id\":1}', hashlib.sha256).hexdigest())"
        assert_eq!(
            signature_header("whsec_test", 1_700_000_000, r#"{"id":1}"#),
            "t=1700000000,v1=2f441ba4b3b2d50d28a9ab9d9fd8880376ecd1eb5d0435401553f5d8d0a5dcf8"
        );
        assert_ne!(
            sign("whsec_test", 1_700_000_001, r#"{"id":1}"#),
            sign("whsec_test", 1_700_000_000, r#"{"id":1}"#),
            "the time is signed with the body"
        );
    }
}
