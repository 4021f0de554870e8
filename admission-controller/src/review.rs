//! `AdmissionReview` (`admission.k8s.io/v1` and `v1beta1`, which share their shape), decoded
//! straight from the request bytes: the envelope is walked by [`crate::scan`], each field a
//! decision reads is read off it (strings borrowed where JSON lets them be), the
//! workload `object` is read off the same scanner into the engine's model
//! ([`decode_workload_json_with`]; serde reads the rare object it refuses and says why; the
//! spec of an object with a controlling owner, decided at that owner, is passed over), and
//! everything else (`oldObject`, `options`, `requestKind`...) is passed over by its brackets
//! without being tokenized. Decoding a whole review into k8s-openapi types costs several times
//! what the decision does.

use std::borrow::Cow;

use rampart_policy::manifest::{decode_workload, workload_kind_in_group};
use rampart_policy::workload::{Spec, decode_workload_json_with};
use rampart_policy::{Workload, WorkloadKind};

use crate::scan::{ScanError, Scanner, next_special};

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
    /// `oldObject`'s JSON text (`null`, or empty when the review has none), not decoded.
    pub old_object: &'a str,
    pub dry_run: Option<bool>,
}

/// The request's `object`: a workload of the request's kind is decoded into the engine's model
/// with the review; anything else (a `Scale`, an object of a kind Rampart does not normalize,
/// one that does not decode as its kind) is kept as its JSON text for the decision to read or
/// to report.
#[derive(Debug)]
pub enum Object<'a> {
    /// Decoded, and its text. A controlled object's spec is not read
    /// ([`Spec::UnlessControlled`]); [`whole_workload`] reads all of it.
    Workload(Box<Workload>, &'a str),
    Raw(&'a str),
}

impl<'a> Object<'a> {
    /// The workload, decoding raw JSON as `kind`.
    pub fn into_workload(self, kind: WorkloadKind) -> Result<Box<Workload>, String> {
        match self {
            Object::Workload(w, _) if w.kind == kind => Ok(w),
            Object::Workload(..) => Err("the object is not of the request's kind".to_string()),
            Object::Raw(raw) => decode_object(kind, raw).map(Box::new),
        }
    }

    /// The object's JSON text.
    pub fn text(&self) -> &'a str {
        match self {
            Object::Workload(_, text) | Object::Raw(text) => text,
        }
    }

    /// Raw JSON, when the object was kept as such.
    pub fn raw(&self) -> Option<&'a str> {
        match self {
            Object::Raw(raw) => Some(raw),
            Object::Workload(..) => None,
        }
    }
}

/// The object's text as a workload of `kind`, its spec read whatever its metadata says.
pub fn whole_workload(kind: WorkloadKind, text: &str) -> Result<Workload, String> {
    let mut s = Scanner::new(text);
    match decode_workload_json_with(kind, &mut s, Spec::Always) {
        Ok(w) if s.end().is_ok() => Ok(w),
        // serde says what is wrong, and reads the rare shapes the fast decoder does not.
        _ => decode_object(kind, text),
    }
}

/// Decodes raw object JSON as a workload of `kind`, saying why it does not decode.
pub fn decode_object(kind: WorkloadKind, json: &str) -> Result<Workload, String> {
    let mut de = serde_json::Deserializer::from_str(json);
    decode_workload(kind, &mut de)
        .and_then(|w| de.end().map(|()| w))
        .map_err(|e| format!("the object does not decode: {e}"))
}

/// The workload kind a request's `kind` names, if Rampart normalizes it.
pub fn workload_kind_of(kind: &GroupVersionKind<'_>) -> Option<WorkloadKind> {
    workload_kind_in_group(&kind.group, &kind.kind)
}

/// Names the field a malformed part of the review was in.
fn malformed(field: &str, e: impl std::fmt::Display) -> ReviewError {
    ReviewError::Malformed(format!("{field}: {e}"))
}

impl From<ScanError> for ReviewError {
    fn from(e: ScanError) -> ReviewError {
        ReviewError::Malformed(e.to_string())
    }
}

