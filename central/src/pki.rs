//! Central's internal CA, init bundles and service identities.
//!
//! Central generates a CA on first start (ECDSA P-256, 5 years) and keeps it in its store. An
//! init bundle is issued per cluster: Sensor, Admission controller and Collector leaf certificates
//! (1 year) whose subject names the service and the cluster, and whose organizational unit is the
//! bundle id. Whoever presents a certificate *is* that service of that cluster: no message can
//! claim another identity. Revoking a bundle refuses every certificate it issued at the next
//! handshake.
//!
//! ```text
//!  CN = sensor.<cluster>   O = rampart   OU = <bundle id>   SAN = sensor.rampart.svc
//! ```

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName as TlsDistinguishedName, RootCertStore,
    SignatureScheme,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

const ORGANIZATION: &str = "rampart";
const CA_VALIDITY: Duration = Duration::days(5 * 365);
const LEAF_VALIDITY: Duration = Duration::days(365);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("invalid certificate: {0}")]
    Parse(String),
    #[error(
        "invalid cluster name {0:?}: use 1-63 lower-case letters, digits and '-', starting with a letter"
    )]
    ClusterName(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The services a certificate can identify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    Sensor,
    AdmissionControl,
    Collector,
}

impl Service {
    pub const ALL: [Service; 3] = [
        Service::Sensor,
        Service::AdmissionControl,
        Service::Collector,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Sensor => "sensor",
            Service::AdmissionControl => "admission-control",
            Service::Collector => "collector",
        }
    }

    pub fn parse(s: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The service's certificate in a bundle: its file with `--output-dir`, its key in the
    /// Secret, and what the service reads from `--bundle-dir`.
    pub fn cert_file(self) -> &'static str {
        match self {
            Service::Sensor => "sensor.pem",
            Service::AdmissionControl => "admission-control.pem",
            Service::Collector => "collector.pem",
        }
    }

    /// The service's private key in a bundle, named as [`Service::cert_file`].
    pub fn key_file(self) -> &'static str {
        match self {
            Service::Sensor => "sensor-key.pem",
            Service::AdmissionControl => "admission-control-key.pem",
            Service::Collector => "collector-key.pem",
        }
    }

    /// The Secret holding the service's part of a bundle, the one `deploy/`'s manifests mount
    /// as its `--bundle-dir`.
    pub fn secret_name(self) -> &'static str {
        match self {
            Service::Sensor => "rampart-sensor-bundle",
            Service::AdmissionControl => "rampart-admission-bundle",
            Service::Collector => "rampart-collector-bundle",
        }
    }
}

/// The cluster CA's certificate in a bundle (a file with `--output-dir`, a key of each Secret).
pub const CA_FILE: &str = "ca.pem";

/// Who is on the other end of a verified connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub service: Service,
    pub cluster: String,
    pub bundle_id: String,
}

/// The CA as stored (PEM). The key is a secret: never logged, stored only in Central's store.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredCa {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for StoredCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCa")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Metadata of an issued bundle, as listed by `init-bundle list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleRecord {
    pub id: String,
    pub cluster: String,
    pub created_unix: i64,
    pub expires_unix: i64,
    pub revoked: bool,
}

