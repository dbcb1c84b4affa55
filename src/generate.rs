//! A synthetic graph in the seed format, for benchmarks: each organisation
//! gets values, principles, barriers, experiments, learnings and sources, tied
//! together as the model allows, with influences reaching across
//! organisations. The same seed always gives the same file. About 100 nodes
//! and 230 relationships per organisation; records are written one at a
//! time, so a million-node graph never sits in memory.

use std::io::{self, Write};

use chrono::{Duration, NaiveDate};
use serde_json::{Value as Json, json};

use crate::domain::{
    BarrierKind, Confidence, Embedding, ExperimentStatus, InfluenceHow, LearningKind, PrincipleStatus, Strength,
    SystemCondition, record::FORMAT,
};

const VALUES: usize = 6;
const PRINCIPLES: usize = 14;
const BARRIERS: usize = 12;
const EXPERIMENTS: usize = 28;
const LEARNINGS: usize = 34;
const SOURCES: usize = 5;

/// Nodes one organisation contributes, its own node included.
pub const NODES_PER_ORGANISATION: usize = 1 + VALUES + PRINCIPLES + BARRIERS + EXPERIMENTS + LEARNINGS + SOURCES;

const WORDS: &[&str] = &[
    "equity",
    "trust",
    "risk",
    "reflection",
    "community",
    "housing",
    "transit",
    "climate",
    "budget",
    "procurement",
    "youth",
    "health",
    "data",
    "outreach",
    "partnership",
    "language",
    "access",
    "safety",
    "care",
    "learning",
    "permits",
    "benefits",
    "workforce",
    "neighbourhood",
    "services",
    "parks",
    "water",
    "energy",
    "justice",
    "schools",
];

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub organisations: usize,
    pub seed: u64,
}

/// Counts of what was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Generated {
    pub nodes: usize,
    pub relationships: usize,
}

struct Writer<W: Write> {
    out: W,
    first: bool,
    count: usize,
}

impl<W: Write> Writer<W> {
    fn record(&mut self, record: &Json) -> io::Result<()> {
        self.out.write_all(if self.first { b"\n    " } else { b",\n    " })?;
        self.first = false;
        self.count += 1;
        serde_json::to_writer(&mut self.out, record).map_err(io::Error::other)
    }
}

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

fn phrase(rng: &mut fastrand::Rng, words: usize) -> String {
    (0..words).map(|_| *pick(rng, WORDS)).collect::<Vec<_>>().join(" ")
}

fn org_slug(i: usize) -> String {
    format!("org{i}")
}

fn id(org: usize, kind: &str, n: usize) -> String {
    format!("{o}:{kind}:{kind}-{n}", o = org_slug(org))
}

/// The day an organisation's learning `n` was captured: spread over 2015–2024.
fn captured_on(org: usize, n: usize) -> NaiveDate {
    let base = NaiveDate::from_ymd_opt(2015, 1, 1).expect("a valid date");
    base + Duration::days(((org * 37 + n * 53) % 3000) as i64)
}

/// Writes a generated graph as a seed file.
pub fn write(plan: Plan, out: impl Write) -> io::Result<Generated> {
    write_with(plan, out, || {})
}

/// Writes a generated graph as a seed file, calling `tick` after each
/// organisation's nodes and again after its relationships, for progress.
pub fn write_with(plan: Plan, out: impl Write, mut tick: impl FnMut()) -> io::Result<Generated> {
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    let mut w = Writer { out: io::BufWriter::new(out), first: true, count: 0 };
    write!(w.out, "{{\n  \"format\": \"{FORMAT}\",\n  \"nodes\": [")?;
    for org in 0..plan.organisations {
        nodes(&mut w, &mut rng, org)?;
        tick();
    }
    let nodes = w.count;
    write!(w.out, "\n  ],\n  \"relationships\": [")?;
    w.first = true;
    w.count = 0;
    for org in 0..plan.organisations {
        relationships(&mut w, &mut rng, org, plan.organisations)?;
        tick();
    }
    write!(w.out, "\n  ]\n}}\n")?;
    let relationships = w.count;
    w.out.flush()?;
    Ok(Generated { nodes, relationships })
}

