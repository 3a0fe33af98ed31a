//! `infusafe export --patient ID --format csv|fhir [--from T] [--to T] [--out FILE]`: a patient's record as
//! CSV (one row per event) or as an HL7 FHIR R4 Bundle. Exit codes: 0 written, 2 bad arguments (including
//! a patient with no record) or an unreachable or unreadable database, 1 the output could not be written.

use crate::record::DatabaseArgs;
use std::process::ExitCode;

#[derive(clap::ValueEnum, Clone, Copy)]
pub enum Format {
    /// RFC 4180 CSV, one row per event, every envelope field.
    Csv,
    /// An HL7 FHIR R4 Bundle (collection) in JSON.
    Fhir,
}

/// Arguments of `infusafe export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The patient's id in the record.
    #[arg(long, value_name = "ID")]
    pub patient: String,
    #[arg(long, value_enum)]
    pub format: Format,
    /// First instant included: RFC 3339 (2026-03-01T08:00:00Z, 2026-03-01T09:00:00+01:00) or a date
    /// (2026-03-01, midnight UTC).
    #[arg(long, value_name = "T")]
    pub from: Option<String>,
    /// First instant excluded; same forms as --from.
    #[arg(long, value_name = "T")]
    pub to: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<String>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Parses an instant or a date; the error says which forms are accepted.
fn parse_time(flag: &str, text: &str) -> Result<record::jiff::Timestamp, String> {
    if let Ok(t) = text.parse::<record::jiff::Timestamp>() {
        return Ok(t);
    }
    if let Ok(date) = text.parse::<record::jiff::civil::Date>()
        && let Ok(t) = record::jiff::tz::Offset::UTC
            .to_timestamp(date.to_datetime(record::jiff::civil::Time::midnight()))
    {
        return Ok(t);
    }
    Err(format!(
        "{flag} {text:?} is not a time: use RFC 3339 with an offset (2026-03-01T08:00:00Z) or a date (2026-03-01)"
    ))
}

/// The query the arguments describe.
fn query(args: &ExportArgs) -> Result<record::export::ExportQuery, String> {
    Ok(record::export::ExportQuery {
        patient: record::PatientId::new(args.patient.clone()).map_err(|e| e.to_string())?,
        from: args
            .from
            .as_deref()
            .map(|t| parse_time("--from", t))
            .transpose()?,
        to: args
            .to
            .as_deref()
            .map(|t| parse_time("--to", t))
            .transpose()?,
    })
}

/// The export as text, from a store that holds the patient's record.
async fn export(
    store: &record::Store,
    format: Format,
    query: &record::export::ExportQuery,
) -> Result<String, String> {
    if !store
        .has_patient(&query.patient)
        .await
        .map_err(|e| e.to_string())?
    {
        return Err(format!(
            "no record for patient {:?}: check the id (`infusafe record verify` lists every patient with a record) and the database (--database-url / --data-dir)",
            query.patient.as_str()
        ));
    }
    let output = match format {
        Format::Csv => store.export_csv(query).await,
        Format::Fhir => store.export_fhir(query).await.and_then(|bundle| {
            serde_json::to_string_pretty(&bundle)
                .map(|text| text + "\n")
                .map_err(|e| record::RecordError::InvalidEvent {
                    what: "FHIR Bundle".into(),
                    reason: format!("cannot be written as JSON: {e}"),
                })
        }),
    };
    output.map_err(|e| e.to_string())
}

fn write(out: Option<&str>, output: &str) -> Result<(), String> {
    match out {
        Some(path) => {
            std::fs::write(path, output.as_bytes()).map_err(|e| format!("cannot write {path}: {e}"))
        }
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(output.as_bytes())
                .map_err(|e| format!("cannot write to standard output: {e}"))
        }
    }
}

pub fn main(args: ExportArgs) -> ExitCode {
    let fail = |code: u8, message: String| {
        eprintln!("infusafe export: {message}");
        ExitCode::from(code)
    };
    let query = match query(&args) {
        Ok(query) => query,
        Err(e) => return fail(2, e),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(1, format!("cannot start the async runtime: {e}")),
    };
    let output = runtime.block_on(async {
        let store = args.database.open().await?;
        let output = export(&store, args.format, &query).await;
        store.close().await;
        output
    });
    match output.map(|output| write(args.out.as_deref(), &output)) {
        Err(e) => fail(2, e),
        Ok(Err(e)) => fail(1, e),
        Ok(Ok(())) => ExitCode::SUCCESS,
    }
}
