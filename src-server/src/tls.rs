//! TLS identity and trust: the teacher's self-signed certificate, its fingerprint, and pinning.
//!
//! A classroom has no public CA, so the server generates an ECDSA P-256 certificate on first run and
//! keeps it; clients trust it by its fingerprint (§2, §8), which the join link, QR code and mDNS carry.
//! The pinning verifier still checks the handshake signature, so a peer must hold the pinned key.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The crypto provider every TLS config here uses (explicit, so no process-wide default is needed).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The ALPN protocol of ACME's TLS-ALPN-01 challenge (RFC 8737): a connection that negotiated it was
/// the ACME server checking a relay's challenge (`relay::acme`), and carries nothing else.
pub const ACME_CHALLENGE_ALPN: &[u8] = b"acme-tls/1";

/// `base64url_nopad(SHA-256(DER))` of a certificate: 43 characters.
pub fn fingerprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

pub use crate::protocol::link::is_fingerprint;

/// A certificate and its private key.
pub struct Identity {
    /// Leaf certificate, DER.
    pub cert: CertificateDer<'static>,
    /// Private key, DER (PKCS#8).
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("fingerprint", &self.fingerprint()).finish_non_exhaustive()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity { cert: self.cert.clone(), key: self.key.clone_key() }
    }
}

impl Identity {
    /// Generates a self-signed ECDSA P-256 certificate for these host names and addresses.
    pub fn generate(names: &[String], addrs: &[IpAddr]) -> Result<Identity> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| Error::Tls(format!("generating a key: {e}")))?;
        let mut params = rcgen::CertificateParams::new(names.to_vec())
            .map_err(|e| Error::Tls(format!("certificate names: {e}")))?;
        params.subject_alt_names.extend(addrs.iter().map(|a| rcgen::SanType::IpAddress(*a)));
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, "Lectern classroom");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Lectern");
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let cert = params.self_signed(&key).map_err(|e| Error::Tls(format!("signing: {e}")))?;
        Ok(Identity { cert: cert.der().clone(), key: PrivateKeyDer::Pkcs8(key.serialize_der().into()) })
    }

    /// Generates a certificate for the names a classroom server is reached by: localhost, the host name,
    /// `<host>.local`, every non-loopback interface address, 127.0.0.1 and ::1.
    pub fn generate_for_this_host() -> Result<Identity> {
        let host = crate::net::host_name();
        let mut names = vec!["localhost".to_string()];
        if !host.is_empty() && host != "localhost" {
            names.push(host.clone());
            names.push(format!("{host}.local"));
        }
        let mut addrs: Vec<IpAddr> = crate::net::interface_addrs();
        addrs.push(IpAddr::from([127, 0, 0, 1]));
        addrs.push(IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
        addrs.dedup();
        Identity::generate(&names, &addrs)
    }

    /// The certificate's fingerprint.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert)
    }

    /// Loads `cert.pem` and `key.pem` from a directory.
    pub fn load(dir: &Path) -> Result<Identity> {
        let cert_pem = std::fs::read(dir.join("cert.pem"))?;
        let key_pem = std::fs::read(dir.join("key.pem"))?;
        let cert = rustls_pemfile::certs(&mut cert_pem.as_slice())
            .next()
            .ok_or_else(|| Error::Tls("cert.pem holds no certificate".into()))?
            .map_err(|e| Error::Tls(format!("cert.pem: {e}")))?;
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .map_err(|e| Error::Tls(format!("key.pem: {e}")))?
            .ok_or_else(|| Error::Tls("key.pem holds no private key".into()))?;
        Ok(Identity { cert, key })
    }

    /// Writes `cert.pem` and `key.pem` (mode 0600) into a directory.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let cert = pem("CERTIFICATE", &self.cert);
        let key = pem("PRIVATE KEY", self.key.secret_der());
        crate::files::write_private(&dir.join("key.pem"), key.as_bytes())?;
        std::fs::write(dir.join("cert.pem"), cert)?;
        Ok(())
    }

    /// A rustls server config for this identity (TLS 1.3 and 1.2, no client auth).
    pub fn server_config(&self, alpn_http2: bool) -> Result<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(|e| Error::Tls(e.to_string()))?;
        config.alpn_protocols =
            if alpn_http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
        Ok(config)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Accepts exactly one certificate, named by its fingerprint, whatever its names or dates.
