//! `infusafe record verify`: walks every patient's hash chain in the record and reports the first broken
//! link of each, a missing append-only trigger, and (with `--checkpoint`) events removed since a signed
//! checkpoint; `infusafe record checkpoint` writes that signed checkpoint. Exit codes: 0 intact (or
//! written), 3 a chain is broken, a trigger is missing or events are missing, 2 bad arguments or an
//! unreachable or unreadable database or checkpoint, 1 output could not be written.

use std::path::PathBuf;
use std::process::ExitCode;

/// Where the record lives: shared by `record` and `export`, same flags and variables as the server.
#[derive(clap::Args, Clone)]
pub struct DatabaseArgs {
    /// Database URL (sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB). Default: the SQLite file
    /// infusafe.db in the data directory.
    #[arg(long, env = "INFUSAFE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Data directory holding the default SQLite database.
    #[arg(
        long,
        env = "INFUSAFE_DATA_DIR",
        value_name = "DIR",
        default_value = "./infusafe-data"
    )]
    pub data_dir: PathBuf,
}

impl DatabaseArgs {
    pub fn url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.clone(),
            _ => record::default_database_url(&self.data_dir),
        }
    }

    /// Opens the store, refusing to create a new SQLite database where the user expected one.
    pub async fn open(&self) -> Result<record::Store, String> {
        self.open_with(true).await
    }

    /// Like [`DatabaseArgs::open`]; `require_guards: false` opens a database whose append-only triggers
    /// are gone, for `verify` to inspect and report.
    pub async fn open_with(&self, require_guards: bool) -> Result<record::Store, String> {
        let url = self.url();
        if let Some(path) = url.strip_prefix("sqlite://")
            && !std::path::Path::new(path).exists()
        {
            return Err(format!(
                "no record database at {path}: pass --data-dir or --database-url (or INFUSAFE_DATA_DIR / INFUSAFE_DATABASE_URL)"
            ));
        }
        let mut config = record::Config::new(url);
        config.require_append_only_guards = require_guards;
        record::Store::open(config).await.map_err(|e| e.to_string())
    }
}

/// Arguments of `infusafe record`.
#[derive(clap::Args)]
pub struct RecordArgs {
    #[command(subcommand)]
    pub command: RecordCommand,
}

