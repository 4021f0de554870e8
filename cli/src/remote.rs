//! Talking to Central's HTTPS API: `-e/--endpoint`, credentials, `--ca`.
//!
//! Credentials, first found wins: `--token`, `--token-file`, `RAMPART_API_TOKEN`, then the admin
//! password (`--password` / `RAMPART_ADMIN_PASSWORD`). The CA: `--ca`/`RAMPART_CA`, else
//! `./rampart-data/ca.pem` when it exists (what `rampart up` writes), else the public web roots.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use clap::Args;
use serde_json::Value;

#[derive(Debug, Args, Clone, Default)]
pub struct RemoteArgs {
    /// Central's API, e.g. https://localhost:8443 (remote mode for policy, alert, cluster,
    /// token and init-bundle commands, and `deployment check --remote`).
    #[arg(short = 'e', long, global = true, env = "RAMPART_ENDPOINT")]
    pub endpoint: Option<String>,
    /// API token.
    #[arg(long, global = true, env = "RAMPART_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the API token.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "RAMPART_API_TOKEN_FILE"
    )]
    pub token_file: Option<PathBuf>,
    /// The admin password (prefer a token for automation). May start with `-`.
    #[arg(
        long,
        global = true,
        env = "RAMPART_ADMIN_PASSWORD",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub password: Option<String>,
    /// CA certificate that signed Central's serving certificate (PEM).
    #[arg(long, global = true, value_name = "FILE", env = "RAMPART_CA")]
    pub ca: Option<PathBuf>,
    /// Seconds to wait for Central.
    #[arg(long, global = true, default_value_t = 60, env = "RAMPART_TIMEOUT")]
    pub timeout: u64,
}

/// The CA `rampart up` writes, used when no `--ca` is given.
const DEFAULT_CA: &str = "./rampart-data/ca.pem";
/// Largest answer accepted from Central.
const MAX_RESPONSE: u64 = 256 * 1024 * 1024;

#[derive(Debug)]
pub struct Remote {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
}

impl RemoteArgs {
    /// The remote client when an endpoint is given.
    pub fn connect(&self) -> anyhow::Result<Option<Remote>> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(None);
        };
        let base = endpoint.trim_end_matches('/').to_string();
        let base = if base.starts_with("https://") {
            base
        } else if base.starts_with("http://") {
            bail!("Central's API is HTTPS only; use https:// in --endpoint");
        } else {
            format!("https://{base}")
        };
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => Some(t.trim().to_string()),
            (None, Some(f)) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read the token file {}", f.display()))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        let authorization = match (token, &self.password) {
            (Some(t), _) => Some(format!("Bearer {t}")),
            (None, Some(p)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("admin:{p}"))
            )),
            (None, None) => None,
        };
        let ca = match &self.ca {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(DEFAULT_CA)).filter(|p| p.exists()),
        };
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = ca {
            let pem = std::fs::read(&path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                bail!("{} holds no PEM certificate", path.display());
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(self.timeout.max(1))))
            .user_agent(concat!("rampart-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Some(Remote {
            agent,
            base,
            authorization,
        }))
    }

    /// The remote client; an error when no endpoint is given.
    pub fn require(&self, what: &str) -> anyhow::Result<Remote> {
        self.connect()?.ok_or_else(|| {
            anyhow::anyhow!("{what} needs Central: pass -e/--endpoint (or set RAMPART_ENDPOINT)")
        })
    }
}

impl Remote {
    /// Sends a request; a non-2xx answer becomes an error carrying Central's message.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(a) = &self.authorization {
            builder = builder.header("Authorization", a);
        }
        let (content_type, bytes) = body.unwrap_or(("application/json", Vec::new()));
        let request = builder
            .header("Content-Type", content_type)
            .header("Accept", "application/json")
            .body(bytes)
            .context("cannot build the request")?;
        let mut response = self.agent.run(request).map_err(|e| {
            // TLS failures arrive wrapped in I/O errors; the text is what tells them apart.
            let text = e.to_string();
            let hint = if matches!(e, ureq::Error::Tls(_) | ureq::Error::Rustls(_))
                || text.contains("certificate")
            {
                " (is --ca the CA that signed Central's certificate? `rampart up` writes it to rampart-data/ca.pem)"
            } else {
                ""
            };
            anyhow::anyhow!("cannot reach Central at {}: {e}{hint}", self.base)
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_string()
            .with_context(|| format!("reading Central's answer to {method} {path}"))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let message = value["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        let details: Vec<&str> = value["details"]
            .as_array()
            .map(|d| d.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let hint = match status {
            401 if self.authorization.is_none() => {
                " (pass --token, --token-file or RAMPART_API_TOKEN, or --password for admin)"
            }
            _ => "",
        };
        let mut err = format!("Central answered {status}: {message}{hint}");
        for d in details {
            err.push_str("\n  ");
            err.push_str(d);
        }
        bail!(err)
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.request("GET", path, None)
    }

    pub fn send_json(&self, method: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.request(
            method,
            path,
            Some(("application/json", body.to_string().into_bytes())),
        )
    }
}

/// Percent-encodes a query or path component.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