/// One service's certificate and key, PEM.
#[derive(Clone)]
pub struct IssuedCert {
    pub service: Service,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("service", &self.service)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct InitBundle {
    pub record: BundleRecord,
    pub ca_pem: String,
    pub certs: Vec<IssuedCert>,
}

impl InitBundle {
    /// The bundle as a Kubernetes Secret manifest per service (`--output-secrets`): each named
    /// as `deploy/`'s manifests mount it ([`Service::secret_name`]), its keys the files the
    /// service reads from its `--bundle-dir` (the CA, its certificate and its key).
    pub fn to_secrets_yaml(&self, namespace: &str) -> String {
        let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
        let mut out = String::new();
        for c in &self.certs {
            out.push_str(&format!(
                "apiVersion: v1\nkind: Secret\ntype: Opaque\nmetadata:\n  name: {secret}\n  namespace: {namespace}\n  labels:\n    app.kubernetes.io/part-of: rampart\n    rampart.io/init-bundle-id: \"{id}\"\n    rampart.io/cluster: \"{cluster}\"\nstringData:\n  {CA_FILE}: |\n{ca}  {cert_file}: |\n{cert}  {key_file}: |\n{key}---\n",
                secret = c.service.secret_name(),
                id = self.record.id,
                cluster = self.record.cluster,
                ca = indent(&self.ca_pem),
                cert_file = c.service.cert_file(),
                cert = indent(&c.cert_pem),
                key_file = c.service.key_file(),
                key = indent(&c.key_pem),
            ));
        }
        out
    }
}

/// A loaded CA that can issue certificates.
pub struct CertificateAuthority {
    stored: StoredCa,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

fn random_serial() -> SerialNumber {
    let id = uuid::Uuid::new_v4();
    let mut bytes = id.as_bytes().to_vec();
    bytes[0] &= 0x7f; // positive
    SerialNumber::from_slice(&bytes)
}

fn validate_cluster_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::ClusterName(name.to_string()))
    }
}

impl CertificateAuthority {
    /// A new self-signed CA.
    pub fn generate(now: OffsetDateTime) -> Result<CertificateAuthority> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, ORGANIZATION);
        // A distinct name per installation: another Rampart's certificates then fail as "unknown
        // issuer" rather than matching this CA by name.
        let id = uuid::Uuid::new_v4().simple().to_string();
        dn.push(
            DnType::CommonName,
            format!("Rampart internal CA {}", &id[..12]),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        let stored = StoredCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        CertificateAuthority::load(stored)
    }

    /// Loads a CA from its stored form.
    pub fn load(stored: StoredCa) -> Result<CertificateAuthority> {
        let key = KeyPair::from_pem(&stored.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&stored.cert_pem, key)?;
        Ok(CertificateAuthority { stored, issuer })
    }

    pub fn stored(&self) -> &StoredCa {
        &self.stored
    }

    pub fn cert_pem(&self) -> &str {
        &self.stored.cert_pem
    }

    /// The CA certificate in DER, for trust stores.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>> {
        pem_to_der(&self.stored.cert_pem)
    }

    /// Issues a bundle for `cluster`: one certificate per service.
    pub fn issue_bundle(&self, cluster: &str, now: OffsetDateTime) -> Result<InitBundle> {
        self.issue_bundle_valid(cluster, now, now + LEAF_VALIDITY)
    }

    /// Like [`issue_bundle`](Self::issue_bundle) with an explicit expiry (tests use a past one).
    pub fn issue_bundle_valid(
        &self,
        cluster: &str,
        now: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<InitBundle> {
        validate_cluster_name(cluster)?;
        let id = uuid::Uuid::new_v4().to_string();
        let mut certs = Vec::new();
        for service in Service::ALL {
            let key = KeyPair::generate()?;
            let mut params =
                CertificateParams::new(vec![format!("{}.rampart.svc", service.as_str())])?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::OrganizationName, ORGANIZATION);
            dn.push(DnType::OrganizationalUnitName, id.as_str());
            dn.push(
                DnType::CommonName,
                format!("{}.{cluster}", service.as_str()),
            );
            params.distinguished_name = dn;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ClientAuth,
                ExtendedKeyUsagePurpose::ServerAuth,
            ];
            params.not_before = now - Duration::minutes(5);
            params.not_after = not_after;
            params.serial_number = Some(random_serial());
            params.use_authority_key_identifier_extension = true;
            let cert = params.signed_by(&key, &self.issuer)?;
            certs.push(IssuedCert {
                service,
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            });
        }
        Ok(InitBundle {
            record: BundleRecord {
                id,
                cluster: cluster.to_string(),
                created_unix: now.unix_timestamp(),
                expires_unix: not_after.unix_timestamp(),
                revoked: false,
            },
            ca_pem: self.stored.cert_pem.clone(),
            certs,
        })
    }
}

