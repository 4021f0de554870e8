//! `AdmissionReview` (`admission.k8s.io/v1` and `v1beta1`, which share their shape), decoded
//! straight from the request bytes in one pass: strings are borrowed where JSON lets them be, a
//! workload `object` is decoded into the engine's model as it is read, and everything else
//! (`oldObject`, `options`, `managedFields`, `status`...) is skipped unread. Decoding a whole
//! review into k8s-openapi types costs several times what the decision does.

use std::borrow::Cow;

use rampart_policy::manifest::{decode_workload, workload_kind_in_group};
use rampart_policy::{Workload, WorkloadKind};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

pub const V1: &str = "admission.k8s.io/v1";
pub const V1BETA1: &str = "admission.k8s.io/v1beta1";

/// One admission request: what decisions read. Strings borrow from the body where JSON lets
/// them.
#[derive(Debug, Default)]
pub struct Request<'a> {
    pub uid: Cow<'a, str>,
    pub kind: GroupVersionKind<'a>,
    pub resource: GroupVersionResource<'a>,
    pub sub_resource: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub namespace: Cow<'a, str>,
    pub operation: Cow<'a, str>,
    pub user_info: UserInfo<'a>,
    pub object: Option<Object<'a>>,
    pub dry_run: Option<bool>,
}

/// The request's `object`. The API server writes `kind` and `subResource` before it, so a
/// workload is decoded while the review is read, in the same pass; anything else (a `Scale`, an
/// object before its kind, one that does not decode as its kind) is kept as raw JSON for the
/// decision to read or to report.
#[derive(Debug)]
pub enum Object<'a> {
    Workload(Box<Workload>),
    Raw(&'a RawValue),
}

impl<'a> Object<'a> {
    /// The workload, decoding raw JSON as `kind`.
    pub fn into_workload(self, kind: WorkloadKind) -> Result<Workload, String> {
        match self {
            Object::Workload(w) if w.kind == kind => Ok(*w),
            Object::Workload(_) => Err("the object is not of the request's kind".to_string()),
            Object::Raw(raw) => decode_object(kind, raw.get()),
        }
    }

    /// Raw JSON, when the object was kept as such.
    pub fn raw(&self) -> Option<&'a str> {
        match self {
            Object::Raw(raw) => Some(raw.get()),
            Object::Workload(_) => None,
        }
    }
}

/// Decodes raw object JSON as a workload of `kind`, saying why it does not decode.
pub fn decode_object(kind: WorkloadKind, json: &str) -> Result<Workload, String> {
    let mut de = serde_json::Deserializer::from_str(json);
    decode_workload(kind, &mut de).map_err(|e| format!("the object does not decode: {e}"))
}

/// The workload kind a request's `kind` names, if Rampart normalizes it.
pub fn workload_kind_of(kind: &GroupVersionKind<'_>) -> Option<WorkloadKind> {
    workload_kind_in_group(&kind.group, &kind.kind)
}

/// A string that borrows from the input unless JSON escapes forced a copy.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Str<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum ReviewField {
    ApiVersion,
    Kind,
    Request,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum RequestField {
    Uid,
    Kind,
    Resource,
    SubResource,
    Name,
    Namespace,
    Operation,
    UserInfo,
    Object,
    DryRun,
    #[serde(other)]
    Other,
}

/// Why a fast read gave up: the slow one, keeping the object raw, decides what it is.
const REREAD: &str = "the object is read again as raw JSON";

/// Reads a review; `eager` decodes a workload object in the same pass.
#[derive(Clone, Copy)]
struct ReviewSeed {
    eager: bool,
}

struct Review<'a> {
    api_version: Cow<'a, str>,
    kind: Cow<'a, str>,
    request: Option<Request<'a>>,
}

