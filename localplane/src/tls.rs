//! The plane's TLS identity: a CA made at start and a serving certificate it signs for every name
//! a client may use for the API server (loopback, `localhost`, the `kubernetes` Service's DNS
//! names and cluster IP), as kubeadm's apiserver certificate does. Clients trust the CA through
//! the kubeconfig's `certificate-authority-data` and the pods' `ca.crt`. The identity also holds
//! the bearer token of the kubeconfig's user (kubectl prompts for a password when a kubeconfig
//! names an HTTPS server and no credentials).

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The DNS names of the `kubernetes` Service, as on a real cluster.
pub const SERVICE_DNS_NAMES: &[&str] =
    &["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"];

/// A CA, the serving certificate it signed, and the admin token. Cloning shares it: a plane restarted with the same
/// identity is trusted by the clients of the one before.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
    admin_token: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

impl Identity {
    /// A new CA, and a serving certificate for `localhost`, the Service names and `ips`.
    pub fn generate(ips: &[IpAddr]) -> anyhow::Result<Identity> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
        ca_params.distinguished_name.push(DnType::CommonName, "localplane-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let ca_cert = ca_params.self_signed(&ca_key).context("signing the CA")?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut names: Vec<String> = vec!["localhost".into()];
        names.extend(SERVICE_DNS_NAMES.iter().map(|n| n.to_string()));
        names.extend(ips.iter().map(IpAddr::to_string));
        let mut params = CertificateParams::new(names).context("serving certificate parameters")?;
        params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().context("generating the serving key")?;
        let cert = params.signed_by(&key, &issuer).context("signing the serving certificate")?;
        Ok(Identity {
            inner: Arc::new(Inner {
                ca_pem: ca_cert.pem(),
                ca_der: ca_cert.der().clone(),
                cert_der: cert.der().clone(),
                key_der: key.serialize_der(),
                admin_token: format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()),
            }),
        })
    }

    /// The CA certificate, PEM (the content of `ca.crt` and of `certificate-authority-data`).
    pub fn ca_pem(&self) -> &str {
        &self.inner.ca_pem
    }

    /// The CA certificate, DER (what `kube::Config::root_cert` holds).
    pub fn ca_der(&self) -> Vec<u8> {
        self.inner.ca_der.to_vec()
    }

    /// The kubeconfig user's bearer token: the plane's administrator.
    pub fn admin_token(&self) -> &str {
        &self.inner.admin_token
    }

    /// The rustls configuration that serves the certificate. Only HTTP/1.1 is offered: the
    /// server speaks no HTTP/2 (the real one offers both; clients fall back without notice).
    pub fn server_config(&self) -> anyhow::Result<rustls::ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.inner.key_der.clone()));
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .context("TLS protocol versions")?
                .with_no_client_auth()
                .with_single_cert(vec![self.inner.cert_der.clone()], key)
                .context("serving certificate")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}
