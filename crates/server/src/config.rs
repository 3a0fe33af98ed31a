//! The server's configuration: one struct built from flags, environment and an optional file, so every
//! setting has one name and one default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Everything the server needs to start. Built by `infusafe serve` / `infusafe demo` or by tests.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen. Port 0 picks a free port (tests, `demo --bind 127.0.0.1:0`).
    pub bind: SocketAddr,
    /// `sqlite://…` or `postgres://…`. The record and the server's own tables share this database.
    pub database_url: String,
    /// Directory for the default SQLite database and other local state.
    pub data_dir: PathBuf,
    /// Mark cookies `Secure`. On by default; off only for a plain-HTTP demo on localhost, because browsers
    /// refuse to send `Secure` cookies over `http://` except to localhost in some browsers and not others.
    pub secure_cookies: bool,
    /// How long a signed-in session lasts without use.
    pub session_ttl: Duration,
    /// A pump that sends nothing for this long while infusing raises `pump_silent`.
    pub pump_silent_after: Duration,
    /// How often the watchdog and the escalation ladder are evaluated.
    pub tick: Duration,
    /// Length of one plan "minute" for the escalation ladder. Always 60 s in service; tests shorten it so a
    /// ladder defined in minutes runs in a second.
    pub escalation_minute: Duration,
    /// Largest accepted body for JSON API calls and forms.
    pub body_limit_bytes: usize,
    /// Largest accepted pump-link batch.
    pub link_body_limit_bytes: usize,
    /// Failed logins allowed per (username, client address) in `login_window` before refusing.
    pub login_failures_max: u32,
    pub login_window: Duration,
    /// Webhook delivery: attempts per notification and the first back-off (doubled after each failure).
    pub webhook_attempts_max: u32,
    pub webhook_backoff_first: Duration,
    pub webhook_timeout: Duration,
    /// Accept `http://` webhook URLs to a loopback address (a receiver on this machine, for development and
    /// tests). Off by default: in service webhooks are `https://` only.
    pub allow_loopback_webhooks: bool,
    /// IHE PCD in: where the MLLP listener listens (`--pcd-bind`); none by default.
    pub pcd_bind: Option<SocketAddr>,
    /// IHE PCD out: the alarm manager or nurse-call system (HOST:PORT) that receives every alarm raised or
    /// cleared and every acknowledgement as ORU^R40 (`--pcd-out`); none by default. A loopback address only with
    /// `allow_loopback_webhooks` (development and tests).
    pub pcd_out: Option<String>,
    /// MLLP connections served at once; more wait to be accepted.
    pub pcd_connections_max: usize,
    /// Largest MLLP frame accepted; a longer one closes the connection.
    pub pcd_frame_max: usize,
    /// An MLLP connection that sends nothing for this long (or stalls inside a frame) is closed.
    pub pcd_idle_timeout: std::time::Duration,
    /// How long telemetry stays at full resolution, the downsampling bucket and how long it is kept at all
    /// (the file's `[telemetry]` section; defaults: 7 days, 15 minutes, forever). Clinical events are never
    /// affected.
    pub telemetry_retention: record::TelemetryRetention,
    /// The timed duties apply `telemetry_retention` at most this often (1 hour).
    pub telemetry_compact_every: Duration,
}