impl CertificateAuthority {
    /// Central's own serving certificate for the given DNS names or IP addresses (cert PEM, key PEM).
    pub fn issue_server_cert(
        &self,
        names: &[String],
        now: OffsetDateTime,
    ) -> Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, ORGANIZATION);
        dn.push(DnType::CommonName, "central");
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + LEAF_VALIDITY;
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// First certificate of a PEM text, as DER.
pub fn pem_to_der(pem: &str) -> Result<CertificateDer<'static>> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| Error::Parse(e.to_string()))?;
    Ok(CertificateDer::from(parsed.contents))
}

/// Reads the identity a (verified) certificate carries.
pub fn identity_of(cert: &CertificateDer<'_>) -> Result<Identity> {
    let (_, x509) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| Error::Parse(e.to_string()))?;
    let subject = x509.subject();
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
    };
    let cn = first(&mut subject.iter_common_name())
        .ok_or_else(|| Error::Parse("no common name".into()))?;
    let bundle_id = first(&mut subject.iter_organizational_unit())
        .ok_or_else(|| Error::Parse("no bundle id (OU)".into()))?;
    let (service, cluster) = cn
        .split_once('.')
        .ok_or_else(|| Error::Parse(format!("common name {cn:?} is not <service>.<cluster>")))?;
    let service = Service::parse(service)
        .ok_or_else(|| Error::Parse(format!("unknown service {service:?}")))?;
    validate_cluster_name(cluster)?;
    Ok(Identity {
        service,
        cluster: cluster.to_string(),
        bundle_id,
    })
}

/// The set of revoked bundle ids, shared with the verifier and updated live.
#[derive(Debug, Clone, Default)]
pub struct Revocations(Arc<RwLock<BTreeSet<String>>>);

impl Revocations {
    pub fn revoke(&self, bundle_id: &str) {
        if let Ok(mut set) = self.0.write() {
            set.insert(bundle_id.to_string());
        }
    }

    pub fn is_revoked(&self, bundle_id: &str) -> bool {
        // A poisoned lock means a writer panicked mid-update: refuse rather than trust.
        self.0.read().map_or(true, |set| set.contains(bundle_id))
    }
}

/// Verifies client certificates: chain to Central's CA and validity (rustls/webpki), then a
/// Rampart identity in the subject and a bundle that is not revoked.
#[derive(Debug)]
pub struct ClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revocations: Revocations,
}

impl ClientVerifier {
    pub fn new(
        ca: CertificateDer<'static>,
        revocations: Revocations,
    ) -> Result<Arc<ClientVerifier>> {
        let mut roots = RootCertStore::empty();
        roots.add(ca).map_err(|e| Error::Parse(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Error::Parse(e.to_string()))?;
        Ok(Arc::new(ClientVerifier { inner, revocations }))
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[TlsDistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let identity = identity_of(end_entity).map_err(|e| {
            rustls::Error::General(format!("not a Rampart service certificate: {e}"))
        })?;
        if self.revocations.is_revoked(&identity.bundle_id) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Revoked,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn unix(t: OffsetDateTime) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(t.unix_timestamp() as u64))
    }

    fn sensor_der(bundle: &InitBundle) -> CertificateDer<'static> {
        let sensor = bundle
            .certs
            .iter()
            .find(|c| c.service == Service::Sensor)
            .expect("sensor cert");
        pem_to_der(&sensor.cert_pem).expect("der")
    }

    #[test]
    fn a_bundle_identifies_each_service_of_its_cluster() {
        let ca = CertificateAuthority::generate(now()).expect("ca");
        let bundle = ca.issue_bundle("prod-eu", now()).expect("bundle");
        assert_eq!(bundle.certs.len(), 3);
        for c in &bundle.certs {
            let id = identity_of(&pem_to_der(&c.cert_pem).expect("der")).expect("identity");
            assert_eq!(
                id,
                Identity {
                    service: c.service,
                    cluster: "prod-eu".into(),
                    bundle_id: bundle.record.id.clone()
                }
            );
        }
        let yaml = bundle.to_secrets_yaml("rampart");
        assert_eq!(yaml.matches("kind: Secret").count(), 3);
        // Each Secret holds what its service reads from its bundle directory.
        let docs: Vec<serde_json::Value> = rampart_policy::yaml::split_documents(&yaml)
            .into_iter()
            .map(|d| rampart_policy::yaml::parse_document(d).expect("yaml"))
            .collect();
        for (service, doc) in Service::ALL.into_iter().zip(&docs) {
            assert_eq!(doc["metadata"]["name"], service.secret_name());
            assert_eq!(doc["metadata"]["namespace"], "rampart");
            let data = &doc["stringData"];
            assert_eq!(data[CA_FILE].as_str(), Some(bundle.ca_pem.as_str()));
            let issued = bundle.certs.iter().find(|c| c.service == service);
            let issued = issued.expect("the service's certificate");
            assert_eq!(
                data[service.cert_file()].as_str(),
                Some(issued.cert_pem.as_str())
            );
            assert_eq!(
                data[service.key_file()].as_str(),
                Some(issued.key_pem.as_str())
            );
            assert_eq!(data.as_object().map(|o| o.len()), Some(3));
        }
    }

