//! The parsed command line, validated into what a run needs. Every input
//! check lives here.

use std::path::PathBuf;
use std::time::Duration;

use crate::classify::{Kind, Severity, Thresholds};
use crate::cli::{Cli, Command, FailOn, Format, SourceArg};
use crate::collect::{ScanOptions, SourceChoice};
use crate::model::{Filter, TcpState};
use crate::report;

#[derive(Clone, Debug)]
pub struct Config {
    /// What to do; every mode has one driver under `run/`.
    pub mode: Mode,
    pub scan: ScanOptions,
    pub report: report::Options,
    pub format: Format,
    /// Colour in the table output.
    pub color: bool,
    /// `--explain`: the table's findings in full.
    pub explain: bool,
    pub thresholds: Thresholds,
    /// Exit 1 when a finding reaches this severity.
    pub fail_on: Option<Severity>,
    /// The command line, for the Markdown report.
    pub command_line: String,
    /// `--all-netns`: one report per network namespace.
    pub all_netns: bool,
    /// Stdout is a terminal: a watch redraws in place.
    pub tty: bool,
    /// What the Prometheus labels may name.
    pub metrics: crate::render::prometheus::Options,
}

/// What a run does. Adding a mode is one variant here, one driver file
/// under `run/` and one arm in `run::run`.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// Scan and report (the default).
    Scan,
    /// Scan, write a capture file, and report the same snapshot.
    Capture { output: PathBuf },
    /// Report on a capture file (`analyze FILE`, `--from FILE`).
    Analyze { file: PathBuf },
    /// `--watch` and `--record`: sample until `count` or a signal.
    Watch(Watch),
    /// `zombiescan report FILE...`: the timeline of recordings.
    Report { files: Vec<PathBuf> },
    /// `zombiescan kill`: what to close, and whether for real (`--yes`).
    Kill {
        choice: crate::report::kill::Choice,
        yes: bool,
    },
    /// `zombiescan serve`: where to listen, and how long a scrape waits.
    Serve {
        listen: std::net::SocketAddr,
        scrape_timeout: Duration,
        web_config: Option<PathBuf>,
        max_connections: usize,
    },
    /// `zombiescan completions SHELL`.
    Completions { shell: crate::cli::CompletionShell },
}

/// `--watch`, `--count`, `--record` and `--record-max`.
#[derive(Clone, Debug, PartialEq)]
pub struct Watch {
    /// The interval between samples; `None` (`--record` alone): one sample.
    pub interval: Option<Duration>,
    /// Samples before the watch ends.
    pub count: Option<u32>,
    /// The recording, and the size past which it is rotated.
    pub record: Option<PathBuf>,
    pub record_max: Option<u64>,
}

impl Watch {
    /// Whether each sample is shown with what changed since the last (the
    /// ages and rates, which follow each socket by its cookie): not when it
    /// only records, off a terminal, nor when it takes one sample.
    pub fn observes(&self, tty: bool) -> bool {
        self.interval.is_some() && (self.record.is_none() || tty)
    }
}

impl Mode {
    /// The modes that run until a signal: they install the handlers.
    pub fn until_stopped(&self) -> bool {
        matches!(
            self,
            Mode::Serve { .. }
                | Mode::Watch(Watch {
                    interval: Some(_),
                    ..
                })
        )
    }
}

/// Parses `200M`, `1G`, `64K`, `1000`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()?.to_ascii_uppercase() {
        'K' => (&s[..s.len() - 1], 1 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()?
        .checked_mul(mult)
        .filter(|&n| n > 0)
}

/// Parses `300`, `300s`, `5m`, `1h`, `500ms`, `1.5s`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" | "sec" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

fn duration(flag: &str, v: &str) -> Result<Duration, UsageError> {
    parse_duration(v).ok_or_else(|| {
        UsageError(format!(
            "{flag} {v}: not a duration; write e.g. 300s, 5m, 1h, 500ms"
        ))
    })
}

fn ratios(flag: &str, warn: f64, critical: f64) -> Result<(), UsageError> {
    if !(0.0..=1.0).contains(&warn) || !(0.0..=1.0).contains(&critical) || warn > critical {
        return Err(UsageError(format!(
            "--{flag}-warn {warn} and --{flag}-critical {critical}: ratios from 0 to 1, warn not above critical"
        )));
    }
    Ok(())
}

