//! `--web-config FILE`: TLS, basic authentication, response headers and a
//! rate limit, in the format of Prometheus' exporter-toolkit (the
//! `--web.config.file` of node_exporter and every exporter built on it), so
//! that one file serves them and zombiescan. The keys and their meaning are
//! those of exporter-toolkit's `web/tls_config.go` and `web/handler.go`
//! (github.com/prometheus/exporter-toolkit): unknown keys are refused as
//! its strict YAML reading refuses them; relative paths are read from the
//! file's directory; `basic_auth_users` maps a user to a bcrypt hash.
//!
//! Where rustls cannot do what Go's TLS does, the file is refused with a
//! sentence rather than served with less than it asks: TLS 1.0 and 1.1 as
//! the highest version, a client certificate requested without being
//! verified (`RequestClientCert`, `RequireAnyClientCert`), CBC cipher
//! suites, P-521, and `client_allowed_sans`. A `min_version` of TLS10 or
//! TLS11 is served as TLS 1.2, the oldest rustls speaks.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// The most bytes read from the file and from each file it names.
const MAX_FILE: u64 = 1 << 20;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    rate_limit: Option<RateFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    #[serde(default)]
    cipher_suites: Vec<String>,
    #[serde(default)]
    curve_preferences: Vec<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    /// rustls always prefers its own order: accepted, nothing to do.
    #[allow(dead_code)]
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// zombiescan speaks HTTP/1.1 only (ALPN says so); Prometheus scrapes
    /// it as it scrapes any HTTP/1.1 target.
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RateFile {
    #[serde(default)]
    burst: u32,
    interval: Option<String>,
}

/// A web config, read and checked.
pub struct Web {
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub users: Option<Arc<Users>>,
    /// Added to every response.
    pub headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    pub limit: Option<RateLimit>,
}

impl Web {
    /// No file: plain HTTP, no authentication, as before the flag.
    pub fn none() -> Web {
        Web {
            tls: None,
            users: None,
            headers: Vec::new(),
            limit: None,
        }
    }

    /// Reads and checks `path`; the error is one sentence.
    pub fn load(path: &Path) -> Result<Web, String> {
        let text = read_bounded(path)?;
        // An empty file is an empty configuration, as in exporter-toolkit.
        let file: File = if text.iter().all(u8::is_ascii_whitespace) {
            File::default()
        } else {
            serde_yaml_ng::from_slice(&text).map_err(|e| e.to_string())?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = match &file.tls_server_config {
            Some(t) if t.enabled() => Some(tokio_rustls::TlsAcceptor::from(Arc::new(
                t.server_config(dir)
                    .map_err(|e| format!("tls_server_config: {e}"))?,
            ))),
            _ => None,
        };
        let users = match file.basic_auth_users {
            Some(u) if !u.is_empty() => Some(Arc::new(Users::new(u)?)),
            _ => None,
        };
        let mut headers = Vec::new();
        for (k, v) in file.http_server_config.unwrap_or_default().headers {
            headers.push(header(&k, &v)?);
        }
        let limit = match file.rate_limit {
            Some(RateFile {
                burst,
                interval: Some(i),
            }) => {
                let every = crate::config::parse_duration(&i).ok_or_else(|| {
                    format!("rate_limit: interval {i:?}: not a duration; write e.g. 1s, 100ms")
                })?;
                (!every.is_zero()).then(|| RateLimit::new(burst, every))
            }
            _ => None,
        };
        Ok(Web {
            tls,
            users,
            headers,
            limit,
        })
    }
}

/// A small file, read whole: a regular file of at most [`MAX_FILE`] bytes.
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let what = |e: std::io::Error| format!("{}: {e}", path.display());
    let f = std::fs::File::open(path).map_err(what)?;
    if !f.metadata().map_err(what)?.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let mut out = Vec::new();
    f.take(MAX_FILE + 1).read_to_end(&mut out).map_err(what)?;
    if out.len() as u64 > MAX_FILE {
        return Err(format!("{}: larger than {MAX_FILE} bytes", path.display()));
    }
    Ok(out)
}