    #[test]
    fn the_ca_survives_a_store_round_trip() {
        let ca = CertificateAuthority::generate(now()).expect("ca");
        let json = serde_json::to_string(ca.stored()).expect("json");
        let reloaded =
            CertificateAuthority::load(serde_json::from_str(&json).expect("parse")).expect("load");
        let bundle = reloaded
            .issue_bundle("c1", now())
            .expect("issue with the reloaded CA");
        let verifier = ClientVerifier::new(ca.cert_der().expect("der"), Revocations::default())
            .expect("verifier");
        verifier
            .verify_client_cert(&sensor_der(&bundle), &[], unix(now()))
            .expect("trusted by the original CA");
        assert!(
            !format!("{:?}", ca.stored()).contains("PRIVATE KEY"),
            "keys never appear in debug output"
        );
    }

    #[test]
    fn other_ca_revoked_and_expired_certificates_are_refused() {
        let ca = CertificateAuthority::generate(now()).expect("ca");
        let revocations = Revocations::default();
        let verifier = ClientVerifier::new(ca.cert_der().expect("der"), revocations.clone())
            .expect("verifier");
        let good = ca.issue_bundle("c1", now()).expect("bundle");
        verifier
            .verify_client_cert(&sensor_der(&good), &[], unix(now()))
            .expect("valid");

        let stranger = CertificateAuthority::generate(now())
            .expect("other ca")
            .issue_bundle("c1", now())
            .expect("bundle");
        let err = verifier
            .verify_client_cert(&sensor_der(&stranger), &[], unix(now()))
            .expect_err("other CA");
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                        | rustls::CertificateError::BadSignature
                )
            ),
            "{err:?}"
        );

        let expired = ca
            .issue_bundle_valid("c1", now() - Duration::days(400), now() - Duration::days(1))
            .expect("bundle");
        let err = verifier
            .verify_client_cert(&sensor_der(&expired), &[], unix(now()))
            .expect_err("expired");
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Expired
                        | rustls::CertificateError::ExpiredContext { .. }
                )
            ),
            "{err:?}"
        );

        revocations.revoke(&good.record.id);
        let err = verifier
            .verify_client_cert(&sensor_der(&good), &[], unix(now()))
            .expect_err("revoked");
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn the_ca_bundles_and_revocations_persist() {
        use crate::store::{SledBackend, Store};
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca_pem, bundle_id) = {
            let store =
                Store::open(SledBackend::open(dir.path()).expect("backend")).expect("store");
            let ca = persist::load_or_create_ca(&store, now()).expect("ca");
            let b = persist::issue_bundle(&store, &ca, "c1", now()).expect("bundle");
            persist::issue_bundle(&store, &ca, "c2", now()).expect("bundle");
            let revocations = Revocations::default();
            let revoked = persist::revoke(&store, &revocations, "c1").expect("revoke");
            assert_eq!(revoked.len(), 1);
            assert!(revocations.is_revoked(&b.record.id));
            assert!(matches!(
                persist::revoke(&store, &revocations, "nope"),
                Err(persist::Error::NoSuchBundle(_))
            ));
            (ca.cert_pem().to_string(), b.record.id)
        };
        let store = Store::open(SledBackend::open(dir.path()).expect("backend")).expect("store");
        let ca = persist::load_or_create_ca(&store, now()).expect("ca");
        assert_eq!(ca.cert_pem(), ca_pem, "the same CA after a restart");
        let bundles = persist::bundles(&store).expect("list");
        assert_eq!(bundles.len(), 2);
        assert!(
            persist::load_revocations(&store)
                .expect("revocations")
                .is_revoked(&bundle_id)
        );
    }

    #[test]
    fn cluster_names_are_checked() {
        let ca = CertificateAuthority::generate(now()).expect("ca");
        for bad in ["", "Prod", "a.b", "-x", &"x".repeat(64)] {
            assert!(
                matches!(ca.issue_bundle(bad, now()), Err(Error::ClusterName(_))),
                "{bad:?}"
            );
        }
    }
}

