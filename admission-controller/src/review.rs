//! `AdmissionReview` (`admission.k8s.io/v1` and `v1beta1`, which share their shape), decoded
//! straight from the request bytes: strings are borrowed where JSON lets them be, `object` is
//! kept as raw JSON for the engine's decoder, and everything else (`oldObject`, `options`,
//! `managedFields`...) is skipped unread. Decoding a whole review into k8s-openapi types costs
//! several times what the decision does.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub const V1: &str = "admission.k8s.io/v1";
pub const V1BETA1: &str = "admission.k8s.io/v1beta1";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review<'a> {
    #[serde(borrow, default)]
    pub api_version: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub request: Option<Request<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request<'a> {
    #[serde(borrow, default)]
    pub uid: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: GroupVersionKind<'a>,
    #[serde(borrow, default)]
    pub resource: GroupVersionResource<'a>,
    #[serde(borrow, default)]
    pub sub_resource: Cow<'a, str>,
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub namespace: Cow<'a, str>,
    #[serde(borrow, default)]
    pub operation: Cow<'a, str>,
    #[serde(borrow, default)]
    pub user_info: UserInfo<'a>,
    #[serde(borrow, default)]
    pub object: Option<&'a RawValue>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct GroupVersionKind<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct GroupVersionResource<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    #[serde(borrow, default)]
    pub resource: Cow<'a, str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct UserInfo<'a> {
    #[serde(borrow, default)]
    pub username: Cow<'a, str>,
    #[serde(borrow, default)]
    pub groups: Vec<Cow<'a, str>>,
}

/// Why a body is not a review the controller can answer. The HTTP layer answers these with a
/// 400 and the message: without a uid there is no well-formed review to send back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReviewError {
    #[error("malformed AdmissionReview: {0}")]
    Malformed(String),
    #[error(
        "unsupported AdmissionReview apiVersion {0:?}: expected admission.k8s.io/v1 or admission.k8s.io/v1beta1"
    )]
    ApiVersion(String),
    #[error("expected kind AdmissionReview, found {0:?}")]
    Kind(String),
    #[error("AdmissionReview has no request")]
    NoRequest,
    #[error("AdmissionReview request has no uid")]
    NoUid,
}

/// Decodes and checks a review; the returned request has a uid.
pub fn decode(body: &[u8]) -> Result<(Cow<'_, str>, Request<'_>), ReviewError> {
    let review: Review<'_> =
        serde_json::from_slice(body).map_err(|e| ReviewError::Malformed(e.to_string()))?;
    if review.api_version != V1 && review.api_version != V1BETA1 {
        return Err(ReviewError::ApiVersion(review.api_version.into_owned()));
    }
    if review.kind != "AdmissionReview" {
        return Err(ReviewError::Kind(review.kind.into_owned()));
    }
    let request = review.request.ok_or(ReviewError::NoRequest)?;
    if request.uid.is_empty() {
        return Err(ReviewError::NoUid);
    }
    Ok((review.api_version, request))
}

/// The answer to one review.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    pub allowed: bool,
    /// Shown to the user on a denial.
    pub message: String,
    /// Shown by kubectl on an allowed request (fail-open, break-glass...).
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'a str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

#[derive(Serialize)]
struct StatusOut<'a> {
    code: u16,
    reason: &'static str,
    message: &'a str,
}

/// The response review, in the request's apiVersion.
pub fn encode(api_version: &str, uid: &str, answer: &Answer) -> Vec<u8> {
    let out = ReviewOut {
        api_version,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid,
            allowed: answer.allowed,
            status: (!answer.allowed).then_some(StatusOut {
                code: 403,
                reason: "Forbidden",
                message: &answer.message,
            }),
            warnings: &answer.warnings,
        },
    };
    // Serializing these plain structs cannot fail; an empty body would still be answered by
    // the API server's failure policy.
    serde_json::to_vec(&out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_decisions_need_and_skips_the_rest() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
            "uid":"705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind":{"group":"apps","version":"v1","kind":"Deployment"},
            "resource":{"group":"apps","version":"v1","resource":"deployments"},
            "requestKind":{"group":"apps","version":"v1","kind":"Deployment"},
            "name":"web","namespace":"shop","operation":"UPDATE",
            "userInfo":{"username":"alice\u0040example.com","groups":["devs","system:authenticated"],"extra":{"x":["y"]}},
            "object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"}},
            "oldObject":{"apiVersion":"apps/v1","kind":"Deployment"},
            "dryRun":true,"options":{"kind":"UpdateOptions"}}}"#;
        let (version, r) = decode(body).expect("decodes");
        assert_eq!(version, V1);
        assert_eq!(r.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(
            (r.kind.group.as_ref(), r.kind.kind.as_ref()),
            ("apps", "Deployment")
        );
        assert_eq!(r.resource.resource, "deployments");
        assert_eq!(r.operation, "UPDATE");
        assert_eq!(r.user_info.username, "alice@example.com");
        assert_eq!(r.user_info.groups, vec!["devs", "system:authenticated"]);
        assert_eq!(r.dry_run, Some(true));
        assert!(r.object.expect("object").get().contains("\"web\""));
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        let cases: &[(&[u8], ReviewError)] = &[
            (
                b"{\"apiVersion\":",
                ReviewError::Malformed(
                    "EOF while parsing a value at line 1 column 14".to_string(),
                ),
            ),
            (
                br#"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"u"}}"#,
                ReviewError::ApiVersion("admission.k8s.io/v2".into()),
            ),
            (
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"u"}}"#,
                ReviewError::Kind("Pod".into()),
            ),
            (
                br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#,
                ReviewError::NoRequest,
            ),
            (
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#,
                ReviewError::NoUid,
            ),
        ];
        for (body, want) in cases {
            assert_eq!(decode(body).err().as_ref(), Some(want));
        }
    }

    #[test]
    fn answers_in_the_request_version() {
        let denied = Answer {
            allowed: false,
            message: "no \"privileged\"".into(),
            warnings: Vec::new(),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&encode(V1BETA1, "u1", &denied)).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"apiVersion": V1BETA1, "kind": "AdmissionReview", "response": {
                "uid": "u1", "allowed": false,
                "status": {"code": 403, "reason": "Forbidden", "message": "no \"privileged\""}}})
        );
        let allowed = Answer {
            allowed: true,
            message: String::new(),
            warnings: vec!["fail-open".into()],
        };
        let v: serde_json::Value =
            serde_json::from_slice(&encode(V1, "u2", &allowed)).expect("json");
        assert_eq!(
            v["response"],
            serde_json::json!({"uid": "u2", "allowed": true, "warnings": ["fail-open"]})
        );
    }
}
