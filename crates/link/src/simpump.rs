//! A simulated pump on the link: the simulator (`sim`, which drives the real pump core) advanced in real time
//! × speed, its events and telemetry sent to the server through `client::LinkClient` exactly as a pump would.
//! Used by `infusafe pump`, by `infusafe demo` (one per patient) and by the practice pump.

use std::time::Duration;

use pump::Event;
use serde_json::{Value, json};
use sim::{Action, Scenario, Simulation};
use tokio::sync::{mpsc, watch};

use crate::client::{ClientError, LinkClient};
use crate::wire::{BatchResponse, PumpCommand, Telemetry};

/// The scenario `infusafe pump` runs without `--scenario`: 100 mL/h for 250 mL, started at once.
pub const DEFAULT_SCENARIO: &str = r#"
name = "home infusion, 100 mL/h"
duration = "24h"
seed = 1

[program]
rate_ml_per_h = 100.0
vtbi_ml = 250.0

[[event]]
at = "0s"
action = "start"
"#;

/// How a simulated pump runs.
#[derive(Debug, Clone)]
pub struct SimPumpConfig {
    /// Simulated time per real time (1.0 = real time).
    pub speed: f64,
    /// How often the simulation advances and queued events are sent.
    pub step_every: Duration,
    /// Telemetry is sent at least this often even without events (the heartbeat).
    pub heartbeat_every: Duration,
    /// Longest wait between retries while the server is unreachable.
    pub backoff_max: Duration,
}

