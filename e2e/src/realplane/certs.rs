//! The certificates a real control plane needs, made fresh for each plane: a CA, the API
//! server's serving certificate, a client certificate per identity, and the key that signs
//! service-account tokens.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// The Services' ClusterIPs: a /20 on loopback, so that the node's Service proxy (localplane's)
/// can listen on them without touching the host's network; a random one in 127.128.0.0/9, so
/// that planes of parallel tests do not collide (localplane's own pools stay below 127.128).
pub struct ServiceRange {
    pub cidr: String,
    /// Its first address: the in-cluster `kubernetes` Service's ClusterIP, which the serving
    /// certificate names like a real cluster's does.
    pub kubernetes: String,
}

impl ServiceRange {
    pub fn random() -> ServiceRange {
        let [a, b, ..] = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos()
            .wrapping_mul(2_654_435_761)
            .to_le_bytes();
        let (second, third) = (128 | (a & 127), (b & 15) * 16);
        ServiceRange { cidr: format!("127.{second}.{third}.0/20"), kubernetes: format!("127.{second}.{third}.1") }
    }
}

/// Paths of the PEM files written into one folder.
pub struct Pki {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    /// The service-account signing key (PKCS#8); its public half verifies the tokens.
    pub service_account_key: PathBuf,
    pub service_account_public_key: PathBuf,
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

/// A client identity's certificate and key.
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn generate(dir: &Path, services: &ServiceRange) -> anyhow::Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let write = |name: &str, pem: String| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, pem)?;
            Ok(path)
        };

        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::new())?;
        ca.distinguished_name.push(DnType::CommonName, "trainloop-test-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
        let ca_cert = write("ca.crt", ca.self_signed(&ca_key)?.pem())?;
        let issuer = Issuer::new(ca, ca_key);

        let names = [
            "127.0.0.1",
            "localhost",
            services.kubernetes.as_str(),
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ];
        let serving_key = KeyPair::generate()?;
        let mut serving = CertificateParams::new(names.map(String::from).to_vec())?;
        serving.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = write("apiserver.crt", serving.signed_by(&serving_key, &issuer)?.pem())?;
        let serving_key = write("apiserver.key", serving_key.serialize_pem())?;

        let service_account = KeyPair::generate()?;
        let service_account_key = write("sa.key", service_account.serialize_pem())?;
        let service_account_public_key = write("sa.pub", service_account.public_key_pem())?;

        Ok(Pki {
            ca_cert,
            serving_cert,
            serving_key,
            service_account_key,
            service_account_public_key,
            dir: dir.to_path_buf(),
            issuer,
        })
    }

    /// A client certificate for `user` (its CN) in `group` (its O), signed by the CA.
    pub fn client(&self, user: &str, group: Option<&str>) -> anyhow::Result<ClientCert> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::new())?;
        params.distinguished_name.push(DnType::CommonName, user);
        if let Some(group) = group {
            params.distinguished_name.push(DnType::OrganizationName, group);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let file = user.replace(':', "-");
        let cert = self.dir.join(format!("{file}.crt"));
        std::fs::write(&cert, params.signed_by(&key, &self.issuer)?.pem())?;
        let key_path = self.dir.join(format!("{file}.key"));
        std::fs::write(&key_path, key.serialize_pem())?;
        Ok(ClientCert { cert, key: key_path })
    }
}