#[derive(Debug)]
pub struct PinnedVerifier {
    fingerprint: String,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedVerifier {
    /// A verifier that accepts only the certificate with this fingerprint.
    pub fn new(fingerprint: &str) -> PinnedVerifier {
        PinnedVerifier {
            fingerprint: fingerprint.to_string(),
            algorithms: provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let seen = fingerprint(end_entity);
        if crate::engine::token::constant_time_eq(&seen, &self.fingerprint) {
            Ok(ServerCertVerified::assertion())
        } else {
            let mismatch = PinMismatch { expected: self.fingerprint.clone(), seen };
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
                Arc::new(mismatch),
            ))))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A certificate that is not the pinned one: carried inside rustls's error so that callers match on
/// it as a type (see [`pin_mismatch`]) instead of searching the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("certificate fingerprint {seen} is not the pinned {expected}")]
pub struct PinMismatch {
    /// The pinned fingerprint.
    pub expected: String,
    /// The server's.
    pub seen: String,
}

/// The pin mismatch inside a failed TLS handshake's error, if that is what failed.
pub fn pin_mismatch(e: &std::io::Error) -> Option<&PinMismatch> {
    let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) =
        e.get_ref()?.downcast_ref::<rustls::Error>()?
    else {
        return None;
    };
    other.0.downcast_ref::<PinMismatch>()
}

/// What is wrong with a certificate checked by name (a relay's, which an authority issued), in words
/// a person can act on. Trying again cannot mend any of them, so a client stops and says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertProblem {
    /// Past its end date: the relay did not renew it.
    Expired,
    /// Not valid yet: most often this device's clock is wrong.
    NotYetValid,
    /// Issued for another name than the one in the link.
    OtherName,
    /// Issued by an authority this device does not trust.
    UnknownAuthority,
    /// Revoked by its authority.
    Revoked,
    /// Damaged, or unfit in another way.
    Invalid,
}

impl CertProblem {
    /// The problem as a word a page looks up in its own language (the app's bridge passes this, not
    /// free text, so nothing a peer wrote can reach a student's screen this way).
    pub fn key(self) -> &'static str {
        match self {
            CertProblem::Expired => "expired",
            CertProblem::NotYetValid => "not_yet_valid",
            CertProblem::OtherName => "other_name",
            CertProblem::UnknownAuthority => "unknown_authority",
            CertProblem::Revoked => "revoked",
            CertProblem::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for CertProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CertProblem::Expired => "has expired",
            CertProblem::NotYetValid => "is not valid yet (is this device's date and time right?)",
            CertProblem::OtherName => "was issued for another name",
            CertProblem::UnknownAuthority => "was issued by an authority this device does not trust",
            CertProblem::Revoked => "was revoked by its authority",
            CertProblem::Invalid => "is not valid",
        })
    }
}

/// The problem with the certificate inside a failed TLS handshake's error, when a certificate checked
/// by name is what failed (a pin mismatch is [`pin_mismatch`]'s, not this).
pub fn certificate_problem(e: &std::io::Error) -> Option<CertProblem> {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(kind) = e.get_ref()?.downcast_ref::<rustls::Error>()? else {
        return None;
    };
    Some(match kind {
        C::Expired | C::ExpiredContext { .. } => CertProblem::Expired,
        C::NotValidYet | C::NotValidYetContext { .. } => CertProblem::NotYetValid,
        C::NotValidForName | C::NotValidForNameContext { .. } => CertProblem::OtherName,
        C::UnknownIssuer => CertProblem::UnknownAuthority,
        C::Revoked => CertProblem::Revoked,
        C::Other(other) if other.0.downcast_ref::<PinMismatch>().is_some() => return None,
        _ => CertProblem::Invalid,
    })
}

