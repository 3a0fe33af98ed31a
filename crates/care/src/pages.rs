//! Content rendered as screen data: every page starts with "your care team's instructions come first", then the
//! plan's personal notes for that page, then the generic content. The app and the server's HTML both render these.

use serde::Serialize;

use crate::Alarm;
use crate::content::{PageKind, content};
use crate::plan::TherapyPlan;
use crate::words::{Level, LineType, LogField, Observation, Phase, Role, SiteSign};

/// One screen of content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// The content id (`checklist.before`, `alarm.air_in_line`, `site.line.picc`, `routine.log`, …).
    pub id: String,
    pub title: String,
    /// Always shown first.
    pub care_team_first: String,
    /// The care team's own words for this page (general notes, then notes about this page), shown before the rest.
    pub personal_notes: Vec<String>,
    pub intro: String,
    pub sections: Vec<Section>,
}

/// A block of a page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// The content id of the block, when it has one (a checklist item group has none; a tip has its own).
    pub heading: String,
    /// Whether the items are steps to do in order (shown numbered).
    pub numbered: bool,
    pub items: Vec<Item>,
}

/// One line of a section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// The content id, when the line has its own (checklist items, tips, log fields, site signs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub text: String,
    /// For a checklist item: what counts as a problem and what it leads to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    /// For a site sign: the triage observation a "yes" reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
}

/// A checklist item's problem and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub text: String,
    pub level: Level,
    pub steps: Vec<String>,
    pub call: Vec<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
}

fn page(
    id: &str,
    title: &str,
    intro: &str,
    plan: Option<&TherapyPlan>,
    sections: Vec<Section>,
) -> Page {
    Page {
        id: id.to_owned(),
        title: title.to_owned(),
        care_team_first: content().common.care_team_first.clone(),
        personal_notes: plan
            .map(|p| p.notes_for(id).into_iter().map(str::to_owned).collect())
            .unwrap_or_default(),
        intro: intro.to_owned(),
        sections,
    }
}

fn plain(items: &[String]) -> Vec<Item> {
    items
        .iter()
        .map(|t| Item {
            id: None,
            text: t.clone(),
            problem: None,
            observation: None,
        })
        .collect()
}

/// The checklist for a phase, items grouped under their headings, each with its problem outcome.
pub fn checklist(phase: Phase, plan: Option<&TherapyPlan>) -> Page {
    let c = content();
    let list = c
        .checklists
        .iter()
        .find(|l| l.phase == phase)
        .expect("every phase has a checklist: checked on load");
    let mut sections: Vec<Section> = Vec::new();
    for item in c.items.iter().filter(|i| i.checklist == list.id) {
        let entry = Item {
            id: Some(item.id.clone()),
            text: item.check.clone(),
            problem: Some(Problem {
                text: item.problem.clone(),
                level: item.on_problem.level,
                steps: item.on_problem.steps.clone(),
                call: item.on_problem.call.clone(),
                observation: item.observation,
            }),
            observation: None,
        };
        match sections.last_mut() {
            Some(section) if section.heading == item.group => section.items.push(entry),
            _ => sections.push(Section {
                heading: item.group.clone(),
                numbered: false,
                items: vec![entry],
            }),
        }
    }
    page(&list.id, &list.title, &list.intro, plan, sections)
}

/// The guide for one alarm: meaning, numbered steps, what not to do, when to call and whom.
pub fn alarm_guide(alarm: Alarm, plan: Option<&TherapyPlan>) -> Page {
    let c = content();
    let guide = c.alarm(alarm);
    let h = &c.common.headings;
    let whom: Vec<String> = guide.call.iter().map(|r| contact_line(*r, plan)).collect();
    let sections = vec![
        Section {
            heading: h.alarm_steps.clone(),
            numbered: true,
            items: plain(&guide.steps),
        },
        Section {
            heading: h.alarm_do_not.clone(),
            numbered: false,
            items: plain(&guide.do_not),
        },
        Section {
            heading: h.alarm_call_when.clone(),
            numbered: false,
            items: plain(&guide.call_when),
        },
        Section {
            heading: h.alarm_whom.clone(),
            numbered: false,
            items: plain(&whom),
        },
    ];
    page(&guide.id, &guide.title, &guide.meaning, plan, sections)
}

