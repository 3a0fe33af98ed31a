//! docs/care.md stays true: its rules table is the one the code generates, and its example plan is the example
//! file and loads.

const DOC: &str = include_str!("../../../docs/care.md");

#[test]
fn rules_table_matches_the_code() {
    let table = care::triage::rules_table_markdown();
    assert!(
        DOC.contains(&table),
        "docs/care.md's rules table is out of date; replace it with:\n{table}"
    );
}

#[test]
fn example_plan_in_the_docs_loads() {
    let start = DOC
        .find("```toml\n")
        .expect("docs/care.md has a TOML example")
        + "```toml\n".len();
    let end = start + DOC[start..].find("```").unwrap();
    let plan = care::TherapyPlan::from_toml(&DOC[start..end])
        .unwrap_or_else(|e| panic!("docs example: {e}"));
    assert_eq!(
        &DOC[start..end],
        include_str!("../../../examples/plans/antibiotics-picc.toml")
    );
    assert!(plan.critical_therapy);
}