impl Default for SimPumpConfig {
    fn default() -> SimPumpConfig {
        SimPumpConfig {
            speed: 1.0,
            step_every: Duration::from_millis(200),
            heartbeat_every: Duration::from_secs(2),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Where a simulated pump's events and telemetry go: the HTTP pump link (`LinkClient`) or IHE PCD over MLLP
/// (`pcdlink::PcdUplink`). Events are queued with `push` and leave the outbox only once the server confirmed them.
pub trait Uplink {
    fn push(&mut self, kind: &str, at: jiff::Timestamp, data: Value);
    fn outbox_len(&self) -> usize;
    /// Send what is queued with the telemetry; the server's commands come back.
    fn flush(
        &mut self,
        telemetry: Option<Telemetry>,
    ) -> impl std::future::Future<Output = Result<BatchResponse, ClientError>> + Send;
}

impl Uplink for LinkClient {
    fn push(&mut self, kind: &str, at: jiff::Timestamp, data: Value) {
        LinkClient::push(self, kind, at, data);
    }

    fn outbox_len(&self) -> usize {
        LinkClient::outbox_len(self)
    }

    fn flush(
        &mut self,
        telemetry: Option<Telemetry>,
    ) -> impl std::future::Future<Output = Result<BatchResponse, ClientError>> + Send {
        LinkClient::flush(self, telemetry)
    }
}

/// Why a simulated pump stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimPumpError {
    #[error("speed must be a number above 0 and at most 10000, not {0}")]
    Speed(f64),
    #[error("the server refused the pump for good: {0}")]
    Refused(ClientError),
}

/// The link telemetry of a simulation.
pub fn telemetry_of(sim: &Simulation) -> Telemetry {
    let t = sim.telemetry();
    // Within the link's bounds (a simulated fault never makes the link refuse the pump's reports).
    let b = crate::wire::Bounds::of_pump();
    let minutes_left = (t.rate_ml_per_h > 0.0)
        .then(|| (t.remaining_ml / t.rate_ml_per_h * 60.0).clamp(0.0, b.minutes_left_max));
    Telemetry {
        state: t.state.name().to_string(),
        rate_ml_per_h: t.rate_ml_per_h.clamp(0.0, b.rate_ml_per_h_max),
        delivered_ml: t.delivered_ml.clamp(0.0, b.delivered_ml_max),
        remaining_ml: t.remaining_ml.clamp(0.0, b.vtbi_ml_max),
        minutes_left,
        battery_percent: t.battery_percent.clamp(0.0, 100.0),
        battery_minutes_left: (!t.battery_minutes_left.is_nan())
            .then(|| t.battery_minutes_left.clamp(0.0, b.battery_minutes_max)),
        downstream_pressure_mmhg: (!t.downstream_pressure_mmhg.is_nan()).then(|| {
            t.downstream_pressure_mmhg
                .clamp(b.pressure_mmhg_min, b.pressure_mmhg_max)
        }),
        mains_present: Some(t.mains_present),
        active_alarms: t
            .active_alarms
            .iter()
            .map(|a| a.kind.name().to_string())
            .collect(),
    }
}

/// A core event as a link event (kind, data), in the record's vocabulary.
pub fn link_event(sim: &Simulation, event: &Event) -> (String, Value) {
    let mapped = program_event(event)
        .or_else(|| infusion_event(sim, event))
        .or_else(|| alarm_event(sim, event));
    match mapped {
        Some((kind, data)) => (kind.to_string(), data),
        // Events added to the core after this mapping was written keep their name and content.
        None => {
            let debug = format!("{event:?}");
            let name: String = debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("pump_event")
                .to_string();
            (snake_case(&name), json!({"detail": debug}))
        }
    }
}

/// Programming and the drug library.
fn program_event(event: &Event) -> Option<(&'static str, Value)> {
    Some(match event {
        Event::ProgramAccepted { program } => (
            "program_accepted",
            json!({"rate_ml_per_h": program.rate_ml_per_h(), "vtbi_ml": program.vtbi_ml(), "drug_id": program.drug_id()}),
        ),
        Event::ConfirmationRequired {
            field,
            value,
            zone,
            limit,
        } => (
            "confirmation_required",
            json!({"field": format!("{field:?}"), "value": value, "zone": format!("{zone:?}"), "limit": limit}),
        ),
        Event::LimitOverrideConfirmed {
            field,
            value,
            zone,
            limit,
        } => (
            "limit_override_confirmed",
            json!({"field": format!("{field:?}"), "value": value, "zone": format!("{zone:?}"), "limit": limit}),
        ),
        Event::ProgramRejected { error } => {
            ("program_rejected", json!({"error": format!("{error:?}")}))
        }
        _ => return None,
    })
}

/// The infusion's course: start, pause, stop, completion, KVO, state changes, boluses.
fn infusion_event(sim: &Simulation, event: &Event) -> Option<(&'static str, Value)> {
    let program = sim.pump().status().program;
    Some(match event {
        Event::Started => (
            "infusion_started",
            json!({
                "rate_ml_per_h": program.as_ref().map(|p| p.rate_ml_per_h()).unwrap_or(0.0),
                "vtbi_ml": program.as_ref().map(|p| p.vtbi_ml()).unwrap_or(0.0),
                "drug_id": program.as_ref().and_then(|p| p.drug_id().map(str::to_string)),
            }),
        ),
        Event::Paused => ("infusion_paused", json!({})),
        Event::Resumed => ("infusion_resumed", json!({})),
        Event::Stopped => (
            "infusion_stopped",
            json!({"delivered_ml": sim.pump().status().delivered_ml, "reason": "stopped at the pump"}),
        ),
        Event::Completed { delivered_ml } => {
            ("infusion_completed", json!({"delivered_ml": delivered_ml}))
        }
        Event::KvoStarted { rate_ml_per_h } => {
            ("kvo_started", json!({"rate_ml_per_h": rate_ml_per_h}))
        }
        Event::StateChanged { from, to } => (
            "state_changed",
            json!({"from": from.name(), "to": to.name()}),
        ),
        Event::BolusGiven { volume_ml } => ("bolus_given", json!({"volume_ml": volume_ml})),
        Event::BolusDenied { reason } => ("bolus_denied", json!({"reason": format!("{reason:?}")})),
        _ => return None,
    })
}

/// Alarms: raised, acknowledged and silenced at the pump, cleared, escalated by the pump itself.
fn alarm_event(sim: &Simulation, event: &Event) -> Option<(&'static str, Value)> {
    Some(match event {
        Event::AlarmRaised {
            alarm,
            priority,
            detail,
        } => (
            "alarm_raised",
            json!({"alarm": alarm.name(), "priority": priority.name(), "detail": format!("{detail:?}")}),
        ),
        Event::AlarmAcknowledged { alarm } => {
            ("alarm_acknowledged", json!({"alarm": alarm.name()}))
        }
        Event::AlarmSilenced { alarm, until_ms } => (
            "alarm_silenced",
            json!({"alarm": alarm.name(), "silenced_for_s": u32::try_from(until_ms.saturating_sub(sim.now_ms()) / 1000).unwrap_or(u32::MAX)}),
        ),
        Event::AlarmCleared { alarm } => ("alarm_cleared", json!({"alarm": alarm.name()})),
        Event::AlarmEscalated {
            alarm,
            unacknowledged_for_ms,
        } => (
            "alarm_escalated",
            json!({"alarm": alarm.name(), "unacknowledged_for_s": u32::try_from(unacknowledged_for_ms / 1000).unwrap_or(u32::MAX), "rung": "pump"}),
        ),
        _ => return None,
    })
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn apply_command(sim: &mut Simulation, command: &PumpCommand) {
    let action = match command {
        PumpCommand::Acknowledge { alarm } => match pump::AlarmKind::from_name(alarm) {
            Some(kind) => Action::Acknowledge { alarm: Some(kind) },
            None => return,
        },
        PumpCommand::Silence { .. } => Action::Silence,
    };
    // The core may refuse (the alarm already cleared); that is its decision, and it is journaled by sim.
    let _ = sim.apply(action);
}

/// Run a simulated pump until `shutdown` turns true. `control` injects actions now (practice pump faults).
/// The simulation never waits for the network: while the server is unreachable events queue up in the
/// link client's outbox and are sent, in order and once, when it answers again.
pub async fn run<U: Uplink>(
    mut sim: Simulation,
    mut client: U,
    config: SimPumpConfig,
    mut control: mpsc::Receiver<Action>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SimPumpError> {
    if !(config.speed > 0.0 && config.speed <= 10_000.0) {
        return Err(SimPumpError::Speed(config.speed));
    }
    let started = tokio::time::Instant::now();
    let wall_start = jiff::Timestamp::now();
    let sim_start_ms = sim.now_ms();
    let mut interval = tokio::time::interval(config.step_every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sent = tokio::time::Instant::now() - config.heartbeat_every;
    let mut retry_at = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(250);
    let mut control_open = true;
    loop {
        let mut stopping = false;
        tokio::select! {
            _ = interval.tick() => {}
            action = control.recv(), if control_open => match action {
                Some(a) => { let _ = sim.apply(a); }
                None => control_open = false,
            },
            _ = shutdown.changed() => stopping = true,
        }
        stopping |= *shutdown.borrow();
        let target_ms =
            sim_start_ms + (started.elapsed().as_secs_f64() * config.speed * 1000.0) as u64;
        sim.run_until(target_ms);
        queue_events(
            &mut sim,
            &mut client,
            wall_start,
            sim_start_ms,
            config.speed,
        );
        let now = tokio::time::Instant::now();
        let due = client.outbox_len() > 0
            || now.duration_since(last_sent) >= config.heartbeat_every
            || stopping;
        if due && now >= retry_at {
            match send(&mut sim, &mut client).await {
                Ok(()) => {
                    last_sent = tokio::time::Instant::now();
                    backoff = Duration::from_millis(250);
                }
                Err(Some(refused)) => return Err(refused),
                Err(None) => {
                    retry_at = tokio::time::Instant::now() + backoff;
                    backoff = (backoff * 2).min(config.backoff_max);
                }
            }
        }
        if stopping {
            return Ok(());
        }
    }
}

/// Move the simulation's new events into the link client's outbox, stamped with the wall-clock time they
/// happened at (never in the wall clock's future: a fast simulation runs ahead within one step).
fn queue_events<U: Uplink>(
    sim: &mut Simulation,
    client: &mut U,
    wall_start: jiff::Timestamp,
    sim_start_ms: u64,
    speed: f64,
) {
    for e in sim.drain_events() {
        let (kind, data) = link_event(sim, &e.event);
        let at_offset_ms = ((e.at_ms.saturating_sub(sim_start_ms)) as f64 / speed) as i64;
        let at = wall_start
            .checked_add(jiff::SignedDuration::from_millis(at_offset_ms))
            .unwrap_or(wall_start)
            .min(jiff::Timestamp::now());
        client.push(&kind, at, data);
    }
}

/// Send the outbox with the current telemetry and apply the server's commands. `Err(Some(_))`: the server
/// refused the pump for good (a 4xx other than 408/429); `Err(None)`: try again after a back-off.
async fn send<U: Uplink>(sim: &mut Simulation, client: &mut U) -> Result<(), Option<SimPumpError>> {
    match client.flush(Some(telemetry_of(sim))).await {
        Ok(reply) => {
            for c in &reply.commands {
                apply_command(sim, c);
            }
            Ok(())
        }
        Err(ClientError::Status { status, body })
            if (400..500).contains(&status) && status != 408 && status != 429 =>
        {
            Err(Some(SimPumpError::Refused(ClientError::Status {
                status,
                body,
            })))
        }
        Err(ClientError::Refused { message }) => {
            Err(Some(SimPumpError::Refused(ClientError::Refused {
                message,
            })))
        }
        Err(e) => {
            eprintln!(
                "infusafe pump: the server did not take the batch ({e}); {} events kept, retrying",
                client.outbox_len()
            );
            Err(None)
        }
    }
}

/// Parse a scenario file's text, or the default scenario.
pub fn scenario(text: Option<&str>, origin: &str) -> Result<Scenario, sim::ScenarioError> {
    Scenario::from_toml_str(text.unwrap_or(DEFAULT_SCENARIO), origin)
}