fn nodes<W: Write>(w: &mut Writer<W>, rng: &mut fastrand::Rng, org: usize) -> io::Result<()> {
    let slug = org_slug(org);
    let created = "2014-01-01T00:00:00Z";
    w.record(&json!({
        "id": format!("{slug}:organisation:{slug}"), "title": format!("Organisation {org}"),
        "jurisdiction": format!("Region {}", org % 50), "purpose": format!("Serve every resident on {}", phrase(rng, 3)),
        "assertion": "SOURCED", "createdAt": created,
    }))?;
    for n in 0..VALUES {
        w.record(&json!({ "id": id(org, "value", n), "title": format!("Value {} {n}", phrase(rng, 1)),
            "definition": phrase(rng, 8), "createdAt": created }))?;
    }
    for n in 0..PRINCIPLES {
        w.record(&json!({ "id": id(org, "principle", n), "title": format!("Principle on {} {n}", phrase(rng, 2)),
            "statement": phrase(rng, 12), "status": pick(rng, PrincipleStatus::ALL).as_str(), "createdAt": created }))?;
    }
    for n in 0..BARRIERS {
        w.record(&json!({ "id": id(org, "barrier", n), "title": format!("Barrier of {} {n}", phrase(rng, 2)),
            "kind": pick(rng, BarrierKind::ALL).as_str(), "severity": rng.i32(1..=5), "createdAt": created }))?;
    }
    for n in 0..EXPERIMENTS {
        let start = NaiveDate::from_ymd_opt(2015, 1, 1).expect("a valid date") + Duration::days(rng.i64(0..3000));
        w.record(&json!({ "id": id(org, "experiment", n), "title": format!("Experiment in {} {n}", phrase(rng, 2)),
            "hypothesis": phrase(rng, 14), "status": pick(rng, ExperimentStatus::ALL).as_str(),
            "startedOn": start.to_string(), "endedOn": (start + Duration::days(rng.i64(30..400))).to_string(),
            "evidenceLevel": rng.i32(1..=5), "createdAt": created }))?;
    }
    for n in 0..LEARNINGS {
        let captured = captured_on(org, n);
        let embedding = *pick(rng, Embedding::ALL);
        let mut record = json!({ "id": id(org, "learning", n), "title": format!("Learning about {} {n}", phrase(rng, 2)),
            "statement": phrase(rng, 12), "kind": pick(rng, LearningKind::ALL).as_str(),
            "confidence": pick(rng, Confidence::ALL).as_str(), "embedding": embedding.as_str(),
            "capturedOn": captured.to_string(), "createdAt": format!("{captured}T00:00:00Z") });
        if embedding == Embedding::Embedded {
            record["embeddedOn"] = (captured + Duration::days(rng.i64(10..500))).to_string().into();
        }
        w.record(&record)?;
    }
    for n in 0..SOURCES {
        w.record(&json!({ "id": id(org, "source", n), "title": format!("Report on {} {n}", phrase(rng, 2)),
            "url": format!("https://example.org/{slug}/reports/{n}"), "publisher": format!("Organisation {org}"),
            "createdAt": created }))?;
    }
    Ok(())
}

fn relationships<W: Write>(w: &mut Writer<W>, rng: &mut fastrand::Rng, org: usize, orgs: usize) -> io::Result<()> {
    let link = |w: &mut Writer<W>, kind: &str, from: String, to: String| {
        w.record(&json!({ "kind": kind, "from": from, "to": to }))
    };
    for p in 0..PRINCIPLES {
        for v in distinct(rng, VALUES, 2) {
            link(w, "UPHOLDS", id(org, "principle", p), id(org, "value", v))?;
        }
    }
    for b in 0..BARRIERS {
        link(w, "HINDERS", id(org, "barrier", b), id(org, "principle", rng.usize(..PRINCIPLES)))?;
    }
    for e in 0..EXPERIMENTS {
        for p in distinct(rng, PRINCIPLES, 2) {
            link(w, "GUIDED_BY", id(org, "experiment", e), id(org, "principle", p))?;
        }
        link(w, "ADDRESSES", id(org, "experiment", e), id(org, "barrier", rng.usize(..BARRIERS)))?;
    }
    // Every learning comes from an experiment; some experiments teach two things.
    for l in 0..LEARNINGS {
        link(w, "PRODUCED", id(org, "experiment", l % EXPERIMENTS), id(org, "learning", l))?;
    }
    for l in 0..LEARNINGS {
        let on = captured_on(org, l) + Duration::days(rng.i64(1..200));
        let mut targets: Vec<String> = Vec::new();
        for _ in 0..3 {
            let target_org = if orgs > 1 && rng.u8(..100) < 15 { rng.usize(..orgs) } else { org };
            let target = match rng.u8(..4) {
                0 => id(target_org, "principle", rng.usize(..PRINCIPLES)),
                1 => id(target_org, "experiment", rng.usize(..EXPERIMENTS)),
                2 => id(target_org, "barrier", rng.usize(..BARRIERS)),
                _ => id(target_org, "learning", rng.usize(..LEARNINGS)),
            };
            if target != id(org, "learning", l) && !targets.contains(&target) {
                targets.push(target);
            }
        }
        for target in targets {
            w.record(&json!({
                "kind": "INFLUENCED", "from": id(org, "learning", l), "to": target,
                "how": pick(rng, InfluenceHow::ALL).as_str(),
                "systemCondition": pick(rng, SystemCondition::ALL).as_str(),
                "on": on.to_string(), "strength": pick(rng, Strength::ALL).as_str(),
                "assertion": "INFERRED", "contribution": phrase(rng, 6),
            }))?;
        }
    }
    for e in 0..EXPERIMENTS {
        if rng.bool() {
            link(w, "CITES", id(org, "experiment", e), id(org, "source", rng.usize(..SOURCES)))?;
        }
    }
    Ok(())
}

/// `count` distinct numbers below `below`.
fn distinct(rng: &mut fastrand::Rng, below: usize, count: usize) -> Vec<usize> {
    let mut picked = Vec::with_capacity(count);
    while picked.len() < count.min(below) {
        let n = rng.usize(..below);
        if !picked.contains(&n) {
            picked.push(n);
        }
    }
    picked
}
