//! Certificates made on the spot for the TLS tests and benches (rcgen):
//! a CA and leaf certificates it signed, in memory as PEM and DER. No
//! private key is shipped with the sources.

#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use wharf::tls::rustls::pki_types::CertificateDer;

/// A leaf certificate and its key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A CA and the leaves it signed.
pub struct TestCerts {
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    /// One per name given, in order.
    pub leaves: Vec<Leaf>,
    /// The CA's parameters and key, for further leaves.
    issuer: Issuer<'static, KeyPair>,
}

impl TestCerts {
    /// A CA and a leaf for each name (the first also answers `localhost`
    /// and 127.0.0.1); `tweak` may change each leaf's parameters (a
    /// validity period in the past, say).
    pub fn new(names: &[&str], tweak: impl Fn(&str, &mut CertificateParams)) -> TestCerts {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "wharf test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let mut certs = TestCerts {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            leaves: Vec::new(),
            issuer,
        };
        for (i, name) in names.iter().enumerate() {
            let mut sans = vec![*name];
            if i == 0 {
                sans.extend(["localhost", "127.0.0.1"]);
            }
            let key = KeyPair::generate().expect("leaf key");
            let leaf = certs.leaf(&sans, key, |params| tweak(name, params));
            certs.leaves.push(leaf);
        }
        certs
    }

    /// Another leaf signed by the CA, for `sans`, with `key`; `tweak` may
    /// change its parameters first.
    pub fn leaf(
        &self,
        sans: &[&str],
        key: KeyPair,
        tweak: impl FnOnce(&mut CertificateParams),
    ) -> Leaf {
        let sans = sans.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(sans).expect("leaf params");
        tweak(&mut params);
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes `ca.pem` and `<name>.pem`/`<name>.key` for each leaf into
    /// `dir`.
    pub fn write_to(&self, dir: &std::path::Path, names: &[&str]) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("ca.pem"), &self.ca_pem)?;
        for (name, leaf) in names.iter().zip(&self.leaves) {
            std::fs::write(dir.join(format!("{name}.pem")), &leaf.cert_pem)?;
            std::fs::write(dir.join(format!("{name}.key")), &leaf.key_pem)?;
        }
        Ok(())
    }
}

/// A self-signed leaf for `sans` (no CA vouches for it).
pub fn self_signed(sans: &[&str]) -> Leaf {
    let key = KeyPair::generate().expect("key");
    let sans = sans.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let params = CertificateParams::new(sans).expect("self-signed params");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}