impl ServerConfig {
    /// Defaults for a data directory: SQLite in `<data_dir>/infusafe.db`, listen on 127.0.0.1:8080.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> ServerConfig {
        let data_dir = data_dir.into();
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: default_database_url(&data_dir),
            data_dir,
            secure_cookies: true,
            session_ttl: Duration::from_secs(12 * 3600),
            pump_silent_after: Duration::from_secs(60),
            tick: Duration::from_millis(200),
            escalation_minute: Duration::from_secs(60),
            body_limit_bytes: 64 * 1024,
            link_body_limit_bytes: 1024 * 1024,
            login_failures_max: 5,
            login_window: Duration::from_secs(15 * 60),
            webhook_attempts_max: 6,
            webhook_backoff_first: Duration::from_secs(2),
            webhook_timeout: Duration::from_secs(10),
            allow_loopback_webhooks: false,
            pcd_bind: None,
            pcd_out: None,
            pcd_connections_max: 64,
            pcd_frame_max: pcd::mllp::FRAME_MAX,
            pcd_idle_timeout: Duration::from_secs(60),
            telemetry_retention: record::TelemetryRetention::default(),
            telemetry_compact_every: Duration::from_secs(3600),
        }
    }

    /// Apply an optional TOML file's settings on top of the current ones (flags and environment are applied
    /// after this by the caller, so they win).
    pub fn apply_file(&mut self, text: &str, origin: &str) -> Result<(), ConfigError> {
        let file: ConfigFile = toml_from_str(text).map_err(|message| ConfigError::File {
            origin: origin.to_string(),
            message,
        })?;
        if let Some(bind) = file.bind {
            self.bind = bind.parse().map_err(|_| ConfigError::Invalid {
                field: "bind".into(),
                message: format!("{bind:?} is not an address like 127.0.0.1:8080"),
            })?;
        }
        if let Some(dir) = file.data_dir {
            self.data_dir = dir.into();
            self.database_url = default_database_url(&self.data_dir);
        }
        if let Some(url) = file.database_url {
            self.database_url = url;
        }
        if let Some(secure) = file.secure_cookies {
            self.secure_cookies = secure;
        }
        if let Some(allow) = file.allow_loopback_webhooks {
            self.allow_loopback_webhooks = allow;
        }
        if let Some(s) = file.pump_silent_after_s {
            if s == 0 {
                return Err(ConfigError::Invalid {
                    field: "pump_silent_after_s".into(),
                    message: "must be at least 1 second".into(),
                });
            }
            self.pump_silent_after = Duration::from_secs(s);
        }
        if let Some(bind) = file.pcd_bind {
            self.pcd_bind = Some(bind.parse().map_err(|_| ConfigError::Invalid {
                field: "pcd_bind".into(),
                message: format!("{bind:?} is not an address like 127.0.0.1:2575"),
            })?);
        }
        if let Some(out) = file.pcd_out {
            self.pcd_out = Some(out);
        }
        if let Some(h) = file.session_ttl_h {
            self.session_ttl = Duration::from_secs(h.max(1) * 3600);
        }
        if let Some(t) = file.telemetry {
            self.telemetry_retention = t.apply(self.telemetry_retention)?;
        }
        Ok(())
    }

    /// Check values that could make the service unsafe or unusable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                field: "database_url".into(),
                message: format!(
                    "{:?} is not supported; use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB",
                    redact_url(&self.database_url)
                ),
            });
        }
        if let Some(out) = &self.pcd_out {
            check_pcd_out(out, self.allow_loopback_webhooks)?;
        }
        if self.pump_silent_after.is_zero() {
            return Err(ConfigError::Invalid {
                field: "pump_silent_after".into(),
                message: "must be longer than zero".into(),
            });
        }
        Ok(())
    }
}

/// The outbound PCD address: `HOST:PORT` with a port, and not a literal loopback, private or link-local address
/// unless loopback is allowed (then only loopback is added, never a private network). Names are not resolved.
pub fn check_pcd_out(out: &str, allow_loopback: bool) -> Result<(), ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        field: "pcd_out".into(),
        message,
    };
    let (host, port) = out
        .rsplit_once(':')
        .ok_or_else(|| invalid(format!("{out:?} is not HOST:PORT")))?;
    if port.parse::<u16>().map_or(true, |p| p == 0) || host.is_empty() {
        return Err(invalid(format!("{out:?} is not HOST:PORT")));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        let loopback = ip.is_loopback();
        let private = match ip {
            std::net::IpAddr::V4(v4) => {
                v4.is_private() || v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast()
            }
            std::net::IpAddr::V6(v6) => {
                v6.is_unspecified()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        };
        if (loopback && !allow_loopback) || private {
            return Err(invalid(format!(
                "{out:?} is a loopback, private or link-local address; name the alarm manager's host{}",
                if loopback {
                    " (loopback only with --allow-loopback-webhooks, for development)"
                } else {
                    ""
                }
            )));
        }
    } else if host.eq_ignore_ascii_case("localhost") && !allow_loopback {
        return Err(invalid(format!(
            "{out:?} is this machine; loopback only with --allow-loopback-webhooks"
        )));
    }
    Ok(())
}

/// `sqlite://<data-dir>/infusafe.db`, the convention shared with the record.
pub fn default_database_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}/infusafe.db", data_dir.display())
}

/// A database URL with any password removed, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***{}", &url[..scheme_end], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    bind: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    secure_cookies: Option<bool>,
    pump_silent_after_s: Option<u64>,
    session_ttl_h: Option<u64>,
    allow_loopback_webhooks: Option<bool>,
    pcd_bind: Option<String>,
    pcd_out: Option<String>,
    telemetry: Option<TelemetryFile>,
}

/// The file's `[telemetry]` section: retention of the telemetry table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryFile {
    /// Days at full resolution (default 7).
    pub full_resolution_days: Option<u32>,
    /// Minutes per downsampled bucket (default 15).
    pub bucket_minutes: Option<u32>,
    /// Days after which telemetry is removed; 0 or absent keeps it forever.
    pub keep_days: Option<u32>,
}