/// A field's value, or the error naming the field.
fn named<T>(name: &str, value: Result<T, ScanError>) -> Result<T, ReviewError> {
    value.map_err(|e| malformed(name, e))
}

/// Walks the object that is the next value, handing each key to `field`; `null` is an empty
/// object.
fn each_key<'a>(
    s: &mut Scanner<'a>,
    mut field: impl FnMut(&mut Scanner<'a>, &str) -> Result<(), ScanError>,
) -> Result<(), ScanError> {
    if s.null() {
        return Ok(());
    }
    s.begin_object()?;
    while let Some(key) = s.next_key()? {
        field(s, &key)?;
    }
    Ok(())
}

/// Skips the next value.
fn skip(s: &mut Scanner<'_>) -> Result<(), ScanError> {
    s.value().map(drop)
}

/// `{group, version, <last>}`: a kind's or a resource's name, each part a string.
fn group_version<'a>(s: &mut Scanner<'a>, last: &str) -> Result<[Cow<'a, str>; 3], ScanError> {
    let mut parts: [Cow<'a, str>; 3] = Default::default();
    each_key(s, |s, key| {
        match key {
            "group" => parts[0] = s.string()?,
            "version" => parts[1] = s.string()?,
            _ if key == last => parts[2] = s.string()?,
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(parts)
}

fn group_version_kind<'a>(s: &mut Scanner<'a>) -> Result<GroupVersionKind<'a>, ScanError> {
    let [group, version, kind] = group_version(s, "kind")?;
    Ok(GroupVersionKind {
        group,
        version,
        kind,
    })
}

fn group_version_resource<'a>(s: &mut Scanner<'a>) -> Result<GroupVersionResource<'a>, ScanError> {
    let [group, version, resource] = group_version(s, "resource")?;
    Ok(GroupVersionResource {
        group,
        version,
        resource,
    })
}

fn user_info<'a>(s: &mut Scanner<'a>) -> Result<UserInfo<'a>, ScanError> {
    let mut u = UserInfo::default();
    each_key(s, |s, key| {
        match key {
            "username" => u.username = s.string()?,
            "groups" if s.null() => {}
            "groups" => {
                s.begin_array()?;
                while s.next_element()? {
                    u.groups.push(s.string()?);
                }
            }
            _ => skip(s)?,
        }
        Ok(())
    })?;
    Ok(u)
}

/// A string field; `null` reads as empty, as Go clients write absent strings.
fn string<'a>(s: &mut Scanner<'a>) -> Result<Cow<'a, str>, ReviewError> {
    if s.null() {
        return Ok(Cow::Borrowed(""));
    }
    Ok(s.string()?)
}

/// What the request's `object` field held.
struct ObjectField<'a> {
    text: &'a str,
    /// Decoded as it was read, when the kind came before it (the API server's order); boxed
    /// at once, so that the request is not moved with a workload inside.
    decoded: Option<Box<Workload>>,
    /// The kind it was decoded as while read, so a failure is not tried again.
    tried: Option<WorkloadKind>,
}

/// The request object's fields and its `object`.
fn read_request<'a>(
    s: &mut Scanner<'a>,
) -> Result<Option<(Request<'a>, ObjectField<'a>)>, ReviewError> {
    if s.null() {
        return Ok(None);
    }
    s.begin_object()?;
    let mut r = Request::default();
    let mut object = ObjectField {
        text: "null",
        decoded: None,
        tried: None,
    };
    while let Some(key) = s.next_key()? {
        match &*key {
            "uid" => r.uid = string(s)?,
            "kind" => r.kind = named("request.kind", group_version_kind(s))?,
            "resource" => r.resource = named("request.resource", group_version_resource(s))?,
            "subResource" => r.sub_resource = string(s)?,
            "name" => r.name = string(s)?,
            "namespace" => r.namespace = string(s)?,
            "operation" => r.operation = string(s)?,
            "userInfo" => r.user_info = named("request.userInfo", user_info(s))?,
            "object" => {
                let kind = workload_kind_of(&r.kind).filter(|_| r.sub_resource.is_empty());
                let mark = s.mark();
                object = match kind.map(|kind| read_object(kind, s)) {
                    Some(Ok(w)) => ObjectField {
                        text: s.since(mark),
                        decoded: Some(w),
                        tried: kind,
                    },
                    // Not a workload, or one the fast decoder refuses: serde reads it (or
                    // says why it cannot) when the decision asks for it.
                    _ => {
                        s.reset(mark);
                        ObjectField {
                            text: s.value()?,
                            decoded: None,
                            tried: kind,
                        }
                    }
                };
            }
            // Passed over all the same; its text is kept for the requests that compare the
            // object with it (an ephemeral container added to a pod).
            "oldObject" => r.old_object = s.value()?,
            "dryRun" => {
                r.dry_run = named(
                    "request.dryRun",
                    (!s.null()).then(|| s.boolean()).transpose(),
                )?;
            }
            _ => {
                s.value()?;
            }
        }
    }
    Ok(Some((r, object)))
}