/// exporter-toolkit allows these headers, some only with these values.
fn header(
    name: &str,
    value: &str,
) -> Result<(hyper::header::HeaderName, hyper::header::HeaderValue), String> {
    let allowed: &[&str] = match name {
        "Strict-Transport-Security" | "X-XSS-Protection" | "Content-Security-Policy" => &[],
        "X-Content-Type-Options" => &["nosniff"],
        "X-Frame-Options" => &["deny", "sameorigin"],
        _ => {
            return Err(format!(
                "http_server_config: header {name:?} can not be configured"
            ));
        }
    };
    if !allowed.is_empty() && !allowed.contains(&value) {
        return Err(format!(
            "http_server_config: {name}: {value:?}: expected one of {allowed:?}"
        ));
    }
    let n = hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
    let v = hyper::header::HeaderValue::from_str(value)
        .map_err(|_| format!("http_server_config: {name}: not a header value"))?;
    Ok((n, v))
}

impl TlsFile {
    /// exporter-toolkit's `IsEnabled`: any of these keys turns TLS on.
    fn enabled(&self) -> bool {
        self.cert_file.is_some()
            || self.cert.is_some()
            || self.key_file.is_some()
            || self.key.is_some()
            || self.client_ca_file.is_some()
            || self.client_ca.is_some()
            || self.client_auth_type.is_some()
    }