/// The CA, bundles and revocations as Central keeps them in its store (table `pki`).
pub mod persist {
    use super::*;
    use crate::store::{Backend, Store, Table, WriteBatch};

    const CA_KEY: &str = "ca";
    const BUNDLE_PREFIX: &str = "bundle/";

    #[derive(Debug, thiserror::Error)]
    pub enum Error {
        #[error(transparent)]
        Store(#[from] crate::store::Error),
        #[error(transparent)]
        Pki(#[from] super::Error),
        #[error("no init bundle with id or cluster name {0:?}")]
        NoSuchBundle(String),
    }

    /// Loads the CA, creating and storing it (durably) on first start.
    pub fn load_or_create_ca<B: Backend>(
        store: &Store<B>,
        now: OffsetDateTime,
    ) -> Result<CertificateAuthority, Error> {
        if let Some(stored) = store.get_record::<StoredCa>(Table::Pki, CA_KEY)? {
            return Ok(CertificateAuthority::load(stored)?);
        }
        let ca = CertificateAuthority::generate(now)?;
        let mut batch = WriteBatch::default();
        batch.put(Table::Pki, CA_KEY, ca.stored())?;
        store.apply(&batch)?;
        store.flush()?;
        Ok(ca)
    }

    /// Issues a bundle and records it (durably) before returning it.
    pub fn issue_bundle<B: Backend>(
        store: &Store<B>,
        ca: &CertificateAuthority,
        cluster: &str,
        now: OffsetDateTime,
    ) -> Result<InitBundle, Error> {
        let bundle = ca.issue_bundle(cluster, now)?;
        let mut batch = WriteBatch::default();
        batch.put(
            Table::Pki,
            &format!("{BUNDLE_PREFIX}{}", bundle.record.id),
            &bundle.record,
        )?;
        store.apply(&batch)?;
        store.flush()?;
        Ok(bundle)
    }

    pub fn bundles<B: Backend>(store: &Store<B>) -> Result<Vec<BundleRecord>, Error> {
        Ok(store.scan_records(Table::Pki, BUNDLE_PREFIX)?)
    }

    /// Revokes every bundle whose id or cluster name is `id_or_cluster`; returns what it revoked.
    pub fn revoke<B: Backend>(
        store: &Store<B>,
        revocations: &Revocations,
        id_or_cluster: &str,
    ) -> Result<Vec<BundleRecord>, Error> {
        let mut revoked = Vec::new();
        let mut batch = WriteBatch::default();
        for mut b in bundles(store)? {
            if (b.id == id_or_cluster || b.cluster == id_or_cluster) && !b.revoked {
                b.revoked = true;
                batch.put(Table::Pki, &format!("{BUNDLE_PREFIX}{}", b.id), &b)?;
                revoked.push(b);
            }
        }
        if revoked.is_empty() {
            return Err(Error::NoSuchBundle(id_or_cluster.to_string()));
        }
        store.apply(&batch)?;
        store.flush()?;
        for b in &revoked {
            revocations.revoke(&b.id);
        }
        Ok(revoked)
    }

    /// The revocation set as stored, for a starting Central.
    pub fn load_revocations<B: Backend>(store: &Store<B>) -> Result<Revocations, Error> {
        let revocations = Revocations::default();
        for b in bundles(store)?.into_iter().filter(|b| b.revoked) {
            revocations.revoke(&b.id);
        }
        Ok(revocations)
    }
}