impl TelemetryFile {
    /// These settings on top of `retention`.
    pub fn apply(
        &self,
        mut retention: record::TelemetryRetention,
    ) -> Result<record::TelemetryRetention, ConfigError> {
        let days = |d: u32| jiff::SignedDuration::from_hours(24 * i64::from(d));
        if let Some(d) = self.full_resolution_days {
            retention.full_resolution_for = days(d);
        }
        if let Some(m) = self.bucket_minutes {
            if m == 0 || m > 24 * 60 {
                return Err(ConfigError::Invalid {
                    field: "telemetry.bucket_minutes".into(),
                    message: "must be from 1 to 1440 minutes".into(),
                });
            }
            retention.bucket = jiff::SignedDuration::from_mins(i64::from(m));
        }
        if let Some(d) = self.keep_days {
            retention.keep_for = (d > 0).then(|| days(d));
        }
        if retention
            .keep_for
            .is_some_and(|keep| keep < retention.full_resolution_for)
        {
            return Err(ConfigError::Invalid {
                field: "telemetry.keep_days".into(),
                message: "must be 0 (forever) or at least telemetry.full_resolution_days".into(),
            });
        }
        Ok(retention)
    }
}

fn toml_from_str(text: &str) -> Result<ConfigFile, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: {message}")]
    File { origin: String, message: String },
    #[error("configuration `{field}`: {message}")]
    Invalid { field: String, message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(file: &str, expect: Result<&str, &str>) {
        let mut config = ServerConfig::with_data_dir("/tmp/x");
        match (config.apply_file(file, "test.toml"), expect) {
            (Ok(()), Ok(url)) => assert_eq!(config.database_url, url),
            (Err(e), Err(fragment)) => assert!(e.to_string().contains(fragment), "{e}"),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn config_files() {
        check("", Ok("sqlite:///tmp/x/infusafe.db"));
        check("data_dir = \"/srv/a\"", Ok("sqlite:///srv/a/infusafe.db"));
        check(
            "database_url = \"postgres://u@h/d\" # comment",
            Ok("postgres://u@h/d"),
        );
        check("bind = \"nope\"", Err("`bind`"));
        check("colour = \"red\"", Err("unknown field `colour`"));
        check("secure_cookies = maybe", Err("secure_cookies"));
        check("pump_silent_after_s = 0", Err("pump_silent_after_s"));
        check("pcd_bind = \"nope\"", Err("`pcd_bind`"));
        check(
            "[telemetry]\nbucket_minutes = 0",
            Err("telemetry.bucket_minutes"),
        );
        check("[telemetry]\nkeep_days = 3", Err("telemetry.keep_days"));
        check("[telemetry]\nkeep = 3", Err("unknown field `keep`"));
    }

    #[test]
    fn telemetry_retention_from_the_file() {
        let mut config = ServerConfig::with_data_dir("/tmp/x");
        assert_eq!(
            config.telemetry_retention,
            record::TelemetryRetention::default()
        );
        config
            .apply_file(
                "[telemetry]\nfull_resolution_days = 2\nbucket_minutes = 5\nkeep_days = 365",
                "test.toml",
            )
            .unwrap();
        let r = config.telemetry_retention;
        assert_eq!(r.full_resolution_for, jiff::SignedDuration::from_hours(48));
        assert_eq!(r.bucket, jiff::SignedDuration::from_mins(5));
        assert_eq!(r.keep_for, Some(jiff::SignedDuration::from_hours(365 * 24)));
        config
            .apply_file("[telemetry]\nkeep_days = 0", "test.toml")
            .unwrap();
        assert_eq!(config.telemetry_retention.keep_for, None);
    }

    #[test]
    fn pcd_out_names_a_host_and_port_and_reaches_loopback_only_when_allowed() {
        assert!(check_pcd_out("alarms.example.org:2575", false).is_ok());
        assert!(check_pcd_out("203.0.113.7:2575", false).is_ok());
        assert!(check_pcd_out("127.0.0.1:2575", false).is_err());
        assert!(check_pcd_out("127.0.0.1:2575", true).is_ok());
        assert!(check_pcd_out("localhost:2575", false).is_err());
        assert!(check_pcd_out("10.0.0.5:2575", true).is_err());
        assert!(check_pcd_out("169.254.169.254:80", true).is_err());
        assert!(check_pcd_out("[::1]:2575", false).is_err());
        assert!(check_pcd_out("alarms.example.org", false).is_err());
        assert!(check_pcd_out("alarms.example.org:0", false).is_err());
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5/d"),
            "postgres://u:***@h:5/d"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