/// The key that signs checkpoints: kept away from the database server.
#[derive(clap::Args, Clone)]
pub struct KeyArgs {
    /// File holding the checkpoint key (64 hex digits). `record checkpoint` creates it (mode 0600) when
    /// it does not exist; keep it, and the checkpoints, off the database server.
    #[arg(long, env = "INFUSAFE_CHECKPOINT_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum RecordCommand {
    /// Checks every patient's hash chain and the append-only triggers; prints each chain's head, or the
    /// first broken link. With --checkpoint, also checks that no event the checkpoint saw was removed.
    Verify {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// A checkpoint written by `infusafe record checkpoint` (needs --key-file).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Verifies every chain and writes their heads, signed with the checkpoint key, as JSON (to --out
    /// or standard output). Keep the file where the database's administrators cannot change it.
    Checkpoint {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        key: KeyArgs,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// How a subcommand ended: the exit code and, for failures, the message.
struct Failure(u8, String);

impl KeyArgs {
    /// The key from --key-file; `create` makes a new key file when there is none.
    fn key(&self, create: bool) -> Result<record::CheckpointKey, Failure> {
        let Some(path) = &self.key_file else {
            return Err(Failure(
                2,
                "a checkpoint key is needed: pass --key-file FILE (or INFUSAFE_CHECKPOINT_KEY_FILE)".into(),
            ));
        };
        if create && !path.exists() {
            let key = record::CheckpointKey::create(path).map_err(|e| Failure(2, e.to_string()))?;
            eprintln!(
                "infusafe record: created a new checkpoint key in {}: keep it, and the checkpoints, off the database server",
                path.display()
            );
            return Ok(key);
        }
        record::CheckpointKey::load(path).map_err(|e| Failure(2, e.to_string()))
    }
}

pub fn main(args: RecordArgs) -> ExitCode {
    let (name, result) = match args.command {
        RecordCommand::Verify {
            database,
            json,
            checkpoint,
            key,
        } => (
            "verify",
            verify(&database, json, checkpoint.as_deref(), &key),
        ),
        RecordCommand::Checkpoint { database, key, out } => (
            "checkpoint",
            write_checkpoint(&database, &key, out.as_deref()),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("infusafe record {name}: {message}");
            ExitCode::from(code)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Runtime::new()
        .map_err(|e| Failure(1, format!("cannot start the async runtime: {e}")))
}

fn write_out(out: Option<&std::path::Path>, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    match out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| Failure(1, format!("cannot write {}: {e}", path.display()))),
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| Failure(1, format!("cannot write the report: {e}"))),
    }
}

fn write_checkpoint(
    database: &DatabaseArgs,
    key: &KeyArgs,
    out: Option<&std::path::Path>,
) -> Result<(), Failure> {
    let key = key.key(true)?;
    let checkpoint = runtime()?.block_on(async {
        let store = database.open().await.map_err(|e| Failure(2, e))?;
        let checkpoint = store.checkpoint(&key).await;
        store.close().await;
        checkpoint.map_err(|e| match e {
            record::RecordError::Checkpoint { reason } => Failure(3, reason),
            other => Failure(2, other.to_string()),
        })
    })?;
    write_out(out, &checkpoint.to_json())?;
    eprintln!(
        "infusafe record checkpoint: signed the heads of {} chains",
        checkpoint.heads.len()
    );
    Ok(())
}

/// Everything `verify` found: the chain report, missing triggers, and what a checkpoint shows missing.
struct VerifyOutput {
    report: record::VerifyReport,
    missing_triggers: Vec<String>,
    checkpoint: Option<CheckpointOutput>,
}

struct CheckpointOutput {
    created_at: record::jiff::Timestamp,
    missing: Vec<record::MissingEvents>,
}

impl VerifyOutput {
    /// The verify report's JSON (as before checkpoints existed) plus `missing_triggers` and, with a
    /// checkpoint, `checkpoint: { created_at, missing }`.
    fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        let mut value = serde_json::to_value(&self.report)?;
        value["missing_triggers"] = serde_json::to_value(&self.missing_triggers)?;
        if let Some(checkpoint) = &self.checkpoint {
            value["checkpoint"] = serde_json::json!({
                "created_at": checkpoint.created_at.to_string(),
                "missing": serde_json::to_value(&checkpoint.missing)?,
            });
        }
        Ok(value)
    }

    fn problems(&self) -> usize {
        self.report.broken.len()
            + self.missing_triggers.len()
            + self.checkpoint.as_ref().map_or(0, |c| c.missing.len())
    }
}

fn verify(
    database: &DatabaseArgs,
    json: bool,
    checkpoint: Option<&std::path::Path>,
    key: &KeyArgs,
) -> Result<(), Failure> {
    let checkpoint = match checkpoint {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure(
                    2,
                    format!("cannot read the checkpoint {}: {e}", path.display()),
                )
            })?;
            let checkpoint = record::Checkpoint::from_json(&text)
                .map_err(|e| Failure(2, format!("{}: {e}", path.display())))?;
            Some((checkpoint, key.key(false)?))
        }
    };
    let output = runtime()?.block_on(async {
        let store = database.open_with(false).await.map_err(|e| Failure(2, e))?;
        let output = inspect(&store, checkpoint.as_ref()).await;
        store.close().await;
        output.map_err(|e| Failure(2, e.to_string()))
    })?;
    let text = if json {
        output
            .to_json()
            .and_then(|value| serde_json::to_string_pretty(&value))
            .map(|text| text + "\n")
            .map_err(|e| Failure(1, format!("internal error writing JSON: {e}")))?
    } else {
        human_report(&output)
    };
    write_out(None, &text)?;
    match output.problems() {
        0 => Ok(()),
        n => Err(Failure(
            3,
            format!("{n} problem(s) found: the record was altered outside Infusafe"),
        )),
    }
}

async fn inspect(
    store: &record::Store,
    checkpoint: Option<&(record::Checkpoint, record::CheckpointKey)>,
) -> Result<VerifyOutput, record::RecordError> {
    let missing_triggers = store
        .missing_guards()
        .await?
        .iter()
        .map(|e| e.to_string())
        .collect();
    let (report, checkpoint) = match checkpoint {
        None => (store.verify().await?, None),
        Some((checkpoint, key)) => {
            let checked = store.verify_checkpoint(checkpoint, key).await?;
            let output = CheckpointOutput {
                created_at: checked.checkpoint_created_at,
                missing: checked.missing,
            };
            (checked.verify, Some(output))
        }
    };
    Ok(VerifyOutput {
        report,
        missing_triggers,
        checkpoint,
    })
}

fn human_report(output: &VerifyOutput) -> String {
    let report = &output.report;
    let mut text = format!(
        "checked {} events in {} chains\n",
        report.events_checked,
        report.heads.len() + report.broken.len()
    );
    for head in &report.heads {
        text += &format!(
            "intact  patient {}: {} events, last event {}, head {}\n",
            head.patient, head.events, head.last_id, head.hash
        );
    }
    for link in &report.broken {
        text += &format!(
            "BROKEN  patient {}: event {} (position {}): {} expected {} found {}\n",
            link.patient, link.event_id, link.chain_seq, link.problem, link.expected, link.found
        );
    }
    for trigger in &output.missing_triggers {
        text += &format!("MISSING {trigger}\n");
    }
    if let Some(checkpoint) = &output.checkpoint {
        text += &format!(
            "checkpoint of {}: {}\n",
            checkpoint.created_at,
            if checkpoint.missing.is_empty() {
                "every checkpointed event is present"
            } else {
                "events are missing"
            }
        );
        for m in &checkpoint.missing {
            text += &format!(
                "MISSING patient {}: {} ({} events at the checkpoint, {} now): {}\n",
                m.patient, m.problem, m.checkpoint_events, m.found_events, m.detail
            );
        }
    }
    text
}