/// The site checks for a line type: where to look, the signs, and what is special about this line.
pub fn site_checks(line: LineType, plan: Option<&TherapyPlan>) -> Page {
    let c = content();
    let guide = c.line(line);
    let h = &c.common.headings;
    let signs = SiteSign::ALL
        .iter()
        .filter_map(|s| c.signs.iter().find(|g| g.sign == *s))
        .map(|g| Item {
            id: Some(g.id.clone()),
            text: format!("{} {}", g.question, g.note),
            problem: None,
            observation: Some(g.observation),
        })
        .collect();
    let sections = vec![
        Section {
            heading: h.site_where.clone(),
            numbered: false,
            items: plain(&[guide.where_.clone(), guide.look.clone()]),
        },
        Section {
            heading: h.site_signs.clone(),
            numbered: false,
            items: signs,
        },
        Section {
            heading: h.site_comes_out.clone(),
            numbered: false,
            items: plain(std::slice::from_ref(&guide.special)),
        },
    ];
    page(&guide.id, &guide.name, &h.site_intro, plan, sections)
}

/// The routines screen: pump corner, log (with its fields), reminders, quick tips, and help when overwhelmed.
pub fn routines(plan: Option<&TherapyPlan>) -> Vec<Page> {
    let c = content();
    let h = &c.common.headings;
    crate::ROUTINE_IDS
        .iter()
        .filter_map(|id| c.page(id))
        .map(|p| {
            let mut sections = Vec::new();
            if !p.items.is_empty() {
                sections.push(Section {
                    heading: p.title.clone(),
                    numbered: false,
                    items: plain(&p.items),
                });
            }
            match p.id.as_str() {
                "routine.log" => sections.push(Section {
                    heading: h.log_fields.clone(),
                    numbered: false,
                    items: c
                        .log_fields
                        .iter()
                        .map(|f| Item {
                            id: Some(f.id.clone()),
                            text: format!("{}: {}", f.label, f.hint),
                            problem: None,
                            observation: None,
                        })
                        .collect(),
                }),
                "routine.quick_tips" => sections.push(Section {
                    heading: h.tips.clone(),
                    numbered: false,
                    items: c
                        .tips
                        .iter()
                        .map(|t| Item {
                            id: Some(t.id.clone()),
                            text: format!("{}: {}", t.title, t.text),
                            problem: None,
                            observation: None,
                        })
                        .collect(),
                }),
                "routine.pump_corner" => {
                    if let Some(plan) = plan {
                        let numbers = Role::ALL
                            .iter()
                            .map(|r| contact_line(*r, Some(plan)))
                            .collect::<Vec<_>>();
                        sections.push(Section {
                            heading: h.pump_corner_numbers.clone(),
                            numbered: false,
                            items: plain(&numbers),
                        });
                    }
                }
                _ => {}
            }
            page(&p.id, &p.title, &p.intro, plan, sections)
        })
        .collect()
}

/// The "getting to know your pump" pages.
pub fn about(plan: Option<&TherapyPlan>) -> Vec<Page> {
    content()
        .pages
        .iter()
        .filter(|p| p.kind == PageKind::About)
        .map(|p| {
            page(
                &p.id,
                &p.title,
                &p.intro,
                plan,
                vec![Section {
                    heading: p.title.clone(),
                    numbered: false,
                    items: plain(&p.items),
                }],
            )
        })
        .collect()
}

/// One log field with its words, for the log screen and the record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogFieldView {
    pub field: LogField,
    pub id: String,
    pub label: String,
    pub hint: String,
}

/// The fields of the infusion log, in screen order.
pub fn log_fields() -> Vec<LogFieldView> {
    content()
        .log_fields
        .iter()
        .map(|f| LogFieldView {
            field: f.field,
            id: f.id.clone(),
            label: f.label.clone(),
            hint: f.hint.clone(),
        })
        .collect()
}

/// "Home infusion nurse: Sam Jones, +31 …", or the role's label alone without a plan.
pub fn contact_line(role: Role, plan: Option<&TherapyPlan>) -> String {
    let c = content();
    let label = &c.common.roles[&role];
    match plan.map(|p| p.contacts.get(role)) {
        Some(contact) => {
            let mut line = format!("{label}: ");
            if let Some(name) = &contact.name {
                line.push_str(&format!("{name}, "));
            }
            line.push_str(&contact.phone);
            if let Some(hours) = &contact.hours {
                line.push_str(&format!(" ({hours})"));
            }
            line
        }
        None => format!("{label}: {}", c.common.no_plan_numbers),
    }
}

/// One word of the symptom-check screen: what the patient ticks, and the triage word it sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservationView {
    pub observation: Observation,
    pub label: String,
}

/// The triage vocabulary with plain words, in vocabulary order (most urgent situations first).
pub fn observations() -> Vec<ObservationView> {
    let c = content();
    Observation::ALL
        .iter()
        .map(|o| ObservationView {
            observation: *o,
            label: c.observation_label(*o).to_owned(),
        })
        .collect()
}
