//! Container image references, parsed the way Docker and ACS read them.
//!
//! `nginx` is `docker.io/library/nginx:latest`; `localhost:5000/app` has registry `localhost:5000`;
//! a reference with only a digest has no tag (ACS reports no tag then, not `latest`).

use serde::Serialize;

pub const DEFAULT_REGISTRY: &str = "docker.io";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageName {
    /// The reference exactly as written in the manifest.
    pub full_name: String,
    pub registry: String,
    /// Repository path inside the registry, e.g. `library/nginx`.
    pub remote: String,
    /// Empty when the reference pins only a digest.
    pub tag: String,
    /// `sha256:...` when pinned.
    pub digest: Option<String>,
}

impl ImageName {
    /// Parses an image reference. Never fails: a malformed reference keeps its text as the remote
    /// so that policies on Image Remote still see it.
    pub fn parse(reference: &str) -> ImageName {
        ImageName::parse_owned(reference.trim().to_string())
    }

    /// [`ImageName::parse`] of a reference it may keep as the full name.
    pub fn parse_owned(reference: String) -> ImageName {
        let full_name = match reference.trim() {
            trimmed if trimmed.len() == reference.len() => reference,
            trimmed => trimmed.to_string(),
        };
        let (rest, digest) = match full_name.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.to_string())),
            None => (full_name.as_str(), None),
        };
        // A tag is what follows the last ':' after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                rest[last_slash + i + 1..].to_string(),
            ),
            None => (rest, String::new()),
        };
        let tag = if tag.is_empty() && digest.is_none() {
            "latest".to_string()
        } else {
            tag
        };
        let (registry, remote) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        let remote = if registry == DEFAULT_REGISTRY && !remote.contains('/') {
            let mut prefixed = String::with_capacity(8 + remote.len());
            prefixed.push_str("library/");
            prefixed.push_str(&remote);
            prefixed
        } else {
            remote
        };
        ImageName {
            full_name,
            registry,
            remote,
            tag,
            digest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(r: &str) -> (String, String, String, Option<String>) {
        let i = ImageName::parse(r);
        (i.registry, i.remote, i.tag, i.digest)
    }

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(
            parts("nginx"),
            (
                "docker.io".into(),
                "library/nginx".into(),
                "latest".into(),
                None
            )
        );
        assert_eq!(
            parts("nginx:1.27"),
            (
                "docker.io".into(),
                "library/nginx".into(),
                "1.27".into(),
                None
            )
        );
        assert_eq!(
            parts("bitnami/redis:7"),
            ("docker.io".into(), "bitnami/redis".into(), "7".into(), None)
        );
        assert_eq!(
            parts("index.docker.io/library/busybox"),
            (
                "docker.io".into(),
                "library/busybox".into(),
                "latest".into(),
                None
            )
        );
    }

    #[test]
    fn registries_ports_and_digests() {
        assert_eq!(
            parts("localhost:5000/team/app:v2"),
            (
                "localhost:5000".into(),
                "team/app".into(),
                "v2".into(),
                None
            )
        );
        assert_eq!(
            parts("gcr.io/google-samples/microservices-demo/frontend@sha256:abc"),
            (
                "gcr.io".into(),
                "google-samples/microservices-demo/frontend".into(),
                String::new(),
                Some("sha256:abc".into())
            )
        );
        assert_eq!(
            parts("quay.io/app:1.0@sha256:def"),
            (
                "quay.io".into(),
                "app".into(),
                "1.0".into(),
                Some("sha256:def".into())
            )
        );
        assert_eq!(
            parts("localhost/app"),
            ("localhost".into(), "app".into(), "latest".into(), None)
        );
    }
}
