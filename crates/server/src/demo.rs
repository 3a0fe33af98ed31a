//! `infusafe demo`: the whole product on one machine. Serves on SQLite in a data directory, seeds a demo
//! clinic (an admin, a nurse, two patients with the companion's example therapy plans, a patient account and
//! a caregiver) idempotently, and attaches a simulated pump to each patient that talks to the server through
//! the pump link over HTTP, exactly as `infusafe pump` does.

use std::path::Path;

use link::simpump::{self, SimPumpConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::domain::Role;
use crate::error::AppError;
use crate::services::AppState;
use crate::services::auth::NewUser;
use crate::services::{directory, plans};
use crate::{Running, ServerConfig, StartError};

/// The password of every demo account (the demo runs on the local machine only).
pub const DEMO_PASSWORD: &str = "infusafe-demo";

/// A demo account to print.
#[derive(Debug, Clone, Serialize)]
pub struct DemoLogin {
    pub username: &'static str,
    pub role: &'static str,
    pub who: &'static str,
}

/// The demo accounts.
pub const DEMO_LOGINS: [DemoLogin; 5] = [
    DemoLogin {
        username: "nurse",
        role: "nurse",
        who: "Nurse Sam Jones, home infusion team",
    },
    DemoLogin {
        username: "alex",
        role: "patient",
        who: "Alex Example (IV antibiotics through a PICC line)",
    },
    DemoLogin {
        username: "robin",
        role: "caregiver",
        who: "Robin, Alex's partner",
    },
    DemoLogin {
        username: "jordan",
        role: "patient",
        who: "Jordan Sample (epidural pain relief)",
    },
    DemoLogin {
        username: "admin",
        role: "admin",
        who: "Clinic admin",
    },
];

const PLAN_ANTIBIOTICS: &str = include_str!("../../../examples/plans/antibiotics-picc.toml");
const PLAN_EPIDURAL: &str = include_str!("../../../examples/plans/pain-epidural.toml");

/// Device tokens of the demo pumps, kept in the data directory so a restarted demo reuses its pumps.
#[derive(Debug, Default, Serialize, Deserialize)]
struct DemoPumps {
    pumps: Vec<(String, String)>,
}

/// A running demo.
pub struct Demo {
    pub running: Running,
    pub logins: Vec<DemoLogin>,
    stop_pumps: watch::Sender<bool>,
    pumps: Vec<tokio::task::JoinHandle<()>>,
}

impl Demo {
    /// Stop the pumps (they send their last batch), then the server.
    pub async fn stop(self) -> Result<(), std::io::Error> {
        let _ = self.stop_pumps.send(true);
        for p in self.pumps {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), p).await;
        }
        self.running.stop().await
    }
}

/// Seed (idempotently) and start the server and one simulated pump per demo patient.
pub async fn start(config: ServerConfig) -> Result<Demo, StartError> {
    let data_dir = config.data_dir.clone();
    let running = crate::start(config).await?;
    let pumps = seed(&running.state, &data_dir).await?;
    let (stop_pumps, stopped) = watch::channel(false);
    let url = running.url();
    let mut handles = Vec::new();
    for (i, (patient_id, token, scenario_text, library)) in pumps.into_iter().enumerate() {
        let scenario = simpump::scenario(Some(&scenario_text), "demo pump")
            .map_err(|e| StartError::Load(AppError::internal(e)))?;
        // The pump core runs the plan's program under the plan's drug-library limits.
        let sim = sim::Simulation::with_library(&scenario, library);
        let stopped = stopped.clone();
        // Nothing sends actions to the demo pumps; the practice pump is where faults are injected.
        let (keep, control) = mpsc::channel(1);
        // With a PCD listener, Jordan's pump (the second) is an IHE PCD gateway: HL7 v2 over MLLP.
        let pcd = running.pcd_addr.filter(|_| i == 1);
        let handle = match pcd {
            Some(addr) => {
                let device = directory::device_by_token(&running.state, &token)
                    .await?
                    .ok_or_else(|| AppError::internal("the demo pump is not registered"))?;
                crate::store::pcd::set_pcd_device_id(
                    &running.state.db,
                    &device.id,
                    Some(DEMO_PCD_DEVICE_ID),
                )
                .await?;
                let uplink = link::pcdlink::PcdUplink::new(&addr.to_string(), DEMO_PCD_DEVICE_ID);
                tokio::spawn(run_pump(sim, uplink, control, stopped, keep, patient_id))
            }
            None => {
                let client = link::LinkClient::new(&url, &token);
                tokio::spawn(run_pump(sim, client, control, stopped, keep, patient_id))
            }
        };
        handles.push(handle);
    }
    Ok(Demo {
        running,
        logins: DEMO_LOGINS.to_vec(),
        stop_pumps,
        pumps: handles,
    })
}

/// The PCD device id of Jordan's demo pump when the demo runs with a PCD listener.
pub const DEMO_PCD_DEVICE_ID: &str = "DEMO-PCD-JORDAN";

