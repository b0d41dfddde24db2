//! TLS to the upstream PostgreSQL, with libpq's meaning of the URL's `sslmode` and
//! `sslrootcert` (tokio-postgres itself knows only `disable|prefer|require` and no root file):
//!
//! | `sslmode` | encrypted | certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers TLS (TCP only) | no |
//! | `require` | always (else the connection fails) | no |
//! | `verify-ca` | always | chain up to a trusted root |
//! | `verify-full` | always | chain, and the host name (or IP) is the certificate's |
//!
//! Trusted roots: the PEM file `sslrootcert=PATH`, or the system's (`sslrootcert=system`, and
//! by default). Unix-socket connections never use TLS (as libpq).
//!
//! rustls with ring (no system TLS library linked: the static library and the bindings'
//! libraries stay self-contained), through tokio-postgres-rustls.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, Result};

/// How the certificate is checked (`sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// `disable`, `prefer`, `require`: encryption without authentication.
    None,
    /// `verify-ca`.
    Chain,
    /// `verify-full`.
    ChainAndName,
}

/// The URL for tokio-postgres (the TLS parameters it does not know taken out, `verify-*` as
/// `require` so it never falls back to plain text) and the TLS connector for it.
pub(crate) fn split(url: &str) -> Result<(String, MakeRustlsConnect)> {
    let (rest, mode, root) = take_tls_params(url)?;
    let check = match mode.as_deref() {
        None | Some("disable" | "prefer" | "require") => Check::None,
        Some("verify-ca") => Check::Chain,
        Some("verify-full") => Check::ChainAndName,
        Some(other) => {
            return Err(invalid(format!(
                "sslmode={other}: expected disable, prefer, require, verify-ca or verify-full"
            )));
        }
    };
    let driver_mode = match mode.as_deref() {
        Some("verify-ca" | "verify-full") => Some("require"),
        other => other,
    };
    let rest = match driver_mode {
        Some(m) => with_param(&rest, "sslmode", m),
        None => rest,
    };
    Ok((rest, connector(check, root)?))
}

fn invalid(reason: String) -> Error {
    Error::invalid("upstream", reason)
}

/// Removes `sslmode` and `sslrootcert` from a `postgresql://` URL's query or a `key=value`
/// string; returns what is left and their values.
fn take_tls_params(url: &str) -> Result<(String, Option<String>, Option<String>)> {
    let (mut mode, mut root) = (None, None);
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if is_url {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), None, None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", v)) => mode = Some(percent_decode(v)?),
                Some(("sslrootcert", v)) => root = Some(percent_decode(v)?),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, mode, root));
    }
    // key=value form; the two values taken out must not be quoted.
    let mut kept = Vec::new();
    for token in url.split_whitespace() {
        match token.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_owned()),
            Some(("sslrootcert", v)) => root = Some(v.to_owned()),
            _ => kept.push(token),
        }
    }
    Ok((kept.join(" "), mode, root))
}

/// Adds `name=value` to a URL's query or a `key=value` string.
fn with_param(url: &str, name: &str, value: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{name}={value}")
    } else {
        format!("{url} {name}={value}")
    }
}

fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid(format!("bad percent-encoding in {text:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(format!("{text:?} is not UTF-8 once decoded")))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The connector for `check`, trusting the roots of `root` (a PEM file, or `system`/absent:
/// the system's).
fn connector(check: Check, root: Option<String>) -> Result<MakeRustlsConnect> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS setup: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::None => Arc::new(Unchecked(provider.signature_verification_algorithms)),
        Check::Chain | Check::ChainAndName => {
            let roots = Arc::new(roots(root)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| invalid(format!("TLS roots: {e}")))?;
            if check == Check::Chain {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        }
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn roots(root: Option<String>) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match root.as_deref() {
        None | Some("system") => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = store.add(cert);
            }
            if store.is_empty() {
                return Err(invalid(
                    "sslmode=verify-ca/verify-full: no system root certificates found; name a root file with sslrootcert=PATH".into(),
                ));
            }
        }
        Some(path) => {
            let path = PathBuf::from(path);
            let certs = CertificateDer::pem_file_iter(&path)
                .map_err(|e| invalid(format!("sslrootcert {}: {e}", path.display())))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| invalid(format!("sslrootcert {}: {e}", path.display())))?;
                store
                    .add(cert)
                    .map_err(|e| invalid(format!("sslrootcert {}: {e}", path.display())))?;
            }
            if store.is_empty() {
                return Err(invalid(format!(
                    "sslrootcert {} holds no PEM certificate",
                    path.display()
                )));
            }
        }
    }
    Ok(store)
}

/// `sslmode=require` (and `prefer`): the connection is encrypted, the server not
/// authenticated (libpq's meaning); the handshake signatures are still checked.
#[derive(Debug)]
struct Unchecked(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain up to a trusted root, whatever name the certificate has.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_both_forms() {
        let (rest, mode, root) = take_tls_params(
            "postgresql://u@db:5432/kw?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Froot.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgresql://u@db:5432/kw?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/etc/root.pem"));
        let (rest, mode, root) =
            take_tls_params("host=db user=u sslmode=require dbname=kw").unwrap();
        assert_eq!(rest, "host=db user=u dbname=kw");
        assert_eq!(mode.as_deref(), Some("require"));
        assert_eq!(root, None);
        assert_eq!(
            with_param("postgresql://u@db/kw", "sslmode", "require"),
            "postgresql://u@db/kw?sslmode=require"
        );
    }

    #[test]
    fn an_unknown_mode_or_a_missing_root_file_is_refused() {
        let refused = |url: &str| match split(url) {
            Ok(_) => panic!("{url} accepted"),
            Err(e) => e.to_string(),
        };
        let err = refused("postgresql://u@db/kw?sslmode=maybe");
        assert!(err.contains("sslmode=maybe"), "{err}");
        let err = refused("postgresql://u@db/kw?sslmode=verify-full&sslrootcert=/nonexistent.pem");
        assert!(err.contains("/nonexistent.pem"), "{err}");
    }
}