impl<'de> DeserializeSeed<'de> for ReviewSeed {
    type Value = Review<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Review<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ReviewSeed {
    type Value = Review<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an AdmissionReview object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Review<'de>, A::Error> {
        let mut review = Review {
            api_version: Cow::Borrowed(""),
            kind: Cow::Borrowed(""),
            request: None,
        };
        while let Some(field) = map.next_key()? {
            match field {
                ReviewField::ApiVersion => review.api_version = map.next_value::<Str>()?.0,
                ReviewField::Kind => review.kind = map.next_value::<Str>()?.0,
                ReviewField::Request => review.request = map.next_value_seed(RequestSeed(self))?,
                ReviewField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(review)
    }
}

struct RequestSeed(ReviewSeed);

impl<'de> DeserializeSeed<'de> for RequestSeed {
    type Value = Option<Request<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Request<'de>>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed {
    type Value = Option<Request<'de>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an AdmissionReview request")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let eager = self.0.eager;
        let mut r = Request::default();
        let mut decoded = false;
        while let Some(field) = map.next_key()? {
            match field {
                RequestField::Uid => r.uid = map.next_value::<Str>()?.0,
                RequestField::Kind => {
                    r.kind = map.next_value()?;
                    if decoded {
                        return Err(de::Error::custom(REREAD));
                    }
                }
                RequestField::Resource => r.resource = map.next_value()?,
                RequestField::SubResource => {
                    r.sub_resource = map.next_value::<Str>()?.0;
                    if decoded && !r.sub_resource.is_empty() {
                        return Err(de::Error::custom(REREAD));
                    }
                }
                RequestField::Name => r.name = map.next_value::<Str>()?.0,
                RequestField::Namespace => r.namespace = map.next_value::<Str>()?.0,
                RequestField::Operation => r.operation = map.next_value::<Str>()?.0,
                RequestField::UserInfo => r.user_info = map.next_value()?,
                RequestField::Object => {
                    let kind = if eager && r.sub_resource.is_empty() {
                        workload_kind_of(&r.kind)
                    } else {
                        None
                    };
                    r.object = match kind {
                        Some(kind) => {
                            decoded = true;
                            map.next_value_seed(WorkloadSeed(kind))?
                                .map(|w| Object::Workload(Box::new(w)))
                        }
                        None => map.next_value::<Option<&RawValue>>()?.map(Object::Raw),
                    };
                }
                RequestField::DryRun => r.dry_run = map.next_value()?,
                RequestField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(r))
    }
}

/// A workload of a known kind, or `null`.
struct WorkloadSeed(WorkloadKind);

impl<'de> DeserializeSeed<'de> for WorkloadSeed {
    type Value = Option<Workload>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Workload>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for WorkloadSeed {
    type Value = Option<Workload>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a {}", self.0.as_str())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        decode_workload(self.0, d).map(Some)
    }
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
    // UTF-8 checked once for the whole body (std's check runs over ASCII a word at a time),
    // instead of string by string while parsing.
    let text = std::str::from_utf8(body)
        .map_err(|e| ReviewError::Malformed(format!("the body is not UTF-8: {e}")))?;
    let read = |eager| {
        let mut de = serde_json::Deserializer::from_str(text);
        let review = ReviewSeed { eager }.deserialize(&mut de)?;
        de.end().map(|()| review)
    };
    // One pass normally; a second, keeping the object raw, when the object came before its kind
    // or does not decode (the decision then reports why, by the failure mode).
    let review = read(true)
        .or_else(|_| read(false))
        .map_err(|e| ReviewError::Malformed(e.to_string()))?;
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

/// The response review, in the request's apiVersion. Written directly: a denial's message is
/// a few kilobytes, and escaping it run by run is several times cheaper than byte by byte.
pub fn encode(api_version: &str, uid: &str, answer: &Answer) -> Vec<u8> {
    let warnings: usize = answer.warnings.iter().map(|w| w.len() + 3).sum();
    let mut out = Vec::with_capacity(160 + uid.len() + answer.message.len() + warnings);
    out.extend_from_slice(b"{\"apiVersion\":");
    json_string(&mut out, api_version);
    out.extend_from_slice(b",\"kind\":\"AdmissionReview\",\"response\":{\"uid\":");
    json_string(&mut out, uid);
    if answer.allowed {
        out.extend_from_slice(b",\"allowed\":true");
    } else {
        out.extend_from_slice(
            b",\"allowed\":false,\"status\":{\"code\":403,\"reason\":\"Forbidden\",\"message\":",
        );
        json_string(&mut out, &answer.message);
        out.push(b'}');
    }
    if !answer.warnings.is_empty() {
        out.extend_from_slice(b",\"warnings\":[");
        for (i, w) in answer.warnings.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_string(&mut out, w);
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}}");
    out
}

/// The first byte at or after `from` that a JSON string must escape (quote, backslash, a
/// control): eight bytes at a time, then byte by byte inside a word that holds one.
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Exact for "some byte is below n" (n ≤ 0x80), though not for which one.
    let below = |v: u64, n: u8| v.wrapping_sub(ONES * u64::from(n)) & !v & HIGHS != 0;
    let escape = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    let rest = bytes.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut base = from;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        let flagged = below(v, 0x20)
            || below(v ^ (ONES * u64::from(b'"')), 1)
            || below(v ^ (ONES * u64::from(b'\\')), 1);
        if flagged && let Some(i) = chunk.iter().position(|&b| escape(b)) {
            return Some(base + i);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| escape(b))
        .map(|i| base + i)
}

/// A JSON string literal: runs of bytes that need no escape are copied whole.
fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    while let Some(i) = next_escape(bytes, run) {
        let b = bytes[i];
        out.extend_from_slice(&bytes[run..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
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
        match r.object.expect("object") {
            Object::Workload(w) => assert_eq!(w.metadata.name.as_deref(), Some("web")),
            Object::Raw(raw) => panic!("decoded in the same pass, not kept raw: {raw}"),
        }
    }

    #[test]
    fn objects_it_cannot_decode_in_one_pass_are_kept_raw() {
        let review = |request: &str| {
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
            )
        };
        let deployment =
            r#"{"kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":"three"}}"#;
        let cases = [
            // The object before the kind that says what it is.
            r#"{"uid":"u","object":{"metadata":{"name":"web"}},"kind":{"group":"apps","version":"v1","kind":"Deployment"}}"#.to_string(),
            // An object that is not a valid Deployment: the decision reports it.
            format!(
                r#"{{"uid":"u","kind":{{"group":"apps","version":"v1","kind":"Deployment"}},"object":{deployment}}}"#
            ),
            // A subresource named after the object: the object is a Scale, not the workload.
            r#"{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},"object":{"spec":{"replicas":2}},"subResource":"scale"}"#.to_string(),
        ];
        for case in &cases {
            let body = review(case);
            let (_, r) = decode(body.as_bytes()).expect("decodes");
            let object = r.object.expect("object");
            assert!(object.raw().is_some(), "{case}: kept raw");
            assert_eq!(r.uid, "u");
        }
        let body = review(&cases[1]);
        let (_, r) = decode(body.as_bytes()).expect("decodes");
        let err = r
            .object
            .expect("object")
            .into_workload(WorkloadKind::Deployment)
            .expect_err("not a Deployment");
        assert!(err.contains("invalid type"), "{err}");
        // A null object is no object.
        let body =
            review(r#"{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"object":null}"#);
        assert!(decode(body.as_bytes()).expect("decodes").1.object.is_none());
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
    fn every_string_survives_the_direct_encoder() {
        let nasty = "quote \" backslash \\ newline \n tab \t bell \u{7} nul \u{0} é ✓ \u{2028} end";
        let answer = Answer {
            allowed: false,
            message: nasty.to_string(),
            warnings: vec![nasty.to_string(), String::new()],
        };
        let out = encode(V1, nasty, &answer);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["response"]["uid"], nasty);
        assert_eq!(v["response"]["status"]["message"], nasty);
        assert_eq!(v["response"]["warnings"], serde_json::json!([nasty, ""]));
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