    fn server_config(&self, dir: &Path) -> Result<ServerConfig, String> {
        let pem = |inline: &Option<String>, file: &Option<String>, what: &str| match (inline, file)
        {
            (_, Some(f)) if !f.is_empty() => {
                let p = dir.join(f);
                read_bounded(&p).map_err(|e| format!("{what}_file {e}"))
            }
            (Some(text), _) if !text.is_empty() => Ok(text.clone().into_bytes()),
            _ => Err(format!("missing one of {what} or {what}_file")),
        };
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&pem(&self.cert, &self.cert_file, "cert")?)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("cert: {e}"))?;
        if certs.is_empty() {
            return Err("cert: no PEM certificate in it".into());
        }
        let key = PrivateKeyDer::from_pem_slice(&pem(&self.key, &self.key_file, "key")?)
            .map_err(|e| format!("key: {e}"))?;
        let provider = Arc::new(self.provider()?);
        let versions = self.versions()?;
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|e| e.to_string())?;
        let ca = match (&self.client_ca_file, &self.client_ca) {
            (Some(f), _) if !f.is_empty() => {
                Some(read_bounded(&dir.join(f)).map_err(|e| format!("client_ca_file {e}"))?)
            }
            (_, Some(text)) if !text.is_empty() => Some(text.clone().into_bytes()),
            _ => None,
        };
        if self
            .client_allowed_sans
            .as_ref()
            .is_some_and(|s| !s.is_empty())
        {
            return Err(
                "client_allowed_sans is not supported by zombiescan: restrict clients with client_ca_file instead"
                    .into(),
            );
        }
        let auth = self.client_auth_type.as_deref().unwrap_or("NoClientCert");
        let builder = match auth {
            "" | "NoClientCert" => {
                if ca.is_some() {
                    return Err(
                        "client CA's have been configured without a Client Auth Policy".into(),
                    );
                }
                builder.with_no_client_auth()
            }
            "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
                let ca =
                    ca.ok_or_else(|| format!("client_auth_type {auth} needs client_ca_file"))?;
                let mut roots = RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(&ca) {
                    let c = c.map_err(|e| format!("client_ca: {e}"))?;
                    roots.add(c).map_err(|e| format!("client_ca: {e}"))?;
                }
                let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let v = if auth == "VerifyClientCertIfGiven" {
                    v.allow_unauthenticated()
                } else {
                    v
                };
                builder.with_client_cert_verifier(v.build().map_err(|e| e.to_string())?)
            }
            "RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert" => {
                return Err(format!(
                    "client_auth_type {auth}: zombiescan verifies every client certificate it asks for; use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file"
                ));
            }
            other => return Err(format!("invalid ClientAuth: {other}")),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("cert and key: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    fn versions(&self) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
        let number = |v: &Option<String>, default: u8, what: &str| match v.as_deref() {
            None | Some("") => Ok(default),
            Some("TLS10") => Ok(10),
            Some("TLS11") => Ok(11),
            Some("TLS12") => Ok(12),
            Some("TLS13") => Ok(13),
            Some(other) => Err(format!(
                "{what} {other:?}: one of TLS10, TLS11, TLS12, TLS13"
            )),
        };
        // rustls speaks 1.2 and 1.3: an older floor is 1.2.
        let min = number(&self.min_version, 12, "min_version")?.max(12);
        let max = number(&self.max_version, 13, "max_version")?;
        if max < 12 {
            return Err(format!(
                "max_version TLS{max}: zombiescan speaks TLS 1.2 and 1.3 only"
            ));
        }
        if min > max {
            return Err("min_version is above max_version".into());
        }
        let mut out = Vec::new();
        if max == 13 {
            out.push(&rustls::version::TLS13);
        }
        if min == 12 {
            out.push(&rustls::version::TLS12);
        }
        Ok(out)
    }

    /// ring's suites and groups, narrowed to the file's `cipher_suites`
    /// (Go's names, which are the IANA ones; as in Go they choose among
    /// TLS 1.2's suites only) and `curve_preferences`, in its order.
    fn provider(&self) -> Result<CryptoProvider, String> {
        // ring rather than aws-lc-rs: no cmake and no large C library in
        // the static build. It lacks the post-quantum hybrid key exchange
        // (X25519MLKEM768), which rustls marks by deprecating it; the
        // classical groups Prometheus offers are all here.
        #[allow(deprecated)]
        let mut p = rustls::crypto::ring::default_provider();
        if !self.cipher_suites.is_empty() {
            let name = |s: &SupportedCipherSuite| format!("{:?}", s.suite());
            let mut kept: Vec<SupportedCipherSuite> = p
                .cipher_suites
                .iter()
                .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
                .copied()
                .collect();
            for want in &self.cipher_suites {
                if matches!(
                    want.as_str(),
                    "TLS_AES_128_GCM_SHA256"
                        | "TLS_AES_256_GCM_SHA384"
                        | "TLS_CHACHA20_POLY1305_SHA256"
                ) {
                    continue;
                }
                let go = |s: &SupportedCipherSuite| {
                    let n = name(s);
                    n == *want || n.strip_suffix("_SHA256") == Some(want.as_str())
                };
                let suite = p
                    .cipher_suites
                    .iter()
                    .find(|s| matches!(s, SupportedCipherSuite::Tls12(_)) && go(s))
                    .ok_or_else(|| {
                        format!(
                            "cipher_suites: {want:?} is not one zombiescan offers (ECDHE with AES-GCM or ChaCha20-Poly1305)"
                        )
                    })?;
                kept.push(*suite);
            }
            p.cipher_suites = kept;
        }
        if !self.curve_preferences.is_empty() {
            let mut groups = Vec::new();
            for want in &self.curve_preferences {
                let named = match want.as_str() {
                    "CurveP256" => rustls::NamedGroup::secp256r1,
                    "CurveP384" => rustls::NamedGroup::secp384r1,
                    "X25519" => rustls::NamedGroup::X25519,
                    other => {
                        return Err(format!(
                            "curve_preferences: {other:?} is not one zombiescan offers (CurveP256, CurveP384, X25519)"
                        ));
                    }
                };
                if let Some(g) = p.kx_groups.iter().find(|g| g.name() == named) {
                    groups.push(*g);
                }
            }
            p.kx_groups = groups;
        }
        Ok(p)
    }
}

/// `basic_auth_users`, with the passwords bcrypt accepted remembered: a
/// scraper that comes back with the same password costs one hash lookup,
/// not a bcrypt. A refusal is not remembered: a guesser pays a bcrypt for
/// every guess, and cannot push a right password out of the memory to
/// make the scraper queue behind its guesses. As in exporter-toolkit, an
/// unknown user is checked against a fixed hash, so that timing does not
/// tell which users exist.
pub struct Users {
    hashes: HashMap<String, String>,
    /// SHA-256 of (user, hash, password) of the passwords accepted.
    accepted: Mutex<std::collections::HashSet<[u8; 32]>>,
}

/// bcrypt (cost 10) of a password no one has: the hash an unknown user's
/// password is checked against.
const UNKNOWN_USER: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// At most this many accepted passwords are remembered; then they are
/// forgotten (only a user can add one).
const ACCEPTED_MAX: usize = 256;

