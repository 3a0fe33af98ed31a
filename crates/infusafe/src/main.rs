//! The `infusafe` binary: parses arguments, hands each subcommand to its library, maps errors to exit codes.

mod demo;
mod export;
mod load;
mod pumpcmd;
mod record;
mod reminders;
mod serve;
mod sim;
mod triage;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "infusafe", version, about = "Home infusion safety system")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pump simulator: scenario runs, safety campaign, IEC 60601-2-24 test methods.
    Sim(sim::SimArgs),
    /// Symptom and alarm triage: reads a JSON report (FILE or stdin), prints level, reasons, steps, whom to call.
    Triage(triage::TriageArgs),
    /// Writes a therapy plan's reminders as an iCalendar file (or JSON data with --json).
    Reminders(reminders::RemindersArgs),
    /// Exports a patient's record as CSV or an HL7 FHIR R4 Bundle.
    Export(export::ExportArgs),
    /// The infusion record: `verify` checks every patient's hash chain.
    Record(record::RecordArgs),
    /// Runs the care-team server (pump link, live alarms, escalation, accounts, JSON API, screens).
    Serve(serve::ServeArgs),
    /// Runs the server with a seeded demo clinic and a simulated pump per patient; prints the logins.
    Demo(demo::DemoArgs),
    /// Runs a simulated pump against a server's pump link.
    Pump(pumpcmd::PumpArgs),
    /// Load generator: N pumps on the pump link of a server on this machine, alarms at a fixed rate, latency to
    /// the nurse's dashboard stream; bounded in pumps and time, loopback only.
    Load(load::LoadArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => sim::main(args),
        Command::Triage(args) => triage::main(args),
        Command::Reminders(args) => reminders::main(args),
        Command::Export(args) => export::main(args),
        Command::Record(args) => record::main(args),
        Command::Serve(args) => serve::main(args),
        Command::Demo(args) => demo::main(args),
        Command::Pump(args) => pumpcmd::main(args),
        Command::Load(args) => load::main(args),
    }
}