/// A usage error: one line, exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Config {
    /// `color` is whether stdout is a terminal and NO_COLOR is unset.
    /// `tty`: stdout is a terminal; `color`: it is, and NO_COLOR is unset.
    pub fn from_cli(
        cli: Cli,
        tty: bool,
        color: bool,
        command_line: String,
    ) -> Result<Config, UsageError> {
        let watch = cli
            .watch
            .as_deref()
            .map(|w| duration("--watch", w))
            .transpose()?;
        if watch.is_some_and(|w| w < Duration::from_millis(100)) {
            return Err(UsageError("--watch: sample at most every 100ms".into()));
        }
        if cli.count == Some(0) {
            return Err(UsageError("--count 0: give at least 1".into()));
        }
        let record_max = match cli.record_max.as_deref() {
            Some(v) => Some(parse_size(v).ok_or_else(|| {
                UsageError(format!("--record-max {v}: not a size; write e.g. 200M, 1G"))
            })?),
            None => None,
        };
        let command = match (cli.from, cli.command) {
            (Some(file), None) => Some(Command::Analyze { file }),
            (Some(_), Some(_)) => {
                return Err(UsageError(
                    "--from FILE is `zombiescan analyze FILE`: not with a subcommand".into(),
                ));
            }
            (None, command) => command,
        };
        if matches!(command, Some(Command::Analyze { .. }))
            && (cli.netns.is_some() || cli.all_netns)
        {
            return Err(UsageError(
                "a capture holds the namespaces it was taken in: --netns and --all-netns go \
                 with `zombiescan capture`"
                    .into(),
            ));
        }
        let reporting = matches!(command, Some(Command::Report { .. }));
        if cli.format == Format::Html && !reporting {
            return Err(UsageError(
                "--format html is for `zombiescan report`".into(),
            ));
        }
        if reporting && cli.format == Format::Prometheus {
            return Err(UsageError(
                "`zombiescan report` writes table, json, markdown or html".into(),
            ));
        }
        let serving = matches!(command, Some(Command::Serve { .. }));
        if (cli.top_remotes.is_some() || cli.pid_labels)
            && !serving
            && cli.format != Format::Prometheus
        {
            return Err(UsageError(
                "--top-remotes and --pid-labels go with --format prometheus or serve".into(),
            ));
        }
        if serving && (cli.format != Format::Table || cli.json || cli.fail_on.is_some()) {
            return Err(UsageError(
                "serve answers in the Prometheus format: no --format, --json or --fail-on".into(),
            ));
        }
        if (watch.is_some() || cli.record.is_some()) && command.is_some() {
            return Err(UsageError(
                "--watch and --record go with a scan, not a subcommand".into(),
            ));
        }
        ratios("fd", cli.fd_warn, cli.fd_critical)?;
        ratios("pressure", cli.pressure_warn, cli.pressure_critical)?;
        if cli.critical_count == 0 {
            return Err(UsageError("--critical-count 0: give at least 1".into()));
        }
        let thresholds = Thresholds {
            idle: duration("--idle", &cli.idle)?,
            stall: duration("--stall", &cli.stall)?,
            retransmits: cli.retransmits,
            critical_count: cli.critical_count,
            fd_warn: cli.fd_warn,
            fd_critical: cli.fd_critical,
            pressure_warn: cli.pressure_warn,
            pressure_critical: cli.pressure_critical,
        };
        if cli.paths.iter().any(|p| p.is_empty()) {
            return Err(UsageError(
                "--path '': give a unix socket's path, or @NAME for an abstract one".into(),
            ));
        }
        if cli.ports.contains(&0) {
            return Err(UsageError(
                "--port 0 matches nothing: give a port from 1 to 65535".into(),
            ));
        }
        let mut states = Vec::new();
        for s in &cli.states {
            let st = TcpState::from_name(s).ok_or_else(|| {
                UsageError(format!(
                    "unknown state '{s}': use one of {}",
                    TcpState::ALL.map(TcpState::name).join(", ")
                ))
            })?;
            if !states.contains(&st) {
                states.push(st);
            }
        }
        let mut ports = cli.ports;
        ports.sort_unstable();
        ports.dedup();
        let format = if cli.json { Format::Json } else { cli.format };
        // kill: --state and --finding choose among the scan's sockets, which
        // takes every state (findings and listeners need them).
        let mode = match command {
            None if watch.is_some() || cli.record.is_some() => Mode::Watch(Watch {
                interval: watch,
                count: cli.count,
                record: cli.record,
                record_max,
            }),
            None => Mode::Scan,
            Some(Command::Capture { output }) => Mode::Capture { output },
            Some(Command::Analyze { file }) => Mode::Analyze { file },
            Some(Command::Report { files }) => Mode::Report { files },
            Some(Command::Completions { shell }) => Mode::Completions { shell },
            Some(Command::Serve {
                listen,
                scrape_timeout,
                web_config,
                max_connections,
            }) => Mode::Serve {
                web_config,
                max_connections: if max_connections == 0 {
                    return Err(UsageError("--max-connections 0: give at least 1".into()));
                } else {
                    max_connections
                },
                listen: listen.parse().map_err(|_| {
                    UsageError(format!(
                        "--listen {listen}: give ADDR:PORT, such as 127.0.0.1:10130 or [::1]:10130"
                    ))
                })?,
                scrape_timeout: duration("--scrape-timeout", &scrape_timeout)?,
            },
            Some(Command::Kill {
                findings,
                older_than,
                include_queued,
                yes,
            }) => {
                let mut kinds = Vec::new();
                for f in &findings {
                    let k = Kind::from_name(f).ok_or_else(|| {
                        UsageError(format!(
                            "unknown finding '{f}': use one of {}",
                            Kind::ALL.map(Kind::name).join(", ")
                        ))
                    })?;
                    if !kinds.contains(&k) {
                        kinds.push(k);
                    }
                }
                if kinds.is_empty() && states.is_empty() {
                    return Err(UsageError(
                        "kill needs --state S or --finding KIND: it never closes every socket of a port"
                            .into(),
                    ));
                }
                if !matches!(format, Format::Table | Format::Json) {
                    return Err(UsageError("kill writes a table or --json".into()));
                }
                let older_than = older_than
                    .as_deref()
                    .map(|d| duration("--older-than", d))
                    .transpose()?;
                // --state and --finding choose among the scan's sockets,
                // which takes every state (findings and listeners need them).
                let choice = crate::report::kill::Choice {
                    states: std::mem::take(&mut states),
                    kinds,
                    older_than,
                    include_queued,
                };
                Mode::Kill { choice, yes }
            }
        };
        let killing = matches!(mode, Mode::Kill { .. });
        Ok(Config {
            scan: ScanOptions {
                source: match cli.source {
                    SourceArg::Auto => SourceChoice::Auto,
                    SourceArg::Netlink => SourceChoice::Netlink,
                    SourceArg::Proc => SourceChoice::Proc,
                },
                filter: Filter {
                    ports,
                    paths: cli
                        .paths
                        .iter()
                        .map(|p| p.as_encoded_bytes().to_vec())
                        .collect(),
                    pids: cli.pids,
                    processes: cli.processes,
                    states,
                },
                owners: !cli.no_processes,
                netns: cli.netns,
                // kill acts where the sockets are asked for, not where a
                // forwarder leads.
                follow: !cli.no_follow && !killing,
                // A report that lists only flagged sockets, the exporter's
                // series and a recording need only the counts of the
                // healthy ones; a watch that shows the ages follows every
                // socket.
                fold: (!cli.sockets
                    && match &mode {
                        Mode::Scan | Mode::Serve { .. } => true,
                        Mode::Watch(w) => !w.observes(tty),
                        _ => false,
                    })
                .then(|| thresholds.clone()),
            },
            mode,
            all_netns: cli.all_netns,
            tty,
            metrics: crate::render::prometheus::Options {
                top_remotes: cli.top_remotes.unwrap_or(20),
                pid_labels: cli.pid_labels,
            },
            report: report::Options {
                all_sockets: cli.sockets,
                sort: cli.sort,
            },
            format,
            color: color && format == Format::Table,
            explain: cli.explain,
            thresholds,
            fail_on: cli.fail_on.map(|f| match f {
                FailOn::Warning => Severity::Warning,
                FailOn::Critical => Severity::Critical,
            }),
            command_line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cfg(args: &[&str]) -> Result<Config, UsageError> {
        let cli = Cli::try_parse_from(std::iter::once("zombiescan").chain(args.iter().copied()))
            .map_err(|e| UsageError(e.to_string()))?;
        Config::from_cli(cli, false, false, String::new())
    }

    /// Which scans fold their healthy connections: those whose report
    /// lists only flagged sockets and shows no per-socket ages.
    #[test]
    fn which_scans_fold() {
        let folds = |args: &[&str]| cfg(args).expect("valid").scan.fold.is_some();
        assert!(folds(&[]));
        assert!(folds(&["--port", "30020", "--json"]));
        assert!(!folds(&["--sockets"]));
        assert!(folds(&["serve"]));
        assert!(!folds(&["capture", "-o", "/tmp/x.json.gz"]));
        assert!(!folds(&["kill", "--state", "close-wait"]));
        // Off a terminal (these tests' `tty` is false): a recorder only
        // records; a watch that prints its samples shows their ages.
        assert!(folds(&["--watch", "5s", "--record", "/tmp/x.jsonl"]));
        assert!(!folds(&["--watch", "5s"]));
        assert!(!folds(&[
            "--watch",
            "5s",
            "--record",
            "/tmp/x.jsonl",
            "--sockets"
        ]));
    }

    #[test]
    fn durations_and_thresholds() {
        assert_eq!(parse_duration("300"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        for bad in ["", "s", "5d", "-1s", "1e3", "x"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        let c = cfg(&["--idle", "1s", "--stall", "2s", "--fail-on", "warning"]).expect("valid");
        assert_eq!(c.thresholds.idle, Duration::from_secs(1));
        assert_eq!(c.thresholds.stall, Duration::from_secs(2));
        assert_eq!(c.fail_on, Some(Severity::Warning));
        assert_eq!(
            cfg(&[]).expect("defaults").thresholds,
            Thresholds::default()
        );
        assert!(cfg(&["--idle", "forever"]).is_err());
        assert!(cfg(&["--fd-warn", "0.99", "--fd-critical", "0.9"]).is_err());
        assert!(cfg(&["--pressure-warn", "1.5"]).is_err());
        assert!(cfg(&["--critical-count", "0"]).is_err());
        assert_eq!(
            cfg(&["--watch", "2s", "--count", "3"]).expect("valid").mode,
            Mode::Watch(Watch {
                interval: Some(Duration::from_secs(2)),
                count: Some(3),
                record: None,
                record_max: None,
            })
        );
        assert!(cfg(&["--count", "3"]).is_err(), "--count needs --watch");
        assert!(cfg(&["--watch", "1ms"]).is_err());
        assert!(cfg(&["--watch", "1s", "--all-netns"]).is_ok());
        assert!(cfg(&["--format", "html"]).is_err());
        assert!(cfg(&["report", "x.ndjson", "--format", "html"]).is_ok());
        assert!(cfg(&["report", "x.ndjson", "--json"]).is_ok());
        assert!(cfg(&["report", "x.ndjson", "--format", "prometheus"]).is_err());
        assert!(cfg(&["--format", "prometheus"]).is_ok());
        // --from FILE is analyze FILE; a capture carries its namespaces.
        assert_eq!(
            cfg(&["--from", "x.zsc", "--port", "30020"])
                .expect("valid")
                .mode,
            Mode::Analyze {
                file: PathBuf::from("x.zsc")
            }
        );
        assert!(cfg(&["--from", "x.zsc", "report", "y.ndjson"]).is_err());
        assert!(cfg(&["--from", "x.zsc", "--watch", "1s"]).is_err());
        assert!(cfg(&["analyze", "x.zsc", "--netns", "web1"]).is_err());
        assert!(cfg(&["analyze", "x.zsc", "--all-netns"]).is_err());
        assert_eq!(parse_size("200M"), Some(200 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn states_ports_and_format() {
        let c = cfg(&[
            "--port",
            "30020",
            "-p",
            "80",
            "-p",
            "80",
            "--state",
            "close-wait",
            "--json",
        ])
        .expect("valid");
        assert_eq!(c.scan.filter.ports, vec![80, 30020]);
        assert_eq!(c.scan.filter.states, vec![TcpState::CloseWait]);
        assert_eq!(c.format, Format::Json);
        assert!(cfg(&["--state", "HALF_OPEN"]).is_err());
        assert!(cfg(&["--port", "0"]).is_err());
        assert!(cfg(&["--path", ""]).is_err());
        let c = cfg(&["--path", "/run/app.sock", "--path", "@app"]).expect("valid");
        assert_eq!(
            c.scan.filter.paths,
            vec![b"/run/app.sock".to_vec(), b"@app".to_vec()]
        );
        assert!(c.scan.filter.unix_only());
        assert!(cfg(&["--port", "70000"]).is_err());
        assert!(cfg(&["--pid", "1", "--no-processes"]).is_err());
    }

    #[test]
    fn serve_and_its_labels() {
        let c = cfg(&["serve", "--port", "30020", "--top-remotes", "5"]).expect("valid");
        let Mode::Serve {
            listen,
            scrape_timeout,
            ref web_config,
            max_connections,
        } = c.mode
        else {
            panic!("serve: {:?}", c.mode)
        };
        assert_eq!(listen.to_string(), "127.0.0.1:10130");
        assert_eq!(scrape_timeout, Duration::from_secs(5));
        assert_eq!((web_config, max_connections), (&None, 64));
        assert!(cfg(&["serve", "--max-connections", "0"]).is_err());
        assert_eq!(c.metrics.top_remotes, 5);
        let c = cfg(&["serve", "--listen", "[::1]:9999", "--scrape-timeout", "0"]).expect("v");
        assert!(
            matches!(c.mode, Mode::Serve { listen, .. } if listen.to_string() == "[::1]:9999"),
            "{:?}",
            c.mode
        );
        assert!(cfg(&["serve", "--listen", "localhost"]).is_err());
        assert!(cfg(&["serve", "--json"]).is_err());
        assert!(cfg(&["serve", "--format", "markdown"]).is_err());
        // Labels are the exporter's and the exposition's business only.
        assert!(cfg(&["--pid-labels"]).is_err());
        assert!(cfg(&["--top-remotes", "3", "--json"]).is_err());
        let c = cfg(&["--format", "prometheus", "--pid-labels"]).expect("valid");
        assert!(c.metrics.pid_labels && c.mode == Mode::Scan);
    }

    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