#[derive(Debug, Default)]
pub struct GroupVersionKind<'a> {
    pub group: Cow<'a, str>,
    pub version: Cow<'a, str>,
    pub kind: Cow<'a, str>,
}

#[derive(Debug, Default)]
pub struct GroupVersionResource<'a> {
    pub group: Cow<'a, str>,
    pub version: Cow<'a, str>,
    pub resource: Cow<'a, str>,
}

#[derive(Debug, Default)]
pub struct UserInfo<'a> {
    pub username: Cow<'a, str>,
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

/// The request's object as a workload of `kind`: a controlled one's spec is not read, as the
/// decision is taken at its owner.
fn read_object(kind: WorkloadKind, s: &mut Scanner<'_>) -> Result<Box<Workload>, ScanError> {
    decode_workload_json_with(kind, s, Spec::UnlessControlled).map(Box::new)
}

/// Decodes and checks a review; the returned request has a uid.
pub fn decode(body: &[u8]) -> Result<(Cow<'_, str>, Request<'_>), ReviewError> {
    // UTF-8 checked once for the whole body, 16 or 32 bytes at a time (std's check goes a word
    // at a time: a twentieth of a decision); every span taken from it is then text. std says
    // where a bad body goes wrong.
    let text = match simdutf8::basic::from_utf8(body) {
        Ok(text) => text,
        Err(_) => {
            let e = std::str::from_utf8(body).err();
            let at = e.map_or(String::new(), |e| format!(": {e}"));
            return Err(ReviewError::Malformed(format!("the body is not UTF-8{at}")));
        }
    };
    let mut s = Scanner::new(text);
    let (mut api_version, mut kind, mut request) = (Cow::Borrowed(""), Cow::Borrowed(""), None);
    s.begin_object()?;
    while let Some(key) = s.next_key()? {
        match &*key {
            "apiVersion" => api_version = string(&mut s)?,
            "kind" => kind = string(&mut s)?,
            "request" => request = read_request(&mut s)?,
            _ => {
                s.value()?;
            }
        }
    }
    s.end()?;
    if api_version != V1 && api_version != V1BETA1 {
        return Err(ReviewError::ApiVersion(api_version.into_owned()));
    }
    if kind != "AdmissionReview" {
        return Err(ReviewError::Kind(kind.into_owned()));
    }
    let (mut request, object) = request.ok_or(ReviewError::NoRequest)?;
    if request.uid.is_empty() {
        return Err(ReviewError::NoUid);
    }
    // A subresource's object is the subresource (a Scale), not the workload.
    let kind = workload_kind_of(&request.kind).filter(|_| request.sub_resource.is_empty());
    let ObjectField {
        text,
        decoded,
        tried,
    } = object;
    request.object = match text.as_bytes().first() {
        _ if text == "null" => None,
        Some(b'{') => {
            let workload = match decoded {
                Some(w) if Some(w.kind) == kind => Some(w),
                // Already tried as this kind while it was read, and it did not decode.
                _ if tried.is_some() && tried == kind => None,
                // The kind came after the object.
                _ => kind.and_then(|kind| {
                    let mut s = Scanner::new(text);
                    read_object(kind, &mut s).ok()
                }),
            };
            Some(match workload {
                Some(w) => Object::Workload(w, text),
                // Not a workload, or one that does not decode: the decision reads or reports it.
                None => Object::Raw(text),
            })
        }
        _ => return Err(malformed("request.object", "expected an object or null")),
    };
    Ok((api_version, request))
}

