//! A relay's certificate from ACME (`lectern relay --acme DOMAIN`; docs/RELAY.md): obtained and
//! renewed by rustls-acme over TLS-ALPN-01 on the relay's own port, kept in a folder between
//! starts, and served to every new connection as soon as it is there. Browsers at home then trust
//! the relay with nothing to install; the signatures they check (PROTOCOL-ADDITIONS.md, E) are
//! what protects the lesson, the certificate only the link.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use rustls_acme::caches::DirCache;
use rustls_acme::{AcmeConfig, EventOk};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};

use crate::tls::ACME_CHALLENGE_ALPN as CHALLENGE_ALPN;

/// How a relay obtains its certificate over ACME.
#[derive(Debug, Clone)]
pub struct Acme {
    /// The relay's domain name.
    pub domain: String,
    /// The ACME server's directory URL.
    pub directory: String,
    /// A PEM file of the authority that signed the ACME server's own certificate (a private ACME
    /// server); `None`: the web's usual authorities.
    pub ca: Option<PathBuf>,
    /// Where the account and certificates are kept between starts.
    pub cache: PathBuf,
    /// An address the ACME server may write to.
    pub contact: Option<String>,
}

/// Starts obtaining (then renewing) the certificate, as a task of `tracker` until `shutdown`: the
/// TLS configuration that serves it (and answers the ACME server's challenge). Until the first
/// certificate arrives, handshakes fail: nobody is served a certificate that is not the relay's.
pub fn start(
    acme: &Acme,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<rustls::ServerConfig> {
    let provider = crate::tls::provider();
    let config = match &acme.ca {
        Some(ca) => AcmeConfig::new_with_client_config([&acme.domain], Arc::new(client_trusting(ca)?)),
        None => AcmeConfig::new_with_provider([&acme.domain], provider.clone()),
    };
    let mut config = config.directory(&acme.directory).cache(DirCache::new(acme.cache.clone()));
    if let Some(contact) = &acme.contact {
        config = config.contact_push(format!("mailto:{contact}"));
    }
    let mut state = config.state();
    let resolver = state.resolver();
    let domain = acme.domain.clone();
    tracker.spawn(async move {
        loop {
            tokio::select! {
                event = state.next() => match event {
                    Some(Ok(EventOk::DeployedNewCert)) => tracing::info!(%domain, "a new certificate from ACME is served"),
                    Some(Ok(EventOk::DeployedCachedCert)) => tracing::info!(%domain, "the certificate kept from ACME is served"),
                    Some(Ok(_)) => {}
                    // rustls-acme waits before trying again after a failure.
                    Some(Err(e)) => tracing::warn!(%domain, error = %e, "ACME: the certificate could not be obtained yet"),
                    None => break,
                },
                () = shutdown.cancelled() => break,
            }
        }
    });
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    server.alpn_protocols = vec![b"http/1.1".to_vec(), CHALLENGE_ALPN.to_vec()];
    Ok(server)
}

/// A TLS client configuration that trusts only the authorities in the PEM file `ca`.
fn client_trusting(ca: &std::path::Path) -> Result<rustls::ClientConfig> {
    let pem = std::fs::read(ca).map_err(|e| Error::File { path: ca.into(), message: e.to_string() })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| Error::File { path: ca.into(), message: e.to_string() })?;
        roots.add(cert).map_err(|e| Error::Tls(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(Error::File { path: ca.into(), message: "no certificate in it".into() });
    }
    Ok(rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
