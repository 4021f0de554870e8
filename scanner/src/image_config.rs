//! The image configuration (OCI `application/vnd.oci.image.config.v1+json`, Docker's v2 config):
//! who the container runs as, its labels, ports, creation time, the layers' `diff_ids`, and the
//! history as the Dockerfile lines that built it — what the image policy criteria read (Image
//! User, Required/Disallowed Image Label, Image Age, Dockerfile Line).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    pub created: Option<String>,
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    pub config: RunConfig,
    pub rootfs: RootFs,
    pub history: Vec<History>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RunConfig {
    pub user: String,
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: String,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct History {
    pub created: Option<String>,
    pub created_by: String,
    pub comment: Option<String>,
    pub empty_layer: bool,
}

/// One Dockerfile instruction recovered from the history, as ACS's Dockerfile Line criterion
/// matches it: the instruction keyword and the rest of the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerfileLine {
    pub instruction: String,
    pub value: String,
    pub created: Option<String>,
}

impl ImageConfig {
    pub fn from_json(text: &str) -> Result<ImageConfig, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The history as Dockerfile lines, oldest first.
    pub fn dockerfile(&self) -> Vec<DockerfileLine> {
        self.history
            .iter()
            .filter(|h| !h.created_by.trim().is_empty())
            .map(|h| {
                let (instruction, value) = dockerfile_line(&h.created_by);
                DockerfileLine {
                    instruction,
                    value,
                    created: h.created.clone(),
                }
            })
            .collect()
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config.labels.clone().unwrap_or_default()
    }

    /// Exposed ports as `(port, protocol)`: `"8080/tcp"` → `(8080, "tcp")`.
    pub fn exposed_ports(&self) -> Vec<(u16, String)> {
        self.config
            .exposed_ports
            .keys()
            .filter_map(|k| {
                let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
                Some((port.parse().ok()?, proto.to_ascii_lowercase()))
            })
            .collect()
    }
}

const INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// A history entry's `created_by` as an instruction and its value:
/// - classic builder: `/bin/sh -c #(nop)  CMD ["sh"]` → `CMD`, `["sh"]`, and
///   `/bin/sh -c apt-get update` → `RUN`, `apt-get update`;
/// - BuildKit: `RUN /bin/sh -c apt-get update # buildkit` → `RUN`, `apt-get update`;
/// - anything else (a tool's own text) → the first word if it is an instruction, else `RUN`.
pub fn dockerfile_line(created_by: &str) -> (String, String) {
    let text = created_by.trim();
    let text = text.strip_suffix("# buildkit").unwrap_or(text).trim_end();
    let shell_prefixes = ["/bin/sh -c ", "/bin/bash -c "];
    let strip_shell = |t: &str| -> String {
        let mut t = t.trim_start();
        // `|2 ARG1=a ARG2=b /bin/sh -c …`: BuildKit's build-arg prefix.
        if let Some(rest) = t.strip_prefix('|') {
            let mut words = rest.splitn(2, ' ');
            if let (Some(n), Some(after)) = (words.next(), words.next())
                && let Ok(n) = n.parse::<usize>()
            {
                let mut after = after;
                for _ in 0..n {
                    after = after.split_once(' ').map(|(_, r)| r).unwrap_or("");
                }
                t = after;
            }
        }
        for p in &shell_prefixes {
            if let Some(rest) = t.strip_prefix(p) {
                return rest.trim().to_string();
            }
        }
        t.trim().to_string()
    };
    let body = strip_shell(text);
    if let Some(rest) = body.strip_prefix("#(nop)") {
        let rest = rest.trim();
        let (word, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if INSTRUCTIONS.contains(&word.to_ascii_uppercase().as_str()) {
            return (word.to_ascii_uppercase(), value.trim().to_string());
        }
        return ("RUN".into(), rest.to_string());
    }
    let (word, value) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    if INSTRUCTIONS.contains(&word) {
        let value = if word == "RUN" {
            strip_shell(value)
        } else {
            value.trim().to_string()
        };
        return (word.to_string(), value);
    }
    ("RUN".into(), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_becomes_dockerfile_lines() {
        let cases = [
            ("/bin/sh -c #(nop)  CMD [\"sh\"]", "CMD", "[\"sh\"]"),
            (
                "/bin/sh -c #(nop) ADD file:abc in / ",
                "ADD",
                "file:abc in /",
            ),
            (
                "/bin/sh -c apt-get update && apt-get install -y curl",
                "RUN",
                "apt-get update && apt-get install -y curl",
            ),
            (
                "RUN /bin/sh -c apk add --no-cache wget # buildkit",
                "RUN",
                "apk add --no-cache wget",
            ),
            (
                "RUN |2 A=1 B=2 /bin/sh -c make install # buildkit",
                "RUN",
                "make install",
            ),
            ("COPY app /app # buildkit", "COPY", "app /app"),
            ("USER 65532:65532", "USER", "65532:65532"),
            ("ENV PATH=/usr/bin", "ENV", "PATH=/usr/bin"),
        ];
        for (created_by, instruction, value) in cases {
            assert_eq!(
                dockerfile_line(created_by),
                (instruction.to_string(), value.to_string()),
                "{created_by}"
            );
        }
    }

    #[test]
    fn config_fields() {
        let json = r#"{"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05Z",
            "config":{"User":"1000","ExposedPorts":{"8080/tcp":{},"53/udp":{}},"Labels":{"a":"b"}},
            "rootfs":{"type":"layers","diff_ids":["sha256:aa"]},
            "history":[{"created_by":"/bin/sh -c #(nop) USER 1000","empty_layer":true}]}"#;
        let c = ImageConfig::from_json(json).expect("config");
        assert_eq!(c.config.user, "1000");
        assert_eq!(
            c.exposed_ports(),
            vec![(53, "udp".to_string()), (8080, "tcp".to_string())]
        );
        assert_eq!(c.labels().get("a").map(String::as_str), Some("b"));
        assert_eq!(c.rootfs.diff_ids, vec!["sha256:aa"]);
        assert_eq!(c.dockerfile()[0].instruction, "USER");
    }
}
