//! `wss://` for both ends, through rustls with the ring provider (already compiled in for
//! webrtc-rs's DTLS, so TLS adds no second crypto library).
//!
//! Clients verify the server's certificate and name against the system's trust store
//! (`rustls-native-certs`: /etc/ssl/certs on Debian, or `SSL_CERT_FILE`) plus, when configured,
//! the CA certificates of `signaling_ca_file`, which is how a private or self-signed CA is
//! trusted. There is no switch to turn verification off: an unverified `wss://` would let
//! anyone on the path read the session tokens and rewrite the SDP (docs/SECURITY.md).

use super::server_config::TlsFiles;
use crate::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Config(format!("{}: no PEM certificate in it", path.display())));
    }
    Ok(certs)
}

/// The server side: certificate chain and private key from PEM files. Errors name the file.
pub(crate) fn acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor> {
    let chain = certificates(&files.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&files.key_file).map_err(|e| Error::Config(format!("{}: {e}", files.key_file.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| Error::Config(format!("TLS certificate {} / key {}: {e}", files.cert_file.display(), files.key_file.display())))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The client side: system roots plus those of `ca_file` (when not empty). Fails when no root
/// at all could be loaded, rather than failing every handshake later with a vaguer error.
pub(crate) fn client_config(ca_file: &str) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(target: "rmw::signaling::tls", error = %e, "skipping part of the system trust store");
    }
    let (_, _ignored) = roots.add_parsable_certificates(native.certs);
    if !ca_file.is_empty() {
        for cert in certificates(Path::new(ca_file))? {
            roots.add(cert).map_err(|e| Error::Config(format!("signaling_ca_file {ca_file}: {e}")))?;
        }
    }
    if roots.is_empty() {
        return Err(Error::Config("wss://: no trusted CA certificates (none in the system store; set signaling_ca_file)".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
