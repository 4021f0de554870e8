//! The Sensor ↔ Central wire contract (`proto/rampart/sensor/v1/sensor.proto`) and the
//! Collector → Sensor one (`proto/rampart/collector/v1/collector.proto`), generated at
//! build time by `tonic-prost-build` with a vendored `protoc`, plus the version and capability
//! negotiation both sides share.
//!
//! ```text
//!  Sensor ──MsgFromSensor{seq, hello|event|synced|alert_results|...}──▶ Central
//!         ◀─MsgToSensor{hello|ack(seq)|policy_sync|policy_upsert|enforcement|notice}──
//! ```

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("rampart.sensor.v1");
}

/// The Collector → Sensor contract (`proto/rampart/collector/v1/collector.proto`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod collector {
    tonic::include_proto!("rampart.collector.v1");
}

/// The minor version of protocol v1 this build speaks.
pub const PROTOCOL_MINOR: u32 = 0;

/// The most alerts one admission `Report` may carry: the Sensor refuses more, and the
/// controller sends up to this many at once, so that a storm of denials drains in as few round
/// trips as it can.
pub const MAX_ADMISSION_REPORT: usize = 1000;

/// The most images one admission `Report` or one `ImageScanRequest` may name to be scanned,
/// and the longest reference (an image reference is far shorter).
pub const MAX_SCAN_REQUEST_IMAGES: usize = 64;
pub const MAX_IMAGE_REFERENCE: usize = 512;

/// Named capabilities; features switch on when both sides list one.
pub mod capabilities {
    /// The Sensor evaluates deploy-time and runtime policies locally.
    pub const LOCAL_DETECTION: &str = "local-detection";
    /// Central acknowledges durable positions with `Ack`.
    pub const DURABLE_ACKS: &str = "durable-acks";
    /// Content hashes on resource events; unchanged objects may be listed in `SyncMarker`.
    pub const CONTENT_HASH_DEDUP: &str = "content-hash-dedup";
    /// Central sends enforcement orders.
    pub const ENFORCEMENT_ORDERS: &str = "enforcement-orders";
    /// Central sends the user-locked process baselines (`ProcessBaselineSync`).
    pub const PROCESS_BASELINES: &str = "process-baselines";
    /// Central sends its findings for the images the cluster runs (`ImageFindings`).
    pub const IMAGE_FINDINGS: &str = "image-findings";
    /// The Sensor relays the images its admission controllers met unscanned
    /// (`ImageScanRequest`), and Central scans them.
    pub const IMAGE_SCAN_REQUESTS: &str = "image-scan-requests";
}

/// What both sides agree on after the hello exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub protocol_minor: u32,
    pub capabilities: Vec<String>,
}

/// The lower of both minor versions and the capabilities both sides list (in `ours` order).
pub fn negotiate(
    ours_minor: u32,
    ours: &[&str],
    theirs_minor: u32,
    theirs: &[String],
) -> Negotiated {
    Negotiated {
        protocol_minor: ours_minor.min(theirs_minor),
        capabilities: ours
            .iter()
            .filter(|c| theirs.iter().any(|t| t == *c))
            .map(|c| c.to_string())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::v1::{self, msg_from_sensor::Msg};
    use super::*;

    #[test]
    fn negotiation_takes_the_common_ground() {
        let n = negotiate(
            3,
            &[capabilities::DURABLE_ACKS, capabilities::LOCAL_DETECTION],
            1,
            &["local-detection".to_string(), "something-newer".to_string()],
        );
        assert_eq!(
            n,
            Negotiated {
                protocol_minor: 1,
                capabilities: vec!["local-detection".into()]
            }
        );
    }

    #[test]
    fn messages_round_trip_on_the_wire() {
        let msg = v1::MsgFromSensor {
            seq: 42,
            msg: Some(Msg::Event(v1::ResourceEvent {
                action: v1::ResourceAction::Sync as i32,
                kind: v1::ResourceKind::Deployment as i32,
                id: "uid-1".into(),
                namespace: "shop".into(),
                name: "web".into(),
                object_json: br#"{"kind":"Deployment"}"#.to_vec(),
                content_hash: 7,
                context: None,
            })),
        };
        let bytes = msg.encode_to_vec();
        assert_eq!(
            v1::MsgFromSensor::decode(bytes.as_slice()).expect("decodes"),
            msg
        );
    }

    #[test]
    fn an_unknown_variant_from_a_newer_peer_decodes_as_none() {
        // Field 99 is a oneof variant this build does not know: a newer Sensor's message.
        let mut bytes = v1::MsgFromSensor { seq: 5, msg: None }.encode_to_vec();
        bytes.extend_from_slice(&[0x9a, 0x06, 0x02, 0x08, 0x01]); // field 99, length 2, {1: 1}
        let decoded =
            v1::MsgFromSensor::decode(bytes.as_slice()).expect("unknown fields are skipped");
        assert_eq!(decoded.seq, 5);
        assert!(decoded.msg.is_none());
    }

    #[test]
    fn malformed_bytes_are_an_error_not_a_panic() {
        let err = v1::MsgFromSensor::decode(&[0x0a, 0xff, 0xff, 0xff][..]).expect_err("truncated");
        assert!(!err.to_string().is_empty());
    }
}
