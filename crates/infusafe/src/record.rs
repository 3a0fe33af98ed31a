//! `infusafe record verify`: walks every patient's hash chain in the record and reports the first broken
//! link of each. Exit codes: 0 every chain intact, 3 a chain is broken, 2 bad arguments or an unreachable
//! or unreadable database, 1 output could not be written.

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
        let url = self.url();
        if let Some(path) = url.strip_prefix("sqlite://")
            && !std::path::Path::new(path).exists()
        {
            return Err(format!(
                "no record database at {path}: pass --data-dir or --database-url (or INFUSAFE_DATA_DIR / INFUSAFE_DATABASE_URL)"
            ));
        }
        record::Store::open(record::Config::new(url))
            .await
            .map_err(|e| e.to_string())
    }
}

/// Arguments of `infusafe record`.
#[derive(clap::Args)]
pub struct RecordArgs {
    #[command(subcommand)]
    pub command: RecordCommand,
}

#[derive(clap::Subcommand)]
pub enum RecordCommand {
    /// Checks every patient's hash chain; prints each chain's head, or the first broken link.
    Verify {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn main(args: RecordArgs) -> ExitCode {
    let RecordCommand::Verify { database, json } = args.command;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("infusafe record verify: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(async {
        let store = database.open().await?;
        let report = store.verify().await.map_err(|e| e.to_string());
        store.close().await;
        report
    });
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("infusafe record verify: {e}");
            return ExitCode::from(2);
        }
    };
    let text = if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => text + "\n",
            Err(e) => {
                eprintln!("infusafe record verify: internal error writing JSON: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
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
                link.patient,
                link.event_id,
                link.chain_seq,
                link.problem,
                link.expected,
                link.found
            );
        }
        text
    };
    use std::io::Write;
    if let Err(e) = std::io::stdout().write_all(text.as_bytes()) {
        eprintln!("infusafe record verify: cannot write the report: {e}");
        return ExitCode::FAILURE;
    }
    if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "infusafe record verify: {} chain(s) broken: the record was altered outside Infusafe",
            report.broken.len()
        );
        ExitCode::from(3)
    }
}