async fn run_pump<U: simpump::Uplink>(
    sim: sim::Simulation,
    uplink: U,
    control: mpsc::Receiver<sim::Action>,
    stopped: watch::Receiver<bool>,
    _keep: mpsc::Sender<sim::Action>,
    patient_id: String,
) {
    if let Err(e) = simpump::run(sim, uplink, SimPumpConfig::default(), control, stopped).await {
        eprintln!("infusafe demo: the simulated pump of {patient_id} stopped: {e}");
    }
}

fn scenario_for(plan: &care::TherapyPlan) -> String {
    plans::scenario_text(plan, "demo pump", 11)
}

/// A demo pump to start: patient, pump token, scenario text and the drug library of the patient's plan.
pub type DemoPump = (String, String, String, pump::DrugLibrary);

/// Create the demo clinic once; return (patient, pump token, scenario, plan drug library) for each demo pump.
pub async fn seed(state: &AppState, data_dir: &Path) -> Result<Vec<DemoPump>, AppError> {
    let antibiotics = care::TherapyPlan::from_toml(PLAN_ANTIBIOTICS).map_err(AppError::internal)?;
    let epidural = care::TherapyPlan::from_toml(PLAN_EPIDURAL).map_err(AppError::internal)?;
    let pumps_file = data_dir.join("demo-pumps.json");
    if !crate::store::accounts::username_taken(&state.db, "nurse").await? {
        let clinic = directory::create_clinic(state, "Infusafe demo clinic").await?;
        let alex =
            directory::create_patient(state, &clinic, &antibiotics.patient.name, None).await?;
        let jordan =
            directory::create_patient(state, &clinic, &epidural.patient.name, None).await?;
        plans::seed(
            state,
            &alex,
            serde_json::from_str(&antibiotics.to_json()).map_err(AppError::internal)?,
        )
        .await?;
        plans::seed(
            state,
            &jordan,
            serde_json::from_str(&epidural.to_json()).map_err(AppError::internal)?,
        )
        .await?;
        for (login, patients) in DEMO_LOGINS.iter().zip([
            vec![],
            vec![alex.clone()],
            vec![alex.clone()],
            vec![jordan.clone()],
            vec![],
        ]) {
            let role =
                Role::from_name(login.role).ok_or_else(|| AppError::internal("demo role"))?;
            crate::services::auth::create_user(
                state,
                &NewUser {
                    username: login.username.into(),
                    display_name: login
                        .who
                        .split(',')
                        .next()
                        .unwrap_or(login.who)
                        .split(" (")
                        .next()
                        .unwrap_or(login.who)
                        .into(),
                    password: DEMO_PASSWORD.into(),
                    role,
                    clinic_id: clinic.clone(),
                    patient_ids: patients,
                },
            )
            .await?;
        }
        let mut file = DemoPumps::default();
        for (patient, label) in [
            (&alex, "Demo pump (simulated) for Alex"),
            (&jordan, "Demo pump (simulated) for Jordan"),
        ] {
            let device = directory::create_device(state, patient, label, false, None).await?;
            file.pumps.push((patient.clone(), device.token));
        }
        std::fs::write(
            &pumps_file,
            serde_json::to_vec_pretty(&file).map_err(AppError::internal)?,
        )
        .map_err(|e| AppError::internal(format!("cannot write {}: {e}", pumps_file.display())))?;
    }
    let file: DemoPumps = std::fs::read(&pumps_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            AppError::internal(format!(
                "{} is missing or unreadable; delete the data directory to start the demo afresh",
                pumps_file.display()
            ))
        })?;
    let mut out = Vec::new();
    for (patient, token) in file.pumps {
        if directory::device_by_token(state, &token).await?.is_none() {
            return Err(AppError::internal(format!(
                "{} names a pump this database does not know; delete the data directory to start the demo afresh",
                pumps_file.display()
            )));
        }
        let (scenario, library) = match state.plans.get(&patient) {
            Some(p) => (scenario_for(&p), p.drug_library()),
            None => (
                simpump::DEFAULT_SCENARIO.to_string(),
                pump::DrugLibrary::default(),
            ),
        };
        out.push((patient, token, scenario, library));
    }
    Ok(out)
}

/// Create a clinic and its first admin when the database has no accounts yet (first start of `serve`).
pub async fn bootstrap_admin(
    state: &AppState,
    clinic_name: &str,
    username: &str,
    password: &str,
) -> Result<bool, AppError> {
    if crate::store::accounts::any_user(&state.db).await? {
        return Ok(false);
    }
    let clinic = directory::create_clinic(state, clinic_name).await?;
    crate::services::auth::create_user(
        state,
        &NewUser {
            username: username.into(),
            display_name: "Clinic admin".into(),
            password: password.into(),
            role: Role::Admin,
            clinic_id: clinic,
            patient_ids: vec![],
        },
    )
    .await?;
    Ok(true)
}