/// A rustls client config that trusts only the certificate with this fingerprint, or, for an empty
/// one (a link to a relay with a certificate for its name: `--acme`), the web's authorities.
pub fn pinned_client_config(fingerprint: &str) -> Result<rustls::ClientConfig> {
    if fingerprint.is_empty() {
        return web_client_config();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedVerifier::new(fingerprint)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Authorities a client trusts besides the web's, for relays whose certificate a private ACME
/// authority issued (a district's own, or a test's `pebble`); each connection reads them as it starts.
static ALSO_TRUSTED: std::sync::RwLock<Vec<Authority>> = std::sync::RwLock::new(Vec::new());

/// Trusts these authorities too, beside the web's, for links that pin no fingerprint, in place of any
/// trusted before; connections made from now on use them (an empty list: the web's only).
pub fn trust_also(roots: Vec<Authority>) {
    *ALSO_TRUSTED.write().unwrap_or_else(|p| p.into_inner()) = roots;
}

/// How many authorities [`trust_also`] last set.
pub fn also_trusted() -> usize {
    ALSO_TRUSTED.read().unwrap_or_else(|p| p.into_inner()).len()
}

/// A certificate authority a client trusts, DER.
pub type Authority = CertificateDer<'static>;

/// The largest file of authorities read: a few certificates are a few kilobytes, and a file chosen
/// by mistake (a video, a device) must not be read whole.
pub const MAX_AUTHORITIES_FILE: u64 = 1 << 20;

/// The bytes of a file of authorities: a regular file (followed through links) of at most
/// [`MAX_AUTHORITIES_FILE`], read through the one handle that was checked (a device or a pipe is
/// refused, a file that grows is cut off and refused).
pub fn read_authorities_file(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let what = path.display();
    let failed = |e: std::io::Error| Error::Tls(format!("reading {what}: {e}"));
    let file = std::fs::File::open(path).map_err(failed)?;
    if !file.metadata().map_err(failed)?.is_file() {
        return Err(Error::Tls(format!("{what} is not a file")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_AUTHORITIES_FILE + 1).read_to_end(&mut bytes).map_err(failed)?;
    if bytes.len() as u64 > MAX_AUTHORITIES_FILE {
        return Err(Error::Tls(format!(
            "{what} is over {MAX_AUTHORITIES_FILE} bytes: not a file of certificates"
        )));
    }
    Ok(bytes)
}

/// Reads the authorities in a PEM file for [`trust_also`] (a district's own ACME authority, say):
/// every certificate in it (each must parse as one; whether it is an authority's is the file
/// writer's word), or an error naming the file and what is wrong with it.
pub fn read_authorities(path: &Path) -> Result<Vec<Authority>> {
    let what = path.display();
    let pem = read_authorities_file(path)?;
    let mut found = Vec::new();
    for (i, cert) in rustls_pemfile::certs(&mut pem.as_slice()).enumerate() {
        let cert = cert.map_err(|e| Error::Tls(format!("{what}: certificate {}: {e}", i + 1)))?;
        rustls::RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| Error::Tls(format!("{what}: certificate {} cannot be an authority: {e}", i + 1)))?;
        found.push(cert);
    }
    if found.is_empty() {
        return Err(Error::Tls(format!("{what} holds no PEM certificate")));
    }
    Ok(found)
}

/// The client configuration for a server a link names without a fingerprint: a relay whose
/// certificate an ACME authority issued for its name (`lectern relay --acme`), checked as a browser
/// checks it, against the web's authorities (Mozilla's list, built in) and [`trust_also`]'s.
fn web_client_config() -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for root in ALSO_TRUSTED.read().unwrap_or_else(|p| p.into_inner()).iter() {
        roots.add(root.clone()).map_err(|e| Error::Tls(e.to_string()))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_identity_loads_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::generate(&["localhost".into()], &[IpAddr::from([127, 0, 0, 1])]).unwrap();
        id.save(dir.path()).unwrap();
        let again = Identity::load(dir.path()).unwrap();
        assert_eq!(id.fingerprint(), again.fingerprint());
        assert!(is_fingerprint(&id.fingerprint()));
    }
}