/// The answer to one review.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    pub allowed: bool,
    /// Shown to the user on a denial.
    pub message: JsonText,
    /// Shown by kubectl on an allowed request (fail-open, break-glass...).
    pub warnings: Vec<String>,
}

/// Text as it goes inside a JSON string literal: escaped when it is added, so that what is
/// known in advance — a denial is mostly the violated policies' own texts, escaped once when the
/// policy set arrives — is copied into the answer as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonText(String);

impl JsonText {
    pub fn with_capacity(capacity: usize) -> JsonText {
        JsonText(String::with_capacity(capacity))
    }

    /// Appends `text`, escaped.
    pub fn push_str(&mut self, text: &str) {
        escape(&mut self.0, text);
    }

    /// Appends a literal written escaped already (`"\\n"` for a line break).
    pub fn push_escaped_literal(&mut self, json: &'static str) {
        debug_assert!(
            serde_json::from_str::<String>(&format!("\"{json}\"")).is_ok(),
            "{json:?} is not the inside of a JSON string"
        );
        self.0.push_str(json);
    }

    /// Appends text escaped already.
    pub fn push_json(&mut self, json: &JsonText) {
        self.0.push_str(&json.0);
    }

    /// The escaped text, as it appears between the literal's quotes.
    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// The text itself, unescaped (what a user reads; the answer is written from the escaped
    /// form).
    pub fn to_text(&self) -> String {
        let mut literal = String::with_capacity(self.0.len() + 2);
        literal.push('"');
        literal.push_str(&self.0);
        literal.push('"');
        // Only this type's escaper writes `self.0`, so it is always a valid literal's body.
        serde_json::from_str(&literal).unwrap_or_default()
    }
}

impl From<&str> for JsonText {
    fn from(text: &str) -> JsonText {
        let mut json = JsonText::with_capacity(text.len() + text.len() / 8);
        json.push_str(text);
        json
    }
}

impl From<String> for JsonText {
    fn from(text: String) -> JsonText {
        JsonText::from(text.as_str())
    }
}

/// The response review, in the request's apiVersion. Written directly: a denial's message is
/// a few kilobytes, escaped while it was built and copied here whole.
pub fn encode(api_version: &str, uid: &str, answer: &Answer) -> Vec<u8> {
    let warnings: usize = answer.warnings.iter().map(|w| w.len() + 3).sum();
    let mut out = String::with_capacity(192 + uid.len() + answer.message.0.len() + warnings);
    out.push_str("{\"apiVersion\":");
    json_string(&mut out, api_version);
    out.push_str(",\"kind\":\"AdmissionReview\",\"response\":{\"uid\":");
    json_string(&mut out, uid);
    if answer.allowed {
        out.push_str(",\"allowed\":true");
    } else {
        out.push_str(
            ",\"allowed\":false,\"status\":{\"code\":403,\"reason\":\"Forbidden\",\"message\":\"",
        );
        out.push_str(answer.message.as_json());
        out.push_str("\"}");
    }
    if !answer.warnings.is_empty() {
        out.push_str(",\"warnings\":[");
        for (i, w) in answer.warnings.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(&mut out, w);
        }
        out.push(']');
    }
    out.push_str("}}");
    out.into_bytes()
}

/// A JSON string literal.
fn json_string(out: &mut String, text: &str) {
    out.push('"');
    escape(out, text);
    out.push('"');
}

