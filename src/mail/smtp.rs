//! Email over SMTP (lettre, async on tokio): Microsoft 365, Gmail, Amazon
//! SES, a company relay. One connection per email, TLS through rustls with
//! the ring provider `adapter::install_tls` installs, checked against the
//! system's roots or only the CA in `smtp_ca_file`.
//!
//! What the server answers decides what the worker does: a 4xx reply, or
//! no answer at all (network, TLS, timeout), is tried again; a 5xx reply is
//! a rejection, kept with the server's words for an admin.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::{self, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{BoxFuture, Email, Mailer, SendError};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connect, then `STARTTLS` before anything else (port 587); a
    /// server that does not offer it is not used.
    StartTls,
    /// TLS from the first byte (port 465, "SMTPS").
    Tls,
    /// No TLS at all: only for a relay on this machine.
    None,
}

/// Where and how to send. `password` is a secret: this type prints none of
/// its fields' values but the host's and port's.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// User and password for `AUTH PLAIN` or `AUTH LOGIN`; `None`: no AUTH.
    pub credentials: Option<(String, String)>,
    /// A PEM file of the CA(s) trusted instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Longest one delivery may take, from connecting to the server's
    /// answer to the message (lettre bounds only the connection itself).
    pub timeout: Duration,
    /// The name this client gives in `EHLO` (the host of `public_url`).
    pub hello_name: Option<String>,
    pub from_email: String,
    pub from_name: String,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field(
                "user",
                &self.credentials.as_ref().map(|(user, _)| user.as_str()),
            )
            .field("password", &self.credentials.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl Smtp {
    /// Builds the transport (reading the CA file and the system's roots
    /// now); connects only when an email is sent.
    pub fn new(settings: &SmtpSettings) -> Result<Smtp, String> {
        crate::adapter::install_tls();
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str())
                .port(settings.port)
                .timeout(Some(settings.timeout));
        if settings.security != Security::None {
            let tls = tls_parameters(settings)?;
            builder = builder.tls(match settings.security {
                Security::Tls => Tls::Wrapper(tls),
                _ => Tls::Required(tls),
            });
        }
        if let Some((user, password)) = &settings.credentials {
            builder = builder
                .credentials(Credentials::new(user.clone(), password.clone()))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        if let Some(name) = &settings.hello_name {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        Ok(Smtp {
            transport: builder.build(),
            from: sender(&settings.from_email, &settings.from_name)?,
            timeout: settings.timeout,
        })
    }
}

/// `From`: the address, and the name on one line (lettre panics while
/// writing a name with a line break in it; none reaches it).
pub fn sender(email: &str, name: &str) -> Result<Mailbox, String> {
    let address: Address = email
        .parse()
        .map_err(|e| format!("the sender `{email}` is not an address: {e}"))?;
    let name = one_line(name);
    Ok(Mailbox::new((!name.is_empty()).then_some(name), address))
}

fn tls_parameters(settings: &SmtpSettings) -> Result<TlsParameters, String> {
    let mut tls = TlsParameters::builder(settings.host.clone());
    if let Some(file) = &settings.ca_file {
        let pem = std::fs::read(file)
            .map_err(|e| format!("cannot read the CA file `{}`: {e}", file.display()))?;
        let ca = Certificate::from_pem(&pem)
            .map_err(|e| format!("the CA file `{}` is not PEM: {e}", file.display()))?;
        tls = tls
            .certificate_store(CertificateStore::None)
            .add_root_certificate(ca);
    }
    tls.build_rustls()
        .map_err(|e| format!("TLS for {}: {e}", settings.host))
}

/// A header value on one line: a CR, LF or other control character (which
/// could start a header of its own) becomes a space. lettre encodes what it
/// is given as well; this makes it so whatever reaches it.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// The MIME message for `email`, from `from`: one recipient, the threading
/// headers as they are, text and HTML as alternatives.
pub fn message(from: &Mailbox, email: &Email) -> Result<Message, SendError> {
    let address = |what: &str, text: &str| {
        text.parse::<Address>()
            .map_err(|e| SendError::Rejected(format!("the {what} `{text}` is not an address: {e}")))
    };
    let mut builder = Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, address("recipient", &email.to)?))
        .subject(one_line(&email.subject));
    let threading = &email.threading;
    if let Some(reply_to) = &threading.reply_to {
        builder = builder.reply_to(Mailbox::new(None, address("Reply-To", reply_to)?));
    }
    if let Some(id) = &threading.message_id {
        builder = builder.header(header::MessageId::from(one_line(id)));
    }
    if let Some(id) = &threading.in_reply_to {
        builder = builder
            .header(header::InReplyTo::from(one_line(id)))
            .header(header::References::from(one_line(id)));
    }
    if threading.auto_replied {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-replied".to_string(),
        ));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| SendError::Rejected(format!("the email cannot be built: {e}")))
}