impl Users {
    fn new(hashes: BTreeMap<String, String>) -> Result<Users, String> {
        for (user, hash) in &hashes {
            hash.parse::<bcrypt::HashParts>()
                .map_err(|e| format!("basic_auth_users: {user}: not a bcrypt hash ({e})"))?;
        }
        Ok(Users {
            hashes: hashes.into_iter().collect(),
            accepted: Mutex::new(std::collections::HashSet::new()),
        })
    }

    fn key(user: &str, hash: &str, password: &str) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [user, hash, password] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part.as_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// Whether bcrypt accepted this user and password before.
    pub fn remembered(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.hashes.get(user) else {
            return false;
        };
        let key = Users::key(user, hash, password);
        let accepted = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
        accepted.contains(&key)
    }

    /// bcrypt's answer (slow by design: run it off the serving thread),
    /// remembered.
    pub fn check(&self, user: &str, password: &str) -> bool {
        let known = self.hashes.get(user);
        let hash = known.map_or(UNKNOWN_USER, String::as_str);
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known.is_some();
        if ok {
            let key = Users::key(user, hash, password);
            let mut accepted = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
            if accepted.len() >= ACCEPTED_MAX {
                accepted.clear();
            }
            accepted.insert(key);
        }
        ok
    }
}

/// exporter-toolkit's `rate_limit`: one token every `interval`, at most
/// `burst` saved; a request that finds none is answered 429.
pub struct RateLimit {
    burst: f64,
    every: Duration,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    fn new(burst: u32, every: Duration) -> RateLimit {
        let burst = f64::from(burst.max(1));
        RateLimit {
            burst,
            every,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    pub fn allow(&self) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let earned = now.duration_since(st.1).as_secs_f64() / self.every.as_secs_f64();
        st.0 = (st.0 + earned).min(self.burst);
        st.1 = now;
        if st.0 >= 1.0 {
            st.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The `Authorization: Basic` credentials of a request, if well formed.
pub fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, b64) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64_decode(b64.trim())?;
    let raw = String::from_utf8(raw).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Standard base64 with padding, as RFC 7617 sends it.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) || s.len() > 4096 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (i, chunk) in s.chunks(4).enumerate() {
        let last = i == s.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read_as_rfc_7617_sends_them() {
        // "prometheus:s3cret" and "a:" in base64.
        assert_eq!(
            basic_credentials(b"Basic cHJvbWV0aGV1czpzM2NyZXQ="),
            Some(("prometheus".into(), "s3cret".into()))
        );
        assert_eq!(
            basic_credentials(b"basic YTo="),
            Some(("a".into(), String::new()))
        );
        for bad in [
            &b"Bearer cHJvbWV0aGV1czpzM2NyZXQ="[..],
            b"Basic !!!!",
            b"Basic cHJvbWV0aGV1cw==",
            b"Basic YT=o",
            b"Basic",
        ] {
            assert_eq!(
                basic_credentials(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn file(text: &str) -> (std::path::PathBuf, Result<Web, String>) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("zombiescan-web-{}-{n}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let p = dir.join("web.yml");
        std::fs::write(&p, text).expect("write");
        let r = Web::load(&p);
        let _ = std::fs::remove_dir_all(&dir);
        (p, r)
    }

    #[test]
    fn users_are_checked_with_bcrypt_and_remembered() {
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let (_, web) = file(&format!("basic_auth_users:\n  prometheus: '{hash}'\n"));
        let web = web.expect("loads");
        assert!(web.tls.is_none());
        let users = web.users.expect("users");
        assert!(!users.remembered("prometheus", "s3cret"));
        assert!(users.check("prometheus", "s3cret"));
        assert!(users.remembered("prometheus", "s3cret"));
        // Refusals are not remembered: each guess costs a bcrypt, and 300
        // of them do not push the right password out.
        for i in 0..300 {
            assert!(!users.check("prometheus", &format!("guess {i}")));
        }
        assert!(!users.remembered("prometheus", "guess 0"));
        assert!(users.remembered("prometheus", "s3cret"));
        assert!(!users.check("nobody", "s3cret"));
        assert!(!users.remembered("nobody", "s3cret"));
    }

    /// Each refusal is one sentence that names what is wrong.
    #[test]
    fn a_bad_file_says_what_is_wrong() {
        for (text, want) in [
            ("basic_auth_users:\n  a: plain\n", "not a bcrypt hash"),
            (
                "tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: k\n",
                "cert_file /nonexistent.pem",
            ),
            (
                "tls_server_config:\n  client_auth_type: NoClientCert\n",
                "missing one of cert or cert_file",
            ),
            (
                "tls_srever_config: {}\n",
                "unknown field `tls_srever_config`",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                "expected one of",
            ),
            (
                "http_server_config:\n  headers:\n    Server: me\n",
                "can not be configured",
            ),
            (
                "rate_limit:\n  burst: 1\n  interval: soon\n",
                "not a duration",
            ),
            ("basic_auth_users: [", "expected a map"),
            ("tls_server_config: {cert_file: a\n", "line 2"),
        ] {
            let (_, r) = file(text);
            let e = r.err().unwrap_or_else(|| panic!("{text:?} loaded"));
            assert!(e.contains(want), "{text:?}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        // An empty file, and `{}`: plain HTTP, no users.
        for text in ["", "{}\n", "http_server_config:\n  http2: false\n"] {
            let (_, r) = file(text);
            let web = r.unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(web.tls.is_none() && web.users.is_none());
        }
    }

    /// Versions, suites and groups by Go's names, as exporter-toolkit
    /// reads them; what rustls cannot serve is refused, never dropped.
    #[test]
    fn versions_suites_and_curves_by_go_names() {
        let t = |min: &str, max: &str| TlsFile {
            min_version: Some(min.into()),
            max_version: Some(max.into()),
            ..TlsFile::default()
        };
        let v = |f: TlsFile| {
            f.versions().map(|v| {
                v.iter()
                    .map(|p| format!("{:?}", p.version))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            v(t("TLS12", "TLS13")),
            Ok(vec!["TLSv1_3".into(), "TLSv1_2".into()])
        );
        assert_eq!(v(t("TLS13", "TLS13")), Ok(vec!["TLSv1_3".into()]));
        assert_eq!(v(t("TLS10", "TLS12")), Ok(vec!["TLSv1_2".into()]));
        assert!(v(t("TLS10", "TLS11")).is_err_and(|e| e.contains("1.2 and 1.3 only")));
        assert!(v(t("TLS13", "TLS12")).is_err());
        assert!(v(t("SSL3", "TLS13")).is_err());

        let suites = TlsFile {
            cipher_suites: vec![
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".into(),
                "TLS_AES_128_GCM_SHA256".into(),
            ],
            curve_preferences: vec!["X25519".into(), "CurveP256".into()],
            ..TlsFile::default()
        };
        let p = suites.provider().expect("provider");
        let tls12: Vec<String> = p
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(
            tls12,
            [
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
            ]
        );
        // TLS 1.3's suites stay: Go's cipher_suites do not choose them.
        assert!(
            p.cipher_suites
                .iter()
                .any(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
        );
        let groups: Vec<String> = p
            .kx_groups
            .iter()
            .map(|g| format!("{:?}", g.name()))
            .collect();
        assert_eq!(groups, ["X25519", "secp256r1"]);
        for (suites, curves, want) in [
            (
                vec!["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"],
                vec![],
                "is not one zombiescan offers",
            ),
            (vec![], vec!["CurveP521"], "is not one zombiescan offers"),
        ] {
            let f = TlsFile {
                cipher_suites: suites.into_iter().map(String::from).collect(),
                curve_preferences: curves.into_iter().map(String::from).collect(),
                ..TlsFile::default()
            };
            assert!(f.provider().is_err_and(|e| e.contains(want)));
        }
    }

    #[test]
    fn the_rate_limit_spends_its_burst_then_refills() {
        let l = RateLimit::new(2, Duration::from_secs(3600));
        assert!(l.allow() && l.allow());
        assert!(!l.allow());
        let l = RateLimit::new(1, Duration::from_millis(1));
        assert!(l.allow());
        std::thread::sleep(Duration::from_millis(5));
        assert!(l.allow());
    }
}