/// `text` escaped for a JSON string literal: runs of bytes that need no escape are copied whole.
fn escape(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut run = 0;
    // `next_special` stops only at ASCII bytes (quote, backslash, controls), so every run ends
    // on a character boundary.
    while let Some(i) = next_special(bytes, run) {
        out.push_str(&text[run..i]);
        match bytes[i] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        run = i + 1;
    }
    out.push_str(&text[run..]);
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
            Object::Workload(w, _) => assert_eq!(w.metadata.name.as_deref(), Some("web")),
            Object::Raw(raw) => panic!("decoded in the same pass, not kept raw: {raw}"),
        }
    }

    #[test]
    fn objects_are_decoded_wherever_the_kind_comes_and_kept_raw_when_not_workloads() {
        let review = |request: &str| {
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
            )
        };
        let deployment =
            r#"{"kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":"three"}}"#;
        // The object before the kind that says what it is.
        let body = review(
            r#"{"uid":"u","object":{"metadata":{"name":"web"}},"kind":{"group":"apps","version":"v1","kind":"Deployment"}}"#,
        );
        let (_, r) = decode(body.as_bytes()).expect("decodes");
        match r.object.expect("object") {
            Object::Workload(w, _) => assert_eq!(w.metadata.name.as_deref(), Some("web")),
            Object::Raw(raw) => panic!("decoded, not kept raw: {raw}"),
        }
        let cases = [
            // An object that is not a valid Deployment: the decision reports it.
            format!(
                r#"{{"uid":"u","kind":{{"group":"apps","version":"v1","kind":"Deployment"}},"object":{deployment}}}"#
            ),
            // A subresource named after the object: the object is a Scale, not the workload.
            r#"{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},"object":{"spec":{"replicas":2}},"subResource":"scale"}"#.to_string(),
            // A kind Rampart does not normalize.
            r#"{"uid":"u","kind":{"group":"","version":"v1","kind":"ConfigMap"},"object":{"data":{"a":"b"}}}"#.to_string(),
        ];
        for case in &cases {
            let body = review(case);
            let (_, r) = decode(body.as_bytes()).expect("decodes");
            let object = r.object.expect("object");
            assert!(object.raw().is_some(), "{case}: kept raw");
            assert_eq!(r.uid, "u");
        }
        let body = review(&cases[0]);
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
                ReviewError::Malformed("unexpected end of the body at byte 14".to_string()),
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
        // Bytes that are not UTF-8, early in the body and past the first wide chunks, are
        // refused with where they are.
        for at in [3, 200] {
            let mut body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","name":""#.to_vec();
            body.extend(std::iter::repeat_n(b'a', 300));
            body.extend_from_slice(b"\"}}");
            body[at] = 0xff;
            assert_eq!(
                decode(&body).err().map(|e| e.to_string()),
                Some(format!(
                    "malformed AdmissionReview: the body is not UTF-8: invalid utf-8 sequence of 1 bytes from index {at}"
                ))
            );
        }
        // A field of the wrong shape is named.
        let review = |request: &str| {
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
            )
        };
        for (request, starts) in [
            (
                r#"{"uid":"u","kind":"Deployment"}"#,
                "malformed AdmissionReview: request.kind: expected an object at byte",
            ),
            (
                r#"{"uid":"u","dryRun":"yes"}"#,
                "malformed AdmissionReview: request.dryRun: expected true or false at byte",
            ),
            (
                r#"{"uid":"u","object":5}"#,
                "malformed AdmissionReview: request.object: expected an object or null",
            ),
            (
                r#"{"uid":7}"#,
                "malformed AdmissionReview: expected a string at byte",
            ),
            (
                r#"[]"#,
                "malformed AdmissionReview: expected an object at byte",
            ),
        ] {
            let err = decode(review(request).as_bytes())
                .expect_err(request)
                .to_string();
            assert!(err.starts_with(starts), "{request}: {err}");
        }
    }

    #[test]
    fn every_string_survives_the_direct_encoder() {
        let nasty = "quote \" backslash \\ newline \n tab \t bell \u{7} nul \u{0} é ✓ \u{2028} end";
        let answer = Answer {
            allowed: false,
            message: nasty.into(),
            warnings: vec![nasty.to_string(), String::new()],
        };
        let out = encode(V1, nasty, &answer);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["response"]["uid"], nasty);
        assert_eq!(v["response"]["status"]["message"], nasty);
        assert_eq!(answer.message.to_text(), nasty);
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
            message: JsonText::default(),
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