/// A 5xx reply is the server's final word; anything else (a 4xx reply, a
/// connection, TLS or protocol failure, a timeout) may go better later.
fn send_error(error: &lettre::transport::smtp::Error) -> SendError {
    let detail = std::error::Error::source(error)
        .map(|source| source.to_string())
        .unwrap_or_default();
    let reason = match error.status() {
        Some(code) => format!("SMTP server answered {code}: {detail}"),
        None => format!("SMTP server unreachable or failed: {error}"),
    };
    if error.is_permanent() {
        SendError::Rejected(reason)
    } else {
        SendError::Retry {
            after: None,
            reason,
        }
    }
}

impl Mailer for Smtp {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let message = message(&self.from, email)?;
            // A server that stops answering half way must not hold the
            // worker (and the email's lease) for ever.
            match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
                Ok(sent) => sent.map(|_| ()).map_err(|e| send_error(&e)),
                Err(_) => Err(SendError::Retry {
                    after: None,
                    reason: format!(
                        "SMTP server did not finish within {} ms",
                        self.timeout.as_millis()
                    ),
                }),
            }
        })
    }

    fn name(&self) -> &'static str {
        "smtp"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::Threading;

    fn email(subject: &str) -> Email {
        Email {
            to: "grace@example.com".into(),
            subject: subject.into(),
            text: "Hello".into(),
            html: "<p>Hello</p>".into(),
            threading: Threading {
                message_id: Some("<careline.7.c42@shop.example>".into()),
                in_reply_to: Some("<abc@mail.example>".into()),
                reply_to: Some("support+c42-x@shop.example".into()),
                auto_replied: true,
            },
        }
    }

    fn from() -> Mailbox {
        sender("support@shop.example", "Support\r\nBcc: evil@example.com").unwrap()
    }

    #[test]
    fn the_message_has_one_recipient_and_the_threading_headers() {
        let message = message(&from(), &email("Re: your request")).unwrap();
        assert_eq!(message.envelope().to().len(), 1);
        let text = String::from_utf8(message.formatted()).unwrap();
        for line in [
            "Message-ID: <careline.7.c42@shop.example>\r\n",
            "In-Reply-To: <abc@mail.example>\r\n",
            "References: <abc@mail.example>\r\n",
            "Reply-To: support+c42-x@shop.example\r\n",
            "Auto-Submitted: auto-replied\r\n",
            "Content-Type: multipart/alternative;",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }

    #[test]
    fn a_line_break_in_a_subject_or_name_starts_no_header() {
        let email = email("Hello\r\nBcc: evil@example.com\nX-Evil: 1");
        let message = message(&from(), &email).unwrap();
        assert_eq!(message.envelope().to().len(), 1);
        let text = String::from_utf8(message.formatted()).unwrap();
        let head = text.split("\r\n\r\n").next().unwrap();
        for line in head.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            assert!(
                !lower.starts_with("bcc:") && !lower.starts_with("x-evil:"),
                "injected header {line:?} in:\n{head}"
            );
        }
    }

    #[test]
    fn a_recipient_that_is_not_one_address_is_rejected() {
        let mut email = email("Hi");
        email.to = "grace@example.com\r\nRCPT TO:<evil@example.com>".into();
        assert!(matches!(
            message(&from(), &email),
            Err(SendError::Rejected(_))
        ));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let settings = SmtpSettings {
            host: "smtp.example.com".into(),
            port: 587,
            security: Security::StartTls,
            credentials: Some(("careline".into(), "smtp-very-secret".into())),
            ca_file: None,
            timeout: Duration::from_secs(5),
            hello_name: None,
            from_email: "support@example.com".into(),
            from_name: "Support".into(),
        };
        let shown = format!("{settings:?}");
        assert!(shown.contains("careline"), "{shown}");
        assert!(!shown.contains("smtp-very-secret"), "{shown}");
    }
}
